package engine

// Conversations: the text messages sent and received, per peer.

import "slices"

// maxMessages bounds the conversation kept with one peer.
const maxMessages = 500

// Messages is the conversation with a peer, oldest first.
func (e *Engine) Messages(peerID string) []Message {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.messages[peerID])
}

// addMessageLocked appends m to its peer's conversation; the caller holds e.mu.
func (e *Engine) addMessageLocked(m Message) {
	c := append(e.messages[m.Peer.ID], m)
	if len(c) > maxMessages {
		c = slices.Delete(c, 0, len(c)-maxMessages)
	}
	e.messages[m.Peer.ID] = c
}
