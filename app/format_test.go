package app

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/thepeerdrop/peerdrop/engine"
)

func TestInitials(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"Alice's MacBook", "AM"},
		{"bob", "B"},
		{"office-pc", "OP"},
		{"  Anna   Maria  Lopez ", "AM"},
		{"(work) laptop", "WL"},
		{"élodie", "É"},
		{"Pixel 8", "P8"},
		{"", "?"},
		{"---", "?"},
		{"Bob’s iPad", "BI"},
	} {
		assert.Equal(t, tc.want, initials(tc.name), "initials(%q)", tc.name)
	}
}

func TestAvatarColor(t *testing.T) {
	assert.Equal(t, avatarColor("6f1c0e9a2b7d4e13"), avatarColor("6f1c0e9a2b7d4e13"), "same id, same colour")
	seen := map[any]bool{}
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		seen[avatarColor(id)] = true
	}
	assert.Greater(t, len(seen), 3, "ids spread over the palette")
}

func TestHumanBytes(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{-1, "0 B"}, {0, "0 B"}, {999, "999 B"}, {1000, "1.0 kB"}, {1500, "1.5 kB"},
		{12_345_678, "12.3 MB"}, {456_000_000, "456 MB"}, {999_960, "1.0 MB"}, {2_100_000_000, "2.1 GB"},
	} {
		assert.Equal(t, tc.want, humanBytes(tc.n), "humanBytes(%d)", tc.n)
	}
	assert.Equal(t, "12.3 MB/s", humanSpeed(12.3e6))
	assert.Equal(t, "", humanSpeed(0))
}

func TestHumanETA(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, ""}, {-time.Second, ""}, {300 * time.Millisecond, "1 s left"}, {8 * time.Second, "8 s left"},
		{3*time.Minute + 5*time.Second, "3 min 5 s left"}, {2 * time.Minute, "2 min left"},
		{25*time.Minute + 40*time.Second, "26 min left"}, {80 * time.Minute, "1 h 20 min left"},
	} {
		assert.Equal(t, tc.want, humanETA(tc.d), "humanETA(%v)", tc.d)
	}
}

func TestOfferNotice(t *testing.T) {
	bob := engine.Peer{ID: "b", Name: "Bob"}
	for _, tc := range []struct {
		o    engine.Offer
		want string
	}{
		{engine.Offer{From: bob, Files: 1}, "Bob wants to send you 1 file"},
		{engine.Offer{From: bob, Files: 3}, "Bob wants to send you 3 files"},
		{engine.Offer{From: bob, Files: 4, Folders: 1}, "Bob wants to send you 4 files in 1 folder"},
		{engine.Offer{From: bob, Text: "hi"}, "Bob wants to send you a message"},
		{engine.Offer{From: engine.Peer{ID: "0123456789abcdef"}, Files: 2}, "Device 01234567 wants to send you 2 files"},
	} {
		assert.Equal(t, tc.want, offerNotice(tc.o))
	}
}

func TestItemDetail(t *testing.T) {
	it := engine.Item{Direction: engine.Outgoing, Peer: engine.Peer{Name: "Bob"}, State: engine.StateRunning,
		Bytes: 12_300_000, Total: 40_000_000, Speed: 12.3e6, ETA: 3 * time.Second}
	assert.Equal(t, "to Bob · 12.3 MB of 40.0 MB · 12.3 MB/s · 3 s left", itemDetail(it))
	it.Code = "363 453"
	assert.Equal(t, "to Bob · 12.3 MB of 40.0 MB · code 363 453 · 12.3 MB/s · 3 s left", itemDetail(it), "the connection's verification code")
	waiting := it
	waiting.State, waiting.Bytes = engine.StateConnecting, 0
	assert.Equal(t, "to Bob · Code 363 453 · 0 B of 40.0 MB", itemDetail(waiting), "the code first while the answer is awaited")
	it.Direction, it.State, it.Files, it.Bytes = engine.Incoming, engine.StateDone, 2, 40_000_000
	assert.Equal(t, "from Bob · 2 files · 40.0 MB", itemDetail(it))
	assert.InDelta(t, 1.0, progress(it), 1e-9)
	assert.InDelta(t, 0.0, progress(engine.Item{}), 1e-9)
}
