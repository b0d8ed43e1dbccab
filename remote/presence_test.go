package remote

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/internal/peertest"
	"github.com/thepeerdrop/peerdrop/pairing"
	"github.com/thepeerdrop/peerdrop/signaling"
)

// A paired device finds the host by its id and connects without a code;
// a device the host does not know is refused; an id nobody announced is
// not online.
func TestKnownDialer(t *testing.T) {
	verifyNoLeaks(t)
	w := newWorld(t)
	ctx := testContext(t)
	hostCfg, friendCfg, strangerCfg := peertest.Config(t, "Receiver"), peertest.Config(t, "Friend"), peertest.Config(t, "Stranger")
	hostClient := dialRendezvous(t, w.url, hostCfg)
	require.NoError(t, hostClient.Announce(ctx, hostCfg.Identity.Signer(), hostCfg.Identity.CertificateDER()))
	known := func(id, fp string) bool {
		return id == friendCfg.Identity.DeviceID && fp == friendCfg.Identity.Fingerprint
	}
	hs := serveHost(t, &Host{Config: hostCfg, Known: known}, hostClient)
	hs.code(t)
	pinned := pairing.Peer{ID: hostCfg.Identity.DeviceID, Fingerprint: hostCfg.Identity.Fingerprint}

	d := NewKnownDialer(dialRendezvous(t, w.url, friendCfg), pinned, friendCfg, nil)
	defer d.Close()
	fc, err := d.Dial(ctx)
	require.NoError(t, err)
	defer fc.Close()
	hc := hs.conn(t)
	assert.Equal(t, friendCfg.Identity.Fingerprint, hc.Remote.Fingerprint)
	exchange(t, fc, hc)

	s := NewKnownDialer(dialRendezvous(t, w.url, strangerCfg), pinned, strangerCfg, nil)
	defer s.Close()
	_, err = s.Dial(ctx)
	var re *signaling.RemoteError
	require.ErrorAs(t, err, &re)
	assert.Contains(t, re.Message, "pair with a code first")
	assert.ErrorIs(t, hs.err(t), ErrNotPaired)

	// The host's pinned certificate is not the one it presents: refused.
	wrong := pinned
	wrong.Fingerprint = strangerCfg.Identity.Fingerprint
	x := NewKnownDialer(dialRendezvous(t, w.url, friendCfg), wrong, friendCfg, nil)
	defer x.Close()
	_, err = x.Dial(ctx)
	assert.ErrorIs(t, err, pairing.ErrFingerprintSwapped)

	n := NewKnownDialer(dialRendezvous(t, w.url, friendCfg), pairing.Peer{ID: "nobody0123456789", Fingerprint: pinned.Fingerprint}, friendCfg, nil)
	defer n.Close()
	_, err = n.Dial(ctx)
	assert.ErrorIs(t, err, ErrNotOnline)
}
