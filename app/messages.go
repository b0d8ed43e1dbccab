package app

import (
	"fmt"
	"image/color"
	"slices"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/thepeerdrop/peerdrop/engine"
	"github.com/thepeerdrop/peerdrop/internal/visible"
)

// messagesView holds the conversations: peers on the left, the chosen
// conversation on the right.
type messagesView struct {
	u       *UI
	peers   []engine.Peer               // nearby devices, then others we talked with
	known   map[string]engine.Peer      // everyone we talked with
	convs   map[string][]engine.Message // conversations loaded so far, oldest first
	unread  map[string]int
	drafts  map[string]string // unsent text, by peer id: each conversation keeps its own
	loaded  map[string]bool   // the engine's history is in convs
	current string            // peer id, "" for none

	list    *widget.List
	header  *widget.Label
	msgs    *fyne.Container
	scroll  *container.Scroll
	entry   *widget.Entry
	sendBtn *widget.Button
	none    fyne.CanvasObject
	chat    fyne.CanvasObject
	content fyne.CanvasObject
}

func newMessagesView(u *UI) *messagesView {
	m := &messagesView{u: u, known: map[string]engine.Peer{}, convs: map[string][]engine.Message{}, unread: map[string]int{}, drafts: map[string]string{}, loaded: map[string]bool{}}
	m.list = widget.NewList(
		func() int { return len(m.peers) },
		func() fyne.CanvasObject {
			av := newAvatar("", "", "", 28)
			name := widget.NewLabel("")
			name.Truncation = fyne.TextTruncateEllipsis
			count := widget.NewLabelWithStyle("", fyne.TextAlignTrailing, fyne.TextStyle{Bold: true})
			count.Importance = widget.HighImportance
			status := newMuted("", theme.SizeNameCaptionText, fyne.TextAlignLeading)
			return container.NewBorder(nil, nil, av, count, newTightVBox(-theme.Padding()*3, name, status))
		},
		func(i widget.ListItemID, o fyne.CanvasObject) {
			if i >= len(m.peers) {
				return
			}
			p := m.peers[i]
			c := o.(*fyne.Container)
			text, av, count := c.Objects[0].(*fyne.Container), c.Objects[1].(*avatar), c.Objects[2].(*widget.Label)
			name, status := peerRowText(text)
			kind := ""
			trusted := false
			if d, ok := m.u.device(p.ID); ok {
				kind, trusted = d.Type, d.Trusted
			}
			av.set(p.ID, peerName(p), kind, trusted, false)
			av.Refresh()
			name.SetText(peerName(p))
			if s := m.u.onlineText(p.ID); s != "" {
				setStyled(status, s, theme.ColorNameSuccess)
				status.Show()
			} else {
				status.Hide()
			}
			if n := m.unread[p.ID]; n > 0 {
				count.SetText(fmt.Sprint(n))
			} else {
				count.SetText("")
			}
		})
	m.list.OnSelected = func(i widget.ListItemID) {
		if i < len(m.peers) {
			m.open(m.peers[i])
		}
	}

	m.header = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	m.header.SizeName = theme.SizeNameSubHeadingText
	m.msgs = container.New(layout.NewCustomPaddedVBoxLayout(theme.Padding()))
	m.scroll = container.NewVScroll(container.NewPadded(m.msgs))
	m.entry = widget.NewEntry()
	m.entry.SetPlaceHolder("Message")
	m.entry.OnChanged = func(s string) {
		if m.current != "" {
			m.drafts[m.current] = s
		}
	}
	m.entry.OnSubmitted = func(string) { m.sendCurrent() }
	m.sendBtn = widget.NewButtonWithIcon("Send", theme.MailSendIcon(), m.sendCurrent)
	m.sendBtn.Importance = widget.HighImportance
	bottom := container.NewBorder(widget.NewSeparator(), nil, nil, m.sendBtn, m.entry)
	m.chat = container.NewBorder(container.NewVBox(m.header, widget.NewSeparator()), bottom, nil, nil, m.scroll)

	noneTitle := widget.NewLabelWithStyle("Choose a device to see your messages", fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	noneSub := newMuted("Messages travel straight to the device, like files.", theme.SizeNameText, fyne.TextAlignCenter)
	m.none = centred(noneTitle, noneSub)
	m.chat.Hide()

	split := container.NewHSplit(m.list, container.NewStack(m.none, m.chat))
	split.Offset = 0.3
	m.content = split
	return m
}

// devicesChanged puts the nearby devices first in the list of peers.
func (m *messagesView) devicesChanged(devs []engine.Device) {
	peers := make([]engine.Peer, 0, len(devs)+len(m.known))
	seen := map[string]bool{}
	for _, d := range devs {
		if !seen[d.ID] {
			seen[d.ID] = true
			peers = append(peers, d.Peer())
		}
	}
	others := make([]engine.Peer, 0, len(m.known))
	for id, p := range m.known {
		if !seen[id] {
			others = append(others, p)
		}
	}
	slices.SortFunc(others, func(a, b engine.Peer) int {
		if peerName(a) < peerName(b) {
			return -1
		}
		if peerName(a) > peerName(b) {
			return 1
		}
		return 0
	})
	m.peers = append(peers, others...)
	m.list.Refresh()
	m.selectCurrent()
}

// shown is called when the tab is chosen: the conversation on screen is read.
func (m *messagesView) shown() {
	if m.current != "" && m.chat.Visible() {
		m.u.withdrawMessageNotice(m.current)
		m.unread[m.current] = 0
		m.u.updateMessagesTab()
	}
	m.devicesChanged(m.u.devices)
}

// unreadTotal counts the unread messages of every conversation.
func (m *messagesView) unreadTotal() int {
	n := 0
	for _, c := range m.unread {
		n += c
	}
	return n
}

// updateMessagesTab shows the unread count in the tab's title.
func (u *UI) updateMessagesTab() {
	text := "Messages"
	if n := u.messages.unreadTotal(); n > 0 {
		text = fmt.Sprintf("Messages (%d)", n)
	}
	if u.messagesTab != nil && u.messagesTab.Text != text {
		u.messagesTab.Text = text
		u.tabTitlesChanged()
	}
}

// onlineText says whether a peer can be reached now: "Online" when it is on
// this network or a page of this device's web client, "Online via server"
// when it is paired and away; "" when it is not in the nearby list, or is
// listed only because it is trusted (offline).
func (u *UI) onlineText(id string) string {
	d, ok := u.device(id)
	switch {
	case !ok, d.Offline:
		return ""
	case d.Away:
		return "Online via server"
	}
	return "Online"
}

// peerRowText is the name and the status line of a row of the peers list.
func peerRowText(c *fyne.Container) (*widget.Label, *widget.RichText) {
	return c.Objects[0].(*widget.Label), c.Objects[1].(*widget.RichText)
}

func (m *messagesView) selectCurrent() {
	for i, p := range m.peers {
		if p.ID == m.current {
			m.list.Select(i)
			return
		}
	}
}

// open shows the conversation with p.
func (m *messagesView) open(p engine.Peer) {
	if p.ID == "" {
		return
	}
	if m.u.tabs != nil && m.u.tabs.Selected() == m.u.messagesTab {
		m.u.withdrawMessageNotice(p.ID) // read now
	}
	if _, ok := m.known[p.ID]; !ok || p.Name != "" {
		m.known[p.ID] = p
	}
	if !m.loaded[p.ID] && m.u.eng != nil {
		m.loaded[p.ID] = true
		// The engine's history first, then anything that came meanwhile.
		loaded := slices.Clone(m.u.eng.Messages(p.ID))
		for _, msg := range m.convs[p.ID] {
			loaded = mergeMessage(loaded, msg)
		}
		m.convs[p.ID] = loaded
	}
	if m.current == p.ID && m.chat.Visible() {
		return
	}
	// Each conversation has its own draft: what was typed to someone else
	// stays with them (OnChanged saved it).
	m.current = p.ID
	m.entry.SetText(m.drafts[p.ID])
	m.unread[p.ID] = 0
	m.header.SetText(peerName(p))
	m.none.Hide()
	m.chat.Show()
	m.render()
	m.list.Refresh()
	m.u.updateMessagesTab()
}

// add puts a message in its conversation (replacing an older version of it).
func (m *messagesView) add(msg engine.Message) (isNew bool) {
	id := msg.Peer.ID
	if _, ok := m.known[id]; !ok || msg.Peer.Name != "" {
		m.known[id] = msg.Peer
	}
	before := len(m.convs[id])
	m.convs[id] = mergeMessage(m.convs[id], msg)
	isNew = len(m.convs[id]) > before
	if id == m.current && m.chat.Visible() {
		m.render()
	}
	// Unread unless the conversation is on screen now.
	if isNew && !msg.Outgoing && (id != m.current || !m.chat.Visible() || m.u.tabs.Selected() != m.u.messagesTab) {
		m.unread[id]++
		m.u.updateMessagesTab()
	}
	if !slices.ContainsFunc(m.peers, func(p engine.Peer) bool { return p.ID == id }) {
		m.devicesChanged(m.u.devices)
	} else {
		m.list.Refresh()
	}
	return isNew
}

// mergeMessage replaces the message with msg's id, or appends msg.
func mergeMessage(conv []engine.Message, msg engine.Message) []engine.Message {
	if msg.ID != "" {
		for i := range conv {
			if conv[i].ID == msg.ID {
				conv[i] = msg
				return conv
			}
		}
	}
	return append(conv, msg)
}

func (m *messagesView) render() {
	conv := m.convs[m.current]
	objs := make([]fyne.CanvasObject, 0, len(conv))
	for _, msg := range conv {
		objs = append(objs, newBubble(msg))
	}
	if len(objs) == 0 {
		objs = append(objs, newMuted("No messages yet. Say hello.", theme.SizeNameText, fyne.TextAlignCenter))
	}
	m.msgs.Objects = objs
	m.msgs.Refresh()
	m.scroll.ScrollToBottom()
}

// sendCurrent sends the draft of the conversation on screen. A text that
// could not be sent stays that conversation's draft, and only its.
func (m *messagesView) sendCurrent() {
	p, ok := m.known[m.current]
	text := m.entry.Text
	if !ok || text == "" {
		return
	}
	if err := m.u.sendTextTo(p, text); err != nil {
		m.drafts[p.ID] = text
		m.u.ShowError(err)
		return
	}
	delete(m.drafts, p.ID)
	if m.current == p.ID {
		m.entry.SetText("")
	}
}

// messageReceived adds a message from the engine and tells the user about
// a new one from someone else.
func (u *UI) messageReceived(msg engine.Message) {
	isNew := u.messages.add(msg)
	if msg.Outgoing && !isNew {
		// The engine reports how sending a message we added ended.
		u.nearby.textOutcome(msg)
	}
	if isNew && !msg.Outgoing {
		u.notifyMessage(msg)
	}
}

// openConversation switches to the Messages tab at a peer.
func (u *UI) openConversation(p engine.Peer) {
	u.tabs.Select(u.messagesTab)
	u.messages.open(p)
	u.messages.devicesChanged(u.devices)
}

// newBubble is one message: right and tinted when we sent it, left when we
// received it, with its time and, if it was not delivered, why.
func newBubble(msg engine.Message) fyne.CanvasObject {
	text := widget.NewLabel(visible.Text(msg.Text))
	text.Wrapping = fyne.TextWrapWord
	caption := msg.Time.Format("15:04")
	if msg.Time.IsZero() {
		caption = ""
	}
	info := newMuted(caption, theme.SizeNameCaptionText, fyne.TextAlignLeading)
	if msg.Outgoing {
		info.Segments[0].(*widget.TextSegment).Style.Alignment = fyne.TextAlignTrailing
	}
	if msg.Err != "" {
		setStyled(info, "Not delivered: "+msg.Err, theme.ColorNameError)
		info.Wrapping = fyne.TextWrapWord
	}
	bg := canvas.NewRectangle(color.Transparent)
	bg.CornerRadius = 10
	if msg.Outgoing {
		bg.FillColor = theme.Color(theme.ColorNameSelection)
	} else {
		bg.FillColor = theme.Color(theme.ColorNameInputBackground)
	}
	if msg.Outgoing {
		return container.New(&bubbleLayout{outgoing: true}, bg, text, info)
	}
	// A received text can be copied (a link, a code, an address).
	copyBtn := widget.NewButtonWithIcon("", theme.ContentCopyIcon(), func() {
		fyne.CurrentApp().Clipboard().SetContent(msg.Text)
	})
	copyBtn.Importance = widget.LowImportance
	return container.New(&bubbleLayout{}, bg, text, info, copyBtn)
}

// bubbleCopy is the copy button of a received message's bubble, if any.
func bubbleCopy(o fyne.CanvasObject) *widget.Button {
	c, ok := o.(*fyne.Container)
	if !ok || len(c.Objects) < 4 {
		return nil
	}
	b, _ := c.Objects[3].(*widget.Button)
	return b
}

// bubbleLayout puts a message's background, text and caption at one side,
// at most 70% of the width wide.
type bubbleLayout struct {
	outgoing bool
	height   float32 // of the last layout, for MinSize
}

func (l *bubbleLayout) MinSize(objs []fyne.CanvasObject) fyne.Size {
	text, info := objs[1].MinSize(), objs[2].MinSize()
	h := text.Height + info.Height - theme.Padding()*2
	return fyne.NewSize(0, max(h, l.height))
}

func (l *bubbleLayout) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	bg, text, info := objs[0], objs[1].(*widget.Label), objs[2].(*widget.RichText)
	pad := theme.Padding() * 2
	natural := fyne.MeasureText(text.Text, theme.TextSize(), text.TextStyle).Width + 2*pad
	infoW := fyne.MeasureText(styledText(info), theme.CaptionTextSize(), fyne.TextStyle{}).Width + 2*pad
	w := min(max(natural, infoW), size.Width*0.7)
	x := float32(0)
	if l.outgoing {
		x = size.Width - w
	}
	text.Resize(fyne.NewSize(w, text.MinSize().Height))
	th := text.MinSize().Height
	text.Move(fyne.NewPos(x, 0))
	text.Resize(fyne.NewSize(w, th))
	info.Resize(fyne.NewSize(w, info.MinSize().Height))
	ih := info.MinSize().Height
	info.Move(fyne.NewPos(x, th-pad))
	info.Resize(fyne.NewSize(w, ih))
	bg.Move(fyne.NewPos(x, 0))
	h := th + ih - pad
	bg.Resize(fyne.NewSize(w, h))
	l.height = h
	if len(objs) > 3 { // the copy button, beside the bubble
		b := objs[3]
		bs := b.MinSize()
		b.Move(fyne.NewPos(x+w+theme.Padding(), (h-bs.Height)/2))
		b.Resize(bs)
	}
}
