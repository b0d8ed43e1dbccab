package app

import (
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/engine"
)

func sampleOffer(id string) engine.Offer {
	return engine.Offer{ID: id, From: engine.Peer{ID: "b", Name: "Bob's Phone"}, Code: "482 913", Files: 3,
		Size: 12_400_000, First: []string{"IMG_0412.jpg", "IMG_0413.jpg"}, Text: "From the trip"}
}

func TestOfferPromptAccept(t *testing.T) {
	u, f := newTestUI(t)
	test.AssertNotificationSent(t, fyne.NewNotification("ThePeerDrop", "Bob's Phone wants to send you 3 files"), func() {
		u.HandleEvent(engine.OfferReceived{Offer: sampleOffer("o1")})
	})
	p := u.offers["o1"]
	require.NotNil(t, p)
	for _, s := range []string{"Bob's Phone", "3 files · 12.4 MB", "IMG_0412.jpg", "and 1 more", "From the trip", "482 913"} {
		assert.True(t, shows(u.win, s), "the prompt shows %q: %q", s, texts(u.win))
	}

	test.Tap(p.accept)
	assert.Equal(t, []string{"Answer o1 true"}, f.Calls())
	assert.Nil(t, u.offers["o1"])
	assert.False(t, shows(u.win, "482 913"), "the prompt is gone")
}

func TestOfferPromptDecline(t *testing.T) {
	u, f := newTestUI(t)
	u.HandleEvent(engine.OfferReceived{Offer: sampleOffer("o1")})
	u.HandleEvent(engine.OfferReceived{Offer: sampleOffer("o2")})
	test.Tap(u.offers["o2"].decline)
	assert.Equal(t, []string{"Answer o2 false"}, f.Calls())
	require.NotNil(t, u.offers["o1"], "the other offer still waits")
	test.Tap(u.offers["o1"].accept)
	assert.Equal(t, []string{"Answer o2 false", "Answer o1 true"}, f.Calls())
}

func TestOfferClosedHidesPrompt(t *testing.T) {
	u, f := newTestUI(t)
	u.HandleEvent(engine.OfferReceived{Offer: sampleOffer("o1")})
	u.HandleEvent(engine.OfferReceived{Offer: sampleOffer("o1")}) // once only
	assert.Len(t, u.win.Canvas().Overlays().List(), 1)
	u.HandleEvent(engine.OfferClosed{ID: "o1"})
	assert.Empty(t, u.offers)
	assert.Nil(t, u.win.Canvas().Overlays().Top(), "no prompt left")
	u.HandleEvent(engine.OfferClosed{ID: "o1"}) // twice is fine
	assert.Empty(t, f.Calls(), "the engine closed it; no answer")
}

func TestOfferTextOnly(t *testing.T) {
	u, _ := newTestUI(t)
	test.AssertNotificationSent(t, fyne.NewNotification("ThePeerDrop", "Bob wants to send you a message"), func() {
		u.HandleEvent(engine.OfferReceived{Offer: engine.Offer{ID: "o1", From: engine.Peer{ID: "b", Name: "Bob"}, Text: "hello there", Code: "111 222"}})
	})
	assert.True(t, shows(u.win, "hello there"))
}

// TestOfferPromptEscapesInvisible: a name with a zero-width space or a line
// separator shows them as escapes, a name that mixes scripts is marked, and
// nothing invisible reaches a label.
func TestOfferPromptEscapesInvisible(t *testing.T) {
	u, _ := newTestUI(t)
	o := engine.Offer{ID: "o1", From: engine.Peer{ID: "b", Name: "B\u0430nk\u200b"}, Code: "111 222", Files: 2, Size: 10,
		First: []string{"a\u200bb\u2028c.txt", "p\u0430ypal.txt"}, Text: "two\nlines\u202e"}
	u.HandleEvent(engine.OfferReceived{Offer: o})
	for _, s := range []string{
		`B` + "\u0430" + `nk\u200B`, `a\u200Bb\u2028c.txt`, "p\u0430ypal.txt", "The name above mixes Cyrillic and Latin letters",
		"The name mixes Cyrillic and Latin letters", "two\nlines\\u202E",
	} {
		assert.True(t, shows(u.win, s), "the prompt shows %q: %q", s, texts(u.win))
	}
	for _, l := range texts(u.win) {
		assert.NotContains(t, l, "\u200b", "a raw zero-width space in %q", l)
		assert.NotContains(t, l, "\u2028", "a raw line separator in %q", l)
		assert.NotContains(t, l, "\u202e", "a raw right-to-left override in %q", l)
	}
}

// badgeOf is the type badge an avatar shows, nil for none.
func badgeOf(a *avatar) fyne.Resource {
	r := test.WidgetRenderer(a).(*avatarRenderer)
	if r.icon.Hidden {
		return nil
	}
	return r.icon.Resource
}

// The offer's avatar shows the sender's type: as it advertises it when it
// is nearby, else as its hello said (a command line that only sends does
// not advertise), else no type at all: never a laptop by default.
func TestOfferAvatarType(t *testing.T) {
	u, _ := newTestUI(t)
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{dev("d", "Dan", "desktop")}})
	o := sampleOffer("o1")
	o.From = engine.Peer{ID: "d", Name: "Dan"}
	u.HandleEvent(engine.OfferReceived{Offer: o})
	o2 := sampleOffer("o2")
	o2.From = engine.Peer{ID: "x", Name: "peerdrop-cli"}
	u.HandleEvent(engine.OfferReceived{Offer: o2})
	o3 := sampleOffer("o3")
	o3.From, o3.Type = engine.Peer{ID: "y", Name: "peerdrop --type desktop"}, "desktop"
	u.HandleEvent(engine.OfferReceived{Offer: o3})

	badges := map[string]fyne.Resource{}
	for _, ov := range u.win.Canvas().Overlays().List() {
		walk(ov, func(obj fyne.CanvasObject) {
			if a, ok := obj.(*avatar); ok {
				badges[a.id] = badgeOf(a)
			}
		})
	}
	require.Len(t, badges, 3)
	assert.Equal(t, iconDesktop, badges["d"], "a desktop shows as a desktop")
	assert.Nil(t, badges["x"], "unknown type: no badge")
	assert.Equal(t, iconDesktop, badges["y"], "not nearby: the type its hello said")
	assert.Equal(t, iconDesktop, badgeOf(u.nearby.tiles["d"].av))
}
