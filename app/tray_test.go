package app

import (
	"bufio"
	"os/exec"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A session bus alone is not a tray: the StatusNotifierItem host
// (org.kde.StatusNotifierWatcher) must own its name on it, or fyne's tray
// icon never registers and a hidden window cannot come back. Runs a private
// dbus-daemon.
func TestTrayAvailable(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	assert.False(t, trayAvailable("linux", env(nil)), "no session bus, no tray")
	assert.False(t, trayAvailable("linux", env(map[string]string{"DBUS_SESSION_BUS_ADDRESS": "unix:path=" + t.TempDir() + "/none"})),
		"a session bus that is not there")
	assert.True(t, trayAvailable("windows", env(nil)))
	assert.True(t, trayAvailable("darwin", env(nil)))

	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		t.Skip("skipped: needs dbus-daemon (Debian package dbus; make deps installs it)")
	}
	daemon := exec.Command("dbus-daemon", "--session", "--nofork", "--print-address=1", "--address=unix:dir="+t.TempDir())
	out, err := daemon.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, daemon.Start())
	t.Cleanup(func() { _ = daemon.Process.Kill(); _ = daemon.Wait() })
	addr, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	bus := env(map[string]string{"DBUS_SESSION_BUS_ADDRESS": strings.TrimSpace(addr)})

	assert.False(t, trayAvailable("linux", bus), "a session bus without a tray host")

	conn, err := dbus.Connect(strings.TrimSpace(addr))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	reply, err := conn.RequestName("org.kde.StatusNotifierWatcher", dbus.NameFlagDoNotQueue)
	require.NoError(t, err)
	require.Equal(t, dbus.RequestNameReplyPrimaryOwner, reply)
	assert.True(t, trayAvailable("linux", bus), "the tray host is on the bus")
}
