package app

import (
	"errors"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/engine"
)

func TestMessages(t *testing.T) {
	u, f := newTestUI(t)
	bob := engine.Peer{ID: "b", Name: "Bob"}
	f.messages["b"] = []engine.Message{{ID: "old", Peer: bob, Text: "earlier today", Time: time.Now()}}
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{dev("b", "Bob", "laptop")}})

	in := engine.Message{ID: "m1", Peer: bob, Text: "are you there?", Time: time.Now()}
	test.AssertNotificationSent(t, fyne.NewNotification("ThePeerDrop", "Bob: are you there?"), func() {
		u.HandleEvent(engine.MessageReceived{Message: in})
	})
	assert.Equal(t, 1, u.messages.unread["b"], "unread until opened")

	u.openConversation(bob)
	assert.Equal(t, u.messagesTab, u.tabs.Selected())
	assert.Equal(t, 0, u.messages.unread["b"])
	assert.True(t, shows(u.win, "earlier today"), "history from the engine")
	assert.True(t, shows(u.win, "are you there?"))

	test.Type(u.messages.entry, "yes!")
	test.Tap(u.messages.sendBtn)
	assert.Equal(t, []string{"SendText b yes!"}, f.Calls())
	assert.Empty(t, u.messages.entry.Text)
	assert.True(t, shows(u.win, "yes!"))

	// The engine reports the same message again, now undelivered: it is
	// updated in place, not added.
	sent := u.messages.convs["b"][2]
	sent.Err = "Bob went away"
	u.HandleEvent(engine.MessageReceived{Message: sent})
	assert.Len(t, u.messages.convs["b"], 3)
	assert.True(t, shows(u.win, "Not delivered: Bob went away"))

	// A message from someone not nearby adds them to the list.
	u.HandleEvent(engine.MessageReceived{Message: engine.Message{ID: "x", Peer: engine.Peer{ID: "z", Name: "Zoe"}, Text: "hi"}})
	assert.Len(t, u.messages.peers, 2)
	assert.Equal(t, 1, u.messages.unread["z"])
}

func TestSendTextFromNearby(t *testing.T) {
	u, f := newTestUI(t)
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{dev("b", "Bob", "laptop"), dev("c", "Carol", "phone")}})
	u.sendText([]engine.Device{u.nearby.tiles["b"].dev, u.nearby.tiles["c"].dev}, "lunch?")
	assert.Equal(t, []string{"SendText b lunch?", "SendText c lunch?"}, f.Calls())
	assert.Len(t, u.messages.convs["c"], 1)
}

// A draft belongs to its conversation: a text that failed to go to Dave
// stays Dave's, and Bob's conversation starts empty and sends Bob's text.
func TestMessageDraftStaysInItsConversation(t *testing.T) {
	u, f := newTestUI(t)
	bob, dave := engine.Peer{ID: "b", Name: "Bob"}, engine.Peer{ID: "d", Name: "Dave"}
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{dev("b", "Bob", "laptop"), dev("d", "Dave", "desktop")}})

	u.openConversation(dave)
	f.sendErr = errors.New("Dave is not answering")
	test.Type(u.messages.entry, "for Dave only")
	test.Tap(u.messages.sendBtn)
	assert.Equal(t, "for Dave only", u.messages.entry.Text, "a failed send keeps the text")
	f.sendErr = nil

	u.openConversation(bob)
	assert.Empty(t, u.messages.entry.Text, "Dave's text did not follow into Bob's conversation")
	test.Type(u.messages.entry, "hi Bob")
	test.Tap(u.messages.sendBtn)
	assert.Equal(t, []string{"SendText d for Dave only", "SendText b hi Bob"}, f.Calls())

	test.Type(u.messages.entry, "half a thought")
	u.openConversation(dave)
	assert.Equal(t, "for Dave only", u.messages.entry.Text, "Dave's draft is back")
	u.openConversation(bob)
	assert.Equal(t, "half a thought", u.messages.entry.Text, "and so is Bob's")
}

// The tab counts unread messages; the list says who is online; a received
// text can be copied.
func TestMessagesUnreadOnlineCopy(t *testing.T) {
	u, _ := newTestUI(t)
	bob, zoe := engine.Peer{ID: "b", Name: "Bob"}, engine.Peer{ID: "z", Name: "Zoe"}
	away := dev("a", "Ann", "laptop")
	away.Away = true
	off := dev("o", "Otto", "desktop")
	off.Trusted, off.Offline, off.Addrs = true, true, nil
	u.HandleEvent(engine.DevicesChanged{Devices: []engine.Device{dev("b", "Bob", "laptop"), away, off}})
	assert.Equal(t, "Messages", u.messagesTab.Text)

	u.HandleEvent(engine.MessageReceived{Message: engine.Message{ID: "1", Peer: bob, Text: "one"}})
	u.HandleEvent(engine.MessageReceived{Message: engine.Message{ID: "2", Peer: zoe, Text: "https://example.org/x"}})
	assert.Equal(t, "Messages (2)", u.messagesTab.Text)

	u.openConversation(bob)
	assert.Equal(t, "Messages (1)", u.messagesTab.Text, "Bob's message is read")
	// A message to the conversation on screen is read at once; with another
	// tab chosen it is not.
	u.HandleEvent(engine.MessageReceived{Message: engine.Message{ID: "3", Peer: bob, Text: "two"}})
	assert.Equal(t, "Messages (1)", u.messagesTab.Text)
	u.tabs.Select(u.nearbyTab)
	u.HandleEvent(engine.MessageReceived{Message: engine.Message{ID: "4", Peer: bob, Text: "three"}})
	assert.Equal(t, "Messages (2)", u.messagesTab.Text)
	u.tabs.Select(u.messagesTab)
	assert.Equal(t, "Messages (1)", u.messagesTab.Text)

	assert.Equal(t, "Online", u.onlineText("b"))
	assert.Equal(t, "Online via server", u.onlineText("a"))
	assert.Empty(t, u.onlineText("z"), "Zoe is not around")
	assert.Empty(t, u.onlineText("o"), "Otto is listed (trusted) but off")
	assert.True(t, shows(u.win, "Bob"))
	status := map[string]string{}
	for i, p := range u.messages.peers {
		row := u.messages.list.CreateItem()
		u.messages.list.UpdateItem(i, row)
		name, st := peerRowText(row.(*fyne.Container).Objects[0].(*fyne.Container))
		if st.Visible() {
			status[name.Text] = styledText(st)
		} else {
			status[name.Text] = ""
		}
		_ = p
	}
	assert.Equal(t, map[string]string{"Bob": "Online", "Ann": "Online via server", "Otto": "", "Zoe": ""}, status)

	u.openConversation(zoe)
	var copies []*widget.Button
	for _, o := range u.messages.msgs.Objects {
		if b := bubbleCopy(o); b != nil {
			copies = append(copies, b)
		}
	}
	require.Len(t, copies, 1, "a copy button on the received text")
	test.Tap(copies[0])
	assert.Equal(t, "https://example.org/x", u.app.Clipboard().Content())

	u.openConversation(bob)
	n := 0
	for _, o := range u.messages.msgs.Objects {
		if bubbleCopy(o) != nil {
			n++
		}
	}
	assert.Equal(t, 3, n, "received ones only")
}
