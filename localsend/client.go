package localsend

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thepeerdrop/peerdrop/internal/datachan"
	"github.com/thepeerdrop/peerdrop/transfer"
)

// Sending to a LocalSend receiver: Dial returns a link on which our
// transfer.Sender offers files as to any device; at its far end an
// uploader turns the offer into prepare-upload and each file into an
// upload.

// mismatchError: the certificate presented is not the one announced.
type mismatchError struct{ got, want string }

func (e *mismatchError) Error() string {
	return "its certificate does not match the fingerprint it announced"
}

// Permanent: trying again will not help.
func (e *mismatchError) Permanent() bool { return true }

// client returns an HTTP client for d: HTTPS only to the certificate whose
// SHA-256 d announced (LocalSend certificates are self-signed), plain HTTP
// only when d speaks it and it is allowed.
func (n *Node) client(d Device) (*http.Client, string, error) {
	base, err := n.baseURL(d)
	if err != nil {
		return nil, "", err
	}
	want := strings.ToLower(d.Fingerprint)
	tr := newTransport(func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("no certificate")
		}
		if got := Fingerprint(cs.PeerCertificates[0].Raw); got != want {
			return &mismatchError{got: got, want: want}
		}
		return nil
	})
	tr.MaxIdleConnsPerHost = 2
	return &http.Client{Transport: tr}, base, nil
}

// baseURL is where d's API is, over the protocol it speaks; HTTP only when
// allowed.
func (n *Node) baseURL(d Device) (string, error) {
	scheme := ProtocolHTTPS
	if !d.Encrypted() {
		if !n.cfg.AllowHTTP {
			return "", ErrNotEncrypted
		}
		scheme = ProtocolHTTP
	}
	return scheme + "://" + d.Addr.String() + strings.TrimSuffix(apiPrefix, "/"), nil
}

// newTransport is the HTTP transport of our requests to LocalSend devices;
// verify checks the certificate (self-signed: nothing else is checked),
// nil takes any (register, before a device's certificate is known).
func newTransport(verify func(tls.ConnectionState) error) *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: decideTimeout + 30*time.Second, // prepare-upload waits for a person
		TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, // self-signed: verify is the verification
			MinVersion:         tls.VersionTLS12,
			VerifyConnection:   verify,
		},
	}
}

// Dial checks d (its certificate against its announcement and its pin)
// and returns a link to it for a transfer.Sender; pin is the PIN it may
// ask for. The uploader behind the link ends when the link closes.
func (n *Node) Dial(ctx context.Context, d Device, pin string) (transfer.Link, error) {
	c, base, err := n.client(d)
	if err != nil {
		return nil, err
	}
	if err := n.cfg.Pins.Check(d.Alias, d.Fingerprint, d.Encrypted()); err != nil {
		return nil, err
	}
	// Prove the certificate (the TLS handshake) and that it still is who
	// it was, before anything is stored about it.
	in, err := n.info(ctx, c, base)
	if err != nil {
		c.CloseIdleConnections()
		var me *mismatchError
		if errors.As(err, &me) {
			return nil, fmt.Errorf("%s: %w", d.Alias, err)
		}
		return nil, fmt.Errorf("reach %s at %s: %w", d.Alias, d.Addr, err)
	}
	if in.Fingerprint != d.Fingerprint && d.Encrypted() {
		c.CloseIdleConnections()
		return nil, &mismatchError{got: in.Fingerprint, want: d.Fingerprint}
	}
	if err := n.cfg.Pins.Pin(d.Alias, d.Fingerprint, d.Encrypted()); err != nil {
		c.CloseIdleConnections()
		return nil, err
	}
	near, far := datachan.Pipe(datachan.Options{})
	u := &uploader{n: n, d: d, c: c, base: base, pin: pin, link: far, uploaded: map[int]bool{}, reported: map[int]bool{}}
	n.wg.Go(u.run)
	return near, nil
}

