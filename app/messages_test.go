package app

import (
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"github.com/stretchr/testify/assert"

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
