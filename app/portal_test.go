package app

import (
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/thepeerdrop/peerdrop/engine"
	"github.com/thepeerdrop/peerdrop/internal/dbustest"
)

// fakePortal is org.freedesktop.portal.Desktop with a FileChooser only: it
// records each OpenFile and answers it with the next URIs queued, as a
// portal does (a Response signal on the request's path).
type fakePortal struct {
	conn    *dbus.Conn
	mu      sync.Mutex
	answers [][]string
	asked   []fakeOpenFile
	// forger, when set, is another program on the bus that answers each
	// request first, with a file of its choosing.
	forger *dbus.Conn
}

type fakeOpenFile struct {
	parent, title, folder string
	multiple, directory   bool
}

func startFakePortal(t *testing.T, addr string) *fakePortal {
	t.Helper()
	conn, err := dbus.Connect(addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	f := &fakePortal{conn: conn}
	require.NoError(t, conn.Export(f, portalPath, portalInterface))
	_, err = prop.Export(conn, portalPath, prop.Map{portalInterface: {"version": {Value: uint32(4)}}})
	require.NoError(t, err)
	reply, err := conn.RequestName(portalName, dbus.NameFlagDoNotQueue)
	require.NoError(t, err)
	require.Equal(t, dbus.RequestNameReplyPrimaryOwner, reply)
	return f
}

func (f *fakePortal) OpenFile(sender dbus.Sender, parent, title string, opts map[string]dbus.Variant) (dbus.ObjectPath, *dbus.Error) {
	var req fakeOpenFile
	req.parent, req.title = parent, title
	get := func(key string, to any) {
		if v, ok := opts[key]; ok {
			_ = v.Store(to)
		}
	}
	get("multiple", &req.multiple)
	get("directory", &req.directory)
	var folder []byte
	get("current_folder", &folder)
	req.folder = strings.TrimSuffix(string(folder), "\x00")
	var token string
	get("handle_token", &token)
	if token == "" { // the portal chooses one
		token = "t" + strconv.Itoa(len(f.requests()))
	}
	handle := dbus.ObjectPath(portalPath + "/request/" + strings.ReplaceAll(strings.TrimPrefix(string(sender), ":"), ".", "_") + "/" + token)
	f.mu.Lock()
	f.asked = append(f.asked, req)
	var uris []string
	if len(f.answers) > 0 {
		uris, f.answers = f.answers[0], f.answers[1:]
	}
	f.mu.Unlock()
	response := func(uris []string) *dbus.Message {
		// To the caller only, as xdg-desktop-portal sends it.
		body := []any{uint32(0), map[string]dbus.Variant{"uris": dbus.MakeVariant(uris)}}
		return &dbus.Message{Type: dbus.TypeSignal, Headers: map[dbus.HeaderField]dbus.Variant{
			dbus.FieldPath:        dbus.MakeVariant(handle),
			dbus.FieldInterface:   dbus.MakeVariant("org.freedesktop.portal.Request"),
			dbus.FieldMember:      dbus.MakeVariant("Response"),
			dbus.FieldDestination: dbus.MakeVariant(string(sender)),
			dbus.FieldSignature:   dbus.MakeVariant(dbus.SignatureOf(body...)),
		}, Body: body}
	}
	go func() { // the user picks, after the call returned the handle
		if f.forger != nil {
			f.forger.Send(response([]string{"file:///home/alice/.ssh/id_ed25519"}), nil)
			time.Sleep(200 * time.Millisecond) // the forgery is there first
		}
		f.conn.Send(response(uris), nil)
	}()
	return handle, nil
}

func (f *fakePortal) requests() []fakeOpenFile {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeOpenFile(nil), f.asked...)
}

