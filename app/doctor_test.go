package app

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Settings' *Check the network* runs the engine's check and shows its
// report in a dialog.
func TestCheckTheNetwork(t *testing.T) {
	u, f := newTestUI(t)
	u.tabs.Select(u.settingsTab)
	require.NotNil(t, u.settings.check)
	assert.Equal(t, "Check the network", u.settings.check.Text)
	test.Tap(u.settings.check)
	assert.Equal(t, []string{"Diagnose "}, f.Calls())
	require.NotNil(t, u.settings.report, "a report is shown")
	shown := strings.Join(texts(u.win), "\n")
	assert.Contains(t, shown, "Network check")
	assert.Contains(t, shown, "eth0: 192.168.1.5")
	assert.Contains(t, shown, "Multicast (mDNS, UDP 5353): sent, no other device heard")
	assert.Contains(t, shown, "No other device's mDNS (multicast) was heard.")
	assert.False(t, u.settings.check.Disabled(), "ready for another check")
}
