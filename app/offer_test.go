package app

import (
	"fmt"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/engine"
)

func sampleOffer(id string) engine.Offer {
	return engine.Offer{ID: id, From: engine.Peer{ID: "b", Name: "Bob's Phone"}, Code: "482 913", Files: 3,
		Size: 12_400_000, First: []string{"IMG_0412.jpg", "IMG_0413.jpg"}, Text: "From the trip",
		Entries:    []engine.OfferEntry{{Name: "IMG_0412.jpg", Files: 1, Size: 4_000_000}, {Name: "IMG_0413.jpg", Files: 1, Size: 4_000_000}},
		EntryCount: 3}
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
		First: []string{"a\u200bb\u2028c.txt", "p\u0430ypal.txt"}, Text: "two\nlines\u202e",
		Entries: []engine.OfferEntry{{Name: "a\u200bb\u2028c.txt", Files: 1, Size: 5}, {Name: "p\u0430ypal.txt", Files: 1, Size: 5}}, EntryCount: 2}
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

// trip is an offer of one folder of 5 files and 2 loose files: 7 files in
// 1 folder, 3 top-level entries.
func trip(id string) engine.Offer {
	return engine.Offer{ID: id, From: engine.Peer{ID: "b", Name: "Bob's Phone"}, Code: "482 913", Files: 7, Folders: 1,
		Size: 12_400_000, First: []string{"Trip", "a.jpg", "b.jpg"},
		Entries: []engine.OfferEntry{{Name: "Trip", Folder: true, Files: 5, Size: 10_000_000},
			{Name: "a.jpg", Files: 1, Size: 1_200_000}, {Name: "b.jpg", Files: 1, Size: 1_200_000}},
		EntryCount: 3}
}

// TestOfferPromptCounts: "7 files in 1 folder" is listed as its three
// top-level entries, the folder with a folder icon and its own count, and
// no "and N more" when everything is listed.
func TestOfferPromptCounts(t *testing.T) {
	u, _ := newTestUI(t)
	u.HandleEvent(engine.OfferReceived{Offer: trip("o1")})
	p := u.offers["o1"]
	require.NotNil(t, p)
	for _, s := range []string{"wants to send you 1 folder and 2 files · 12.4 MB", "Trip", "5 files · 10.0 MB", "a.jpg", "b.jpg", "1.2 MB"} {
		assert.True(t, shows(u.win, s), "the prompt shows %q: %q", s, texts(u.win))
	}
	for _, l := range texts(u.win) {
		assert.NotRegexp(t, `and \d+ more`, l, "everything is listed: %q", texts(u.win))
	}
	require.Len(t, p.rows, 3)
	assert.Equal(t, theme.FolderIcon(), p.rows[0].icon.Resource, "a folder shows a folder icon")
	assert.Equal(t, theme.FileIcon(), p.rows[1].icon.Resource)

	// An offer with more top-level entries than listed says how many more.
	o := trip("o2")
	o.EntryCount = 5
	u.HandleEvent(engine.OfferReceived{Offer: o})
	assert.True(t, shows(u.win, "and 2 more"), "%q", texts(u.win))
	assert.Nil(t, u.offers["o2"].rows[0].check, "only a fully listed offer can be chosen from")
}

// TestOfferPromptChoose: every entry is ticked at first; unticking one
// makes Accept "Accept 2 of 3" and sends only the ticked indexes; none
// ticked disables Accept.
func TestOfferPromptChoose(t *testing.T) {
	u, f := newTestUI(t)
	u.HandleEvent(engine.OfferReceived{Offer: trip("o1")})
	p := u.offers["o1"]
	require.Len(t, p.rows, 3)
	for _, r := range p.rows {
		require.NotNil(t, r.check)
		assert.True(t, r.check.Checked, "ticked by default")
	}
	assert.Equal(t, "Accept", p.accept.Text)

	test.Tap(p.rows[1].check)
	assert.Equal(t, "Accept 2 of 3", p.accept.Text)
	assert.GreaterOrEqual(t, p.accept.Size().Width, p.accept.MinSize().Width, "the longer label fits")
	test.Tap(p.rows[0].check)
	test.Tap(p.rows[2].check)
	assert.True(t, p.accept.Disabled(), "nothing ticked: nothing to accept")
	test.Tap(p.accept)
	assert.Empty(t, f.Calls())

	test.Tap(p.rows[0].check)
	test.Tap(p.rows[2].check)
	assert.False(t, p.accept.Disabled())
	assert.Equal(t, "Accept 2 of 3", p.accept.Text)
	test.Tap(p.accept)
	assert.Equal(t, []string{"AnswerSome o1 [0 2]"}, f.Calls())
	assert.Nil(t, u.offers["o1"])

	// All ticked is a plain accept.
	u.HandleEvent(engine.OfferReceived{Offer: trip("o2")})
	test.Tap(u.offers["o2"].accept)
	assert.Equal(t, []string{"AnswerSome o1 [0 2]", "Answer o2 true"}, f.Calls())
}

// rect is an object's rectangle on the canvas.
type rect struct {
	name       string
	x, y, w, h float32
}

func rectOf(name string, o fyne.CanvasObject) rect {
	p := fyne.CurrentApp().Driver().AbsolutePositionForObject(o)
	return rect{name, p.X, p.Y, o.Size().Width, o.Size().Height}
}