// The friction "the file picker": the desktop's own chooser, over a real
// D-Bus session, with several files at once and folders; the answer is
// applied on the Fyne thread, the wait is not.
func TestPortalPickerSendsEveryURI(t *testing.T) {
	addr := dbustest.Start(t)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
	portal := startFakePortal(t, addr)
	portal.answers = [][]string{
		{"file:///home/alice/a%20b.txt", "file:///home/alice/C++/notes.md", "file:///home/alice/%C3%A9t%C3%A9.jpg"},
		{"file:///home/alice/Photos", "file:///srv/Music"},
		{"file:///srv/inbox"},
	}

	u, f := newTestUI(t)
	f.dlDir = "/srv/peerdrop"
	u.runNow = false // the portal's wait runs in a goroutine, as in the app
	u.portal = sessionPortal
	picked := make(chan struct{}, 1)
	u.afterPick = func() { picked <- struct{}{} }
	wait := func() {
		t.Helper()
		select {
		case <-picked:
		case <-time.After(30 * time.Second):
			t.Fatal("the desktop's file chooser answered, but the send sheet did not receive it within 30 s")
		}
	}
	sheet := u.openSendSheet([]engine.Device{dev("b", "Bob", "laptop")}, pickFile)
	wait()
	assert.Equal(t, []string{"/home/alice/a b.txt", "/home/alice/C++/notes.md", "/home/alice/été.jpg"}, sheet.paths,
		"every file, in order, unescaped (a + stays a +)")
	sheet.pickFolder()
	wait()
	assert.Equal(t, []string{"/home/alice/a b.txt", "/home/alice/C++/notes.md", "/home/alice/été.jpg", "/home/alice/Photos", "/srv/Music"}, sheet.paths)
	u.settings.chooseDir()
	wait()
	assert.Equal(t, []string{"SetDownloadDir /srv/inbox"}, f.Calls())
	assert.Nil(t, u.lastPicker, "our own picker did not open")

	asked := portal.requests()
	require.GreaterOrEqual(t, len(asked), 2)
	assert.True(t, asked[0].multiple, "several files at once")
	assert.False(t, asked[0].directory)
	assert.True(t, asked[1].multiple, "several folders at once")
	assert.True(t, asked[1].directory, "folders")
	assert.Equal(t, "Add files", asked[0].title)
	require.Len(t, asked, 3)
	assert.Equal(t, fakeOpenFile{title: "Download folder", folder: "/srv/peerdrop", directory: true}, asked[2],
		"one folder, opening at the download folder")
}

// Another program on the session bus that answers the request first (the
// request's path is guessable) is not believed: only the portal's answer
// reaches the sheet.
func TestPortalAnswerOnlyFromThePortal(t *testing.T) {
	addr := dbustest.Start(t)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
	portal := startFakePortal(t, addr)
	forger, err := dbus.Connect(addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = forger.Close() })
	portal.forger = forger
	portal.answers = [][]string{{"file:///home/alice/holiday.jpg"}}

	u, _ := newTestUI(t)
	u.runNow = false
	u.portal = sessionPortal
	picked := make(chan struct{}, 1)
	u.afterPick = func() { picked <- struct{}{} }
	sheet := u.openSendSheet([]engine.Device{dev("b", "Bob", "laptop")}, pickFile)
	select {
	case <-picked:
	case <-time.After(30 * time.Second):
		t.Fatal("no answer from the file chooser")
	}
	assert.Equal(t, []string{"/home/alice/holiday.jpg"}, sheet.paths)
}

// Where no portal answers (no session bus, or none on it), our own picker
// opens instead.
func TestPortalMissingFallsBackToOurPicker(t *testing.T) {
	for name, addr := range map[string]string{
		"no bus":    "unix:path=" + filepath.Join(t.TempDir(), "none"),
		"no portal": dbustest.Start(t),
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
			home := t.TempDir()
			t.Setenv("HOME", home)
			u, _ := newTestUI(t)
			u.portal = sessionPortal
			u.openSendSheet([]engine.Device{dev("b", "Bob", "laptop")}, pickFile)
			require.NotNil(t, u.lastPicker, "our own picker")
			assert.Equal(t, home, u.lastPicker.dir)
		})
	}
}
