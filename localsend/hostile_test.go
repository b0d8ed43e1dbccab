package localsend

// The hostile-input rules of our own protocol (names, sizes, counts, disk,
// connections) hold for LocalSend peers: each test runs the attack against
// a node whose uploads land through a real transfer.Receiver.

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// raw is an HTTPS client to h that checks nothing (an attacker's).
func raw(h *host) (*http.Client, string) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	return c, fmt.Sprintf("https://127.0.0.1:%d/api/localsend/v2", h.node.Port())
}

func prepareBody(files map[string]FileInfo) []byte {
	b, _ := json.Marshal(PrepareRequest{Info: Info{Alias: "Mallory", Version: "2.1", Fingerprint: "mallory"}, Files: files})
	return b
}

func post(t *testing.T, c *http.Client, url string, body []byte) (int, string) {
	t.Helper()
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// nothingIn checks that dir holds nothing but an empty state folder.
func nothingIn(t *testing.T, dir string) {
	t.Helper()
	require.Eventually(t, func() bool {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.Name() != ".peerdrop" {
				return false
			}
			sub, _ := os.ReadDir(dir + "/" + e.Name())
			if len(sub) > 0 {
				return false
			}
		}
		return true
	}, 5*time.Second, 20*time.Millisecond, "something was left in the download folder")
}

func TestHostileNamesAndCounts(t *testing.T) {
	h := startHost(t, "Bob", nil)
	c, base := raw(h)
	defer c.CloseIdleConnections()
	for _, name := range []string{"../escape.txt", "/etc/passwd", "a/../../b", "CON", "x\x00y", "trailing.", strings.Repeat("n", 300)} {
		status, body := post(t, c, base+"/prepare-upload", prepareBody(map[string]FileInfo{"1": {ID: "1", FileName: name, Size: 1, FileType: "text/plain"}}))
		assert.Equal(t, http.StatusBadRequest, status, "%q: %s", name, body)
	}
	many := map[string]FileInfo{}
	for i := range MaxFiles + 1 {
		id := strconv.Itoa(i)
		many[id] = FileInfo{ID: id, FileName: "f" + id, Size: 1, FileType: "x"}
	}
	status, body := post(t, c, base+"/prepare-upload", prepareBody(many))
	assert.Equal(t, http.StatusBadRequest, status, body)
	status, _ = post(t, c, base+"/prepare-upload", bytes.Repeat([]byte(" "), maxJSONBytes+10))
	assert.Equal(t, http.StatusBadRequest, status, "a body over the limit")
	status, body = post(t, c, base+"/prepare-upload", prepareBody(map[string]FileInfo{"1": {ID: "2", FileName: "a", Size: 1}}))
	assert.Equal(t, http.StatusBadRequest, status, "an id that is not its key: %s", body)
	status, body = post(t, c, base+"/prepare-upload", prepareBody(map[string]FileInfo{"1": {ID: "1", FileName: "a", Size: -1}}))
	assert.Equal(t, http.StatusBadRequest, status, "a negative size: %s", body)
	nothingIn(t, h.dir)
}

// An offer larger than the free space is declined by the receiver's own
// check, before anything is written.
func TestHostileTooBigForTheDisk(t *testing.T) {
	h := startHost(t, "Bob", nil)
	c, base := raw(h)
	defer c.CloseIdleConnections()
	status, body := post(t, c, base+"/prepare-upload", prepareBody(map[string]FileInfo{"1": {ID: "1", FileName: "huge.bin", Size: 1 << 49}}))
	assert.Equal(t, http.StatusForbidden, status, body)
	assert.Contains(t, body, "Declined")
	nothingIn(t, h.dir)
}

// More bytes than the file's size, a wrong token, a second session: each
// refused, and nothing kept.
func TestHostileUploads(t *testing.T) {
	h := startHost(t, "Bob", nil)
	c, base := raw(h)
	defer c.CloseIdleConnections()
	status, body := post(t, c, base+"/prepare-upload", prepareBody(map[string]FileInfo{"f": {ID: "f", FileName: "small.txt", Size: 10}}))
	require.Equal(t, http.StatusOK, status, body)
	var resp PrepareResponse
	require.NoError(t, json.Unmarshal([]byte(body), &resp))

	status, _ = post(t, c, base+"/prepare-upload", prepareBody(map[string]FileInfo{"g": {ID: "g", FileName: "other.txt", Size: 1}}))
	assert.Equal(t, http.StatusConflict, status, "one session at a time")

	status, _ = post(t, c, base+"/upload?sessionId="+resp.SessionID+"&fileId=f&token=wrong", []byte("0123456789"))
	assert.Equal(t, http.StatusForbidden, status, "a wrong token")
	status, _ = post(t, c, base+"/upload?sessionId=nope&fileId=f&token="+resp.Files["f"], []byte("0123456789"))
	assert.Equal(t, http.StatusNotFound, status, "an unknown session")

	status, body = post(t, c, base+"/upload?sessionId="+resp.SessionID+"&fileId=f&token="+resp.Files["f"], bytes.Repeat([]byte("x"), 1000))
	assert.Equal(t, http.StatusBadRequest, status, "more than the size: %s", body)
	nothingIn(t, h.dir)

	// The session is over: the next sender is served.
	status, body = post(t, c, base+"/prepare-upload", prepareBody(map[string]FileInfo{"g": {ID: "g", FileName: "other.txt", Size: 1}}))
	assert.Equal(t, http.StatusOK, status, body)
}

func TestHostilePINGuessing(t *testing.T) {
	h := startHost(t, "Bob", func(c *Config) { c.PIN = "123456" })
	c, base := raw(h)
	defer c.CloseIdleConnections()
	body := prepareBody(map[string]FileInfo{"f": {ID: "f", FileName: "a.txt", Size: 1}})
	for i := range pinAttempts {
		status, _ := post(t, c, base+"/prepare-upload?pin="+strconv.Itoa(i), body)
		require.Equal(t, http.StatusUnauthorized, status)
	}
	status, msg := post(t, c, base+"/prepare-upload?pin=123456", body)
	assert.Equal(t, http.StatusTooManyRequests, status, "after %d wrong PINs even the right one waits: %s", pinAttempts, msg)
	nothingIn(t, h.dir)
}

// Connections: a peer that opens many and says nothing takes at most its
// share, and holds up no one else.
func TestHostileSilentConnections(t *testing.T) {
	h := startHost(t, "Bob", nil)
	addr := fmt.Sprintf("127.0.0.1:%d", h.node.Port())
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for range maxConnsPerIP + 4 {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		conns = append(conns, c)
	}
	// The ones over the share are closed at once.
	closed := 0
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err == io.EOF {
			closed++
		}
	}
	assert.Equal(t, 4, closed, "connections over the per-address share are closed")
	// Another address is still served at once, silent connections or not.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(fmt.Sprintf("https://%s/api/localsend/v2/info", addr))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// readNames lists dir, an empty state folder left out.
func readNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.Name() == ".peerdrop" {
			if sub, _ := os.ReadDir(dir + "/" + e.Name()); len(sub) == 0 {
				continue
			}
		}
		out = append(out, e.Name())
	}
	return out, nil
}