func (a rect) overlaps(b rect) bool {
	return a.x < b.x+b.w && b.x < a.x+a.w && a.y < b.y+b.h && b.y < a.y+a.h
}

// TestOfferPromptFitsShortWindow: at 360x400 the code, its hint and the
// buttons are all on screen and overlap neither each other nor the list,
// which scrolls.
func TestOfferPromptFitsShortWindow(t *testing.T) {
	u, _ := newTestUI(t)
	u.win.Resize(fyne.NewSize(360, 400))
	o := trip("o1")
	for i := range 6 {
		o.Entries = append(o.Entries, engine.OfferEntry{Name: fmt.Sprintf("extra-%d.jpg", i), Files: 1, Size: 1000})
	}
	o.EntryCount = len(o.Entries)
	o.Text = "Photos from Saturday, and a few more from Sunday morning"
	u.HandleEvent(engine.OfferReceived{Offer: o})
	p := u.offers["o1"]
	require.NotNil(t, p)

	var fixed []rect
	for _, ov := range u.win.Canvas().Overlays().List() {
		walk(ov, func(c fyne.CanvasObject) {
			if tx, ok := c.(*canvas.Text); ok {
				for _, s := range []string{"Verification code", "482 913", "Go ahead", "same code"} {
					if strings.Contains(tx.Text, s) {
						fixed = append(fixed, rectOf(tx.Text, tx))
					}
				}
			}
		})
	}
	require.NotEmpty(t, fixed, "the code is shown: %q", texts(u.win))
	fixed = append(fixed, rectOf("Accept", p.accept), rectOf("Decline", p.decline))
	canvasSize := u.win.Canvas().Size()
	for i, a := range fixed {
		assert.True(t, a.x >= 0 && a.y >= 0 && a.x+a.w <= canvasSize.Width && a.y+a.h <= canvasSize.Height,
			"%q %+v lies inside the %v window", a.name, a, canvasSize)
		for _, b := range fixed[i+1:] {
			assert.False(t, a.overlaps(b), "%q %+v overlaps %q %+v", a.name, a, b.name, b)
		}
	}
	var scrolls []rect
	for _, ov := range u.win.Canvas().Overlays().List() {
		walk(ov, func(c fyne.CanvasObject) {
			if s, ok := c.(*container.Scroll); ok {
				scrolls = append(scrolls, rectOf("list", s))
			}
		})
	}
	require.Len(t, scrolls, 1, "the list scrolls")
	assert.Positive(t, scrolls[0].h, "some of the list is in view")
	for _, a := range fixed {
		assert.False(t, a.overlaps(scrolls[0]), "%q %+v overlaps the list %+v", a.name, a, scrolls[0])
	}
}

// TestItemDetailSkipped: a send the receiver took part of says what it left out.
func TestItemDetailSkipped(t *testing.T) {
	it := engine.Item{Direction: engine.Outgoing, Peer: engine.Peer{Name: "Bob"}, State: engine.StateDone, Files: 1, Total: 5_000,
		Skipped: []string{"Trip", "song\u200b.mp3"}}
	assert.Equal(t, `to Bob · 1 file · 5.0 kB · 2 skipped: Trip, song\u200B.mp3`, itemDetail(it))
}

// TestOfferPromptTooBig: an offer larger than the free space is shown
// with "Only X free on this computer: choose less", and Accept is disabled
// until the entries ticked fit; an answer the engine refuses for space
// leaves the prompt open.
func TestOfferPromptTooBig(t *testing.T) {
	u, f := newTestUI(t)
	o := trip("o1") // Trip 10 MB, a.jpg and b.jpg 1.2 MB each
	o.TooBig, o.Room = true, 3_000_000
	u.HandleEvent(engine.OfferReceived{Offer: o})
	p := u.offers["o1"]
	require.NotNil(t, p)
	assert.True(t, shows(u.win, "Only 3.0 MB free on this computer: choose less"), "%q", texts(u.win))
	assert.True(t, p.accept.Disabled(), "all ticked: 12.4 MB do not fit in 3 MB")
	test.Tap(p.accept)
	assert.Empty(t, f.Calls())

	test.Tap(p.rows[0].check) // without Trip: 2.4 MB
	assert.False(t, p.accept.Disabled())
	assert.Equal(t, "Accept 2 of 3", p.accept.Text)
	test.Tap(p.rows[0].check)
	assert.True(t, p.accept.Disabled(), "Trip again: too much")
	test.Tap(p.rows[0].check)

	// Free space shrank meanwhile: the engine refuses, the prompt stays.
	f.ansErr = fmt.Errorf("accept o1: %w: not enough free space on the receiving device: needs 70 MB, has 1 MB", engine.ErrNoSpace)
	test.Tap(p.accept)
	assert.Equal(t, []string{"AnswerSome o1 [1 2]"}, f.Calls())
	assert.Same(t, p, u.offers["o1"], "the offer stays open: the user may choose less")
	f.ansErr = nil
	test.Tap(p.rows[2].check)
	test.Tap(p.accept)
	assert.Equal(t, []string{"AnswerSome o1 [1 2]", "AnswerSome o1 [1]"}, f.Calls())
	assert.Nil(t, u.offers["o1"])

	// An offer that fits has Accept enabled, as before.
	u.HandleEvent(engine.OfferReceived{Offer: trip("o2")})
	assert.False(t, u.offers["o2"].accept.Disabled())
	assert.False(t, shows(u.win, "choose less"))
}