func (n *Node) info(ctx context.Context, c *http.Client, base string) (Info, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/info", nil)
	if err != nil {
		return Info{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return Info{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Info{}, fmt.Errorf("info: %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxSmallJSON+1))
	if err != nil {
		return Info{}, err
	}
	return DecodeInfo(b)
}

// uploader serves the far end of a Dial's link as a receiver would, and
// talks HTTP to the LocalSend device.
type uploader struct {
	n    *Node
	d    Device
	c    *http.Client
	base string
	pin  string
	link *datachan.End

	offer   transfer.Message
	entries []transfer.Entry
	session string
	tokens  map[int]string // by entry index, the files it took

	cur      int        // index of the file being uploaded, -1 none
	pwMu     sync.Mutex // guards pw's changes, for the watcher in run
	pw       *io.PipeWriter
	resp     chan error // the current upload's outcome
	failed   []int
	uploaded map[int]bool // files the device confirmed
	reported map[int]bool // files whose failure the sender was told of
	ctx      context.Context
}

func (u *uploader) run() {
	defer u.c.CloseIdleConnections()
	defer u.link.Close()
	u.cur = -1
	// The uploader's requests end with the link (the sender cancelled or
	// gave up) or the node; so does a write of a body that the device
	// stopped reading.
	ctx, cancel := context.WithCancel(u.n.ctx)
	defer cancel()
	u.ctx = ctx
	stop := context.AfterFunc(ctx, func() {
		u.pwMu.Lock()
		if u.pw != nil {
			u.pw.CloseWithError(errors.New("the transfer ended"))
		}
		u.pwMu.Unlock()
	})
	defer stop()
	go func() {
		select {
		case <-u.link.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	defer u.finishSession()
	for {
		var m datachan.Message
		var ok bool
		select {
		case m, ok = <-u.link.Messages():
		case <-u.link.Done():
		case <-u.n.ctx.Done():
			// Said to the sender, which would take a silent close for a
			// lost connection and dial again.
			u.send(transfer.Message{Type: transfer.TypeError, Code: transfer.CodeCancelled, Message: "LocalSend was switched off on this device"})
		}
		if !ok {
			return
		}
		if !m.IsString {
			if u.pw != nil {
				if _, err := u.pw.Write(m.Data); err != nil {
					u.uploadFailed(err)
				}
			}
			m.Release()
			continue
		}
		msg, err := transfer.DecodeMessage(m.Data)
		m.Release()
		if err != nil {
			u.send(transfer.Message{Type: transfer.TypeError, Code: transfer.CodeProtocol, Message: err.Error()})
			return
		}
		if !u.handle(msg) {
			return
		}
	}
}

// finishSession ends what run leaves: the running upload, and the device's
// session unless every file it took was uploaded (LocalSend receivers
// hold one session at a time: a session left open blocks other senders).
func (u *uploader) finishSession() {
	u.abortCurrent(errors.New("the transfer ended"))
	if u.session == "" {
		return
	}
	for i := range u.tokens {
		if !u.uploaded[i] {
			u.cancelSession()
			return
		}
	}
}

// uploadFailed reports at once that the running upload failed (the device
// refused it, or went away): the sender stops streaming the file.
func (u *uploader) uploadFailed(err error) {
	if u.cur < 0 || u.reported[u.cur] {
		return
	}
	u.setPipe(nil)
	u.reported[u.cur] = true
	u.failed = append(u.failed, u.cur)
	u.send(transfer.Message{Type: transfer.TypeFileError, Index: u.cur, Code: transfer.CodeIO, Message: plain(err)})
}

func (u *uploader) send(m transfer.Message) { _ = sendMsg(u.link, m) }

// handle acts on one message from the sender; false ends the link.
func (u *uploader) handle(m transfer.Message) bool {
	switch m.Type {
	case transfer.TypeOffer:
		u.offer, u.entries = m, nil
		if m.Count == 0 {
			u.send(transfer.Message{Type: transfer.TypeDecline, ID: m.ID, Message: "LocalSend takes files, not an empty offer"})
		}
	case transfer.TypeEntries:
		u.entries = append(u.entries, m.Entries...)
		if len(u.entries) >= u.offer.Count {
			return u.prepare()
		}
	case transfer.TypeText:
		if err := u.sendText(m.Text); err != nil {
			u.send(transfer.Message{Type: transfer.TypeError, Code: transfer.CodeIO, Message: err.Error()})
			return false
		}
		u.send(transfer.Message{Type: transfer.TypeTextAck, ID: m.ID})
	case transfer.TypeFile:
		tok, ok := u.tokens[m.Index]
		if !ok || m.Offset != 0 || m.Index >= len(u.entries) {
			u.send(transfer.Message{Type: transfer.TypeCancel, Index: m.Index})
			return true
		}
		u.startUpload(m.Index, tok)
	case transfer.TypeFileEnd:
		if u.cur != m.Index {
			return true
		}
		if u.pw != nil {
			u.pw.Close()
		}
		err := <-u.resp
		i := u.cur
		u.cur = -1
		u.setPipe(nil)
		switch {
		case u.reported[i]:
		case err != nil:
			u.failed = append(u.failed, i)
			u.send(transfer.Message{Type: transfer.TypeFileError, Index: i, Code: transfer.CodeIO, Message: plain(err)})
		default:
			u.uploaded[i] = true
			u.send(transfer.Message{Type: transfer.TypeFileOK, Index: i})
		}
	case transfer.TypeAbort:
		if u.cur == m.Index {
			u.abortCurrent(errors.New("the sender could not read the file"))
		}
	case transfer.TypeCancel:
		if m.Index < 0 {
			u.abortCurrent(errors.New("cancelled"))
			u.cancelSession()
			return false
		}
		if u.cur == m.Index {
			u.abortCurrent(errors.New("cancelled"))
		}
	case transfer.TypeEnd:
		u.send(transfer.Message{Type: transfer.TypeDone, Failed: u.failed})
	case transfer.TypeError:
		u.abortCurrent(errors.New(m.Message))
		u.cancelSession()
		return false
	}
	return true
}

// abortCurrent stops the upload running, if any.
func (u *uploader) abortCurrent(err error) {
	if u.cur < 0 {
		return
	}
	if u.pw != nil {
		u.pw.CloseWithError(err)
	}
	<-u.resp
	u.cur = -1
	u.setPipe(nil)
}

func (u *uploader) setPipe(pw *io.PipeWriter) {
	u.pwMu.Lock()
	u.pw = pw
	u.pwMu.Unlock()
}

// do sends a request to the device and returns its answer's status and
// (bounded) body.
func (u *uploader) do(ctx context.Context, method, p string, q url.Values, body io.Reader, size int64) (int, []byte, error) {
	full := u.base + p
	if len(q) > 0 {
		full += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, full, body)
	if err != nil {
		return 0, nil, err
	}
	if size >= 0 {
		req.ContentLength = size
	}
	if p == "/upload" {
		req.Header.Set("Content-Type", "application/octet-stream")
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := u.c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONBytes+1))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, b, nil
}

// reason is the message of a LocalSend error answer, if any.
func reason(b []byte) string {
	var e errorBody
	if json.Unmarshal(b, &e) == nil && len(e.Message) <= 200 && printable(e.Message) {
		return e.Message
	}
	return ""
}

// prepare asks the device to take the offer and answers the sender.
func (u *uploader) prepare() bool {
	files := map[string]FileInfo{}
	offered := map[string]bool{}
	for i, e := range u.entries {
		if e.Dir {
			continue // LocalSend knows files; folders come as paths
		}
		id := strconv.Itoa(i)
		f := FileInfo{ID: id, FileName: e.Path, Size: e.Size, FileType: fileType(e.Path)}
		if e.MTime > 0 {
			t := time.Unix(e.MTime, 0).UTC().Format(time.RFC3339)
			f.Metadata = &Metadata{Modified: &t}
		}
		files[id] = f
		offered[id] = true
	}
	if len(files) == 0 {
		u.send(transfer.Message{Type: transfer.TypeDecline, ID: u.offer.ID, Message: "LocalSend takes files, not empty folders"})
		return true
	}
	status, b, err := u.prepareUpload(files)
	if err != nil {
		u.send(transfer.Message{Type: transfer.TypeError, Code: transfer.CodeIO, Message: "could not reach " + u.d.Alias + ": " + plain(err)})
		return false
	}
	switch status {
	case http.StatusOK:
	case http.StatusNoContent:
		u.send(transfer.Message{Type: transfer.TypeDecline, ID: u.offer.ID, Message: "it took none of the files"})
		return true
	default:
		u.send(transfer.Message{Type: transfer.TypeDecline, ID: u.offer.ID, Message: u.refusal(status, reason(b))})
		return true
	}
	resp, err := DecodePrepareResponse(bytes.NewReader(b), offered)
	if err != nil {
		u.send(transfer.Message{Type: transfer.TypeError, Code: transfer.CodeProtocol, Message: "bad answer from " + u.d.Alias + ": " + err.Error()})
		return false
	}
	u.session = resp.SessionID
	u.tokens = map[int]string{}
	for id, tok := range resp.Files {
		i, _ := strconv.Atoi(id)
		u.tokens[i] = tok
	}
	take := u.take()
	if take == nil {
		u.send(transfer.Message{Type: transfer.TypeDecline, ID: u.offer.ID, Message: "it took none of the files"})
		return true
	}
	u.send(transfer.Message{Type: transfer.TypeAccept, ID: u.offer.ID, Take: take})
	return true
}

// refusal says in plain words why prepare-upload was refused.
func (u *uploader) refusal(status int, msg string) string {
	switch status {
	case http.StatusUnauthorized:
		if u.pin == "" {
			return "it asks for a PIN: send again with its PIN"
		}
		return "wrong PIN"
	case http.StatusForbidden:
		return "declined by the receiver"
	case http.StatusConflict:
		return "it is busy with another transfer"
	case http.StatusTooManyRequests:
		return "too many attempts: wait a minute"
	}
	if msg != "" {
		return fmt.Sprintf("refused (%d: %s)", status, msg)
	}
	return fmt.Sprintf("refused (%d)", status)
}

// take lists the top-level entries holding a file the device took; nil
// when it took none. Empty when it took all.
func (u *uploader) take() []int {
	tops := map[string]int{}
	var take []int
	all := true
	for i, e := range u.entries {
		top, _, _ := strings.Cut(e.Path, "/")
		t, ok := tops[top]
		if !ok {
			t = len(tops)
			tops[top] = t
		}
		if e.Dir {
			continue
		}
		if _, ok := u.tokens[i]; !ok {
			all = false
			continue
		}
		if !slices.Contains(take, t) {
			take = append(take, t)
		}
	}
	if len(take) == 0 {
		return nil
	}
	if all {
		return []int{}
	}
	return take
}

func (u *uploader) prepareUpload(files map[string]FileInfo) (int, []byte, error) {
	self := u.n.self
	self.Announce = nil
	body, err := json.Marshal(PrepareRequest{Info: self, Files: files})
	if err != nil {
		return 0, nil, err
	}
	q := url.Values{}
	if u.pin != "" {
		q.Set("pin", u.pin)
	}
	// The sender cancelling while the person decides ends the wait (u.ctx).
	ctx, cancel := context.WithTimeout(u.ctx, decideTimeout+30*time.Second)
	defer cancel()
	return u.do(ctx, http.MethodPost, "/prepare-upload", q, bytes.NewReader(body), int64(len(body)))
}

// startUpload begins the upload of entry i; the sender's data follows.
func (u *uploader) startUpload(i int, token string) {
	pr, pw := io.Pipe()
	u.cur, u.resp = i, make(chan error, 1)
	u.setPipe(pw)
	q := url.Values{"sessionId": {u.session}, "fileId": {strconv.Itoa(i)}, "token": {token}}
	size := u.entries[i].Size
	go func() {
		status, b, err := u.do(u.ctx, http.MethodPost, "/upload", q, pr, size)
		switch {
		case err != nil:
		case status != http.StatusOK:
			err = fmt.Errorf("%s refused the file (%d %s)", u.d.Alias, status, reason(b))
		}
		pr.CloseWithError(cmpErr(err, io.ErrClosedPipe))
		u.resp <- err
	}()
}

func cmpErr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// cancelSession tells the device the session is over.
func (u *uploader) cancelSession() {
	if u.session == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, _, err := u.do(ctx, http.MethodPost, "/cancel", url.Values{"sessionId": {u.session}}, nil, 0); err != nil {
		slog.Debug("localsend: cancel", slog.Any("err", err))
	}
	u.session = ""
}

// sendText sends a text message the way LocalSend's apps do: one
// text/plain file whose preview is the text; a receiver that shows it
// answers 204, one that wants the file gets it uploaded.
func (u *uploader) sendText(text string) error {
	f := FileInfo{ID: "text", FileName: "message.txt", Size: int64(len(text)), FileType: "text/plain", Preview: &text}
	status, b, err := u.prepareUpload(map[string]FileInfo{"text": f})
	if err != nil {
		return err
	}
	switch status {
	case http.StatusNoContent:
		return nil
	case http.StatusOK:
	default:
		return errors.New(u.d.Alias + " " + u.refusal(status, reason(b)))
	}
	resp, err := DecodePrepareResponse(bytes.NewReader(b), map[string]bool{"text": true})
	if err != nil {
		return err
	}
	tok, ok := resp.Files["text"]
	if !ok {
		return errors.New(u.d.Alias + " did not take the message")
	}
	q := url.Values{"sessionId": {resp.SessionID}, "fileId": {"text"}, "token": {tok}}
	ctx, cancel := context.WithTimeout(u.ctx, 30*time.Second)
	defer cancel()
	status, b, err = u.do(ctx, http.MethodPost, "/upload", q, strings.NewReader(text), int64(len(text)))
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("%s refused the message (%d %s)", u.d.Alias, status, reason(b))
	}
	return nil
}

// plain is err in words, without the request's URL (which would carry the
// PIN into messages and history).
func plain(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection was closed"
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	return err.Error()
}

// fileType is the MIME type LocalSend expects, from the name.
func fileType(name string) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}
