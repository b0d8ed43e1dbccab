package localsend

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thepeerdrop/peerdrop/internal/datachan"
	"github.com/thepeerdrop/peerdrop/transfer"
)

// Receiving from a LocalSend sender: prepare-upload becomes an offer on an
// in-memory link whose far end our receiver serves, each upload a file on
// it. The receiver decides, checks and stores as for any device.

// Flow control on the link, as the transfer sender does it.
const (
	highWater = 4 << 20
	lowWater  = 1 << 20
	chunkSize = 64 << 10
)

// session is one accepted prepare-upload.
type session struct {
	n       *Node
	id      string
	ip      netip.Addr
	offerID string
	link    *datachan.End // our end: we are the sender
	files   map[string]*sfile
	turn    chan struct{} // one upload on the link at a time
	done    chan struct{} // closed by end
	once    sync.Once

	mu       sync.Mutex
	paused   bool
	wake     chan struct{} // closed when paused turns false
	results  map[int]chan transfer.Message
	left     int    // accepted files not yet finished
	openFile *sfile // the file open on the link (chunked uploads leave it open between requests)
	active   time.Time
	finished chan struct{} // the receiver's "done" arrived
	err      error
}

// sfile is one accepted file of a session.
type sfile struct {
	index    int
	info     FileInfo
	token    string
	got      int64
	hash     hash.Hash
	open     bool
	finished bool
	skipped  bool
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func sendMsg(l transfer.Link, m transfer.Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return l.SendText(b)
}

// next reads the next control message from l (binary ones are dropped).
func next(ctx context.Context, l transfer.Link) (transfer.Message, error) {
	for {
		select {
		case m, ok := <-l.Messages():
			if !ok {
				return transfer.Message{}, transfer.ErrClosed
			}
			if !m.IsString {
				m.Release()
				continue
			}
			msg, err := transfer.DecodeMessage(m.Data)
			m.Release()
			if err != nil {
				return transfer.Message{}, err
			}
			return msg, nil
		case <-l.Done():
			return transfer.Message{}, transfer.ErrClosed
		case <-ctx.Done():
			return transfer.Message{}, ctx.Err()
		}
	}
}

// handlePrepare asks our receiver (and so the user) about a LocalSend
// sender's files, and answers with a token per file taken.
func (n *Node) handlePrepare(w http.ResponseWriter, r *http.Request) {
	if !n.pinOK(w, r) {
		return
	}
	// One session at a time, taken before the body is read: a body may be
	// megabytes, and only one is read at once.
	n.mu.Lock()
	if n.busy {
		n.mu.Unlock()
		fail(w, http.StatusConflict, "Blocked by another session")
		return
	}
	n.busy = true
	n.mu.Unlock()
	kept := false
	defer func() {
		if !kept {
			n.mu.Lock()
			n.busy = false
			n.mu.Unlock()
		}
	}()
	var p PrepareRequest
	err := readBody(w, r, maxJSONBytes, &p)
	if err == nil {
		err = p.check()
	}
	if err != nil {
		fail(w, http.StatusBadRequest, "bad request: "+err.Error())
		return
	}
	if err := n.cfg.Pins.Check(p.Info.Alias, p.Info.Fingerprint, isTLS(r)); err != nil {
		slog.Warn("localsend: refused a sender whose identity changed", slog.String("alias", p.Info.Alias))
		fail(w, http.StatusForbidden, "refused: this device's identity changed")
		return
	}
	from := transfer.Peer{Device: peerOf(p.Info), Ephemeral: true}
	near, far := datachan.Pipe(datachan.Options{})
	n.wg.Go(func() {
		defer far.Close()
		n.cfg.Serve(n.ctx, from, far)
	})
	if text, ok := p.isText(); ok {
		defer near.Close()
		if err := n.deliverText(r.Context(), near, text); err != nil {
			fail(w, http.StatusInternalServerError, "the message was not delivered: "+err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s, status, msg := n.offer(r.Context(), near, p, remoteAddr(r))
	if s == nil {
		near.Close()
		fail(w, status, msg)
		return
	}
	resp := PrepareResponse{SessionID: s.id, Files: map[string]string{}}
	for id, f := range s.files {
		resp.Files[id] = f.token
	}
	kept = true
	n.wg.Go(s.pump)
	writeJSON(w, http.StatusOK, resp)
}

// deliverText hands a text message to our receiver.
func (n *Node) deliverText(ctx context.Context, l transfer.Link, text string) error {
	id := transfer.NewID()
	if err := sendMsg(l, transfer.Message{Type: transfer.TypeText, ID: id, Text: text}); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		m, err := next(ctx, l)
		if err != nil {
			return err
		}
		switch m.Type {
		case transfer.TypeTextAck:
			return nil
		case transfer.TypeError:
			return errors.New(m.Message)
		}
	}
}

// offer sends p as an offer and waits for the answer. It returns the
// session of the files taken, or nil with the HTTP status and message.
func (n *Node) offer(ctx context.Context, l *datachan.End, p PrepareRequest, ip netip.Addr) (*session, int, string) {
	ids := make([]string, 0, len(p.Files))
	for id := range p.Files {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int { return strings.Compare(p.Files[a].FileName, p.Files[b].FileName) })
	entries := make([]transfer.Entry, len(ids))
	var total int64
	for i, id := range ids {
		f := p.Files[id]
		entries[i] = transfer.Entry{Path: f.FileName, Size: f.Size, MTime: f.modTime()}
		total += f.Size
	}
	offerID := transfer.NewID()
	if err := sendMsg(l, transfer.Message{Type: transfer.TypeOffer, ID: offerID, Count: len(entries), Size: total}); err != nil {
		return nil, http.StatusInternalServerError, "could not offer the files"
	}
	for len(entries) > 0 {
		k, bytes := 0, 0
		for k < len(entries) && k < transfer.MaxEntriesPerMessage && bytes+6*len(entries[k].Path)+96 < 60_000 {
			bytes += 6*len(entries[k].Path) + 96
			k++
		}
		if err := sendMsg(l, transfer.Message{Type: transfer.TypeEntries, ID: offerID, Entries: entries[:k]}); err != nil {
			return nil, http.StatusInternalServerError, "could not offer the files"
		}
		entries = entries[k:]
	}
	ctx, cancel := context.WithTimeout(ctx, decideTimeout)
	defer cancel()
	var m transfer.Message
	for {
		var err error
		m, err = next(ctx, l)
		if err != nil {
			// The sender gave up waiting (or we stop): withdraw the offer.
			_ = sendMsg(l, transfer.Message{Type: transfer.TypeCancel, Index: -1})
			return nil, http.StatusRequestTimeout, "not answered"
		}
		if m.Type == transfer.TypeAccept || m.Type == transfer.TypeDecline || m.Type == transfer.TypeError {
			break
		}
	}
	switch m.Type {
	case transfer.TypeDecline:
		msg := "Declined"
		if m.Message != "" && m.Message != "declined by the receiver" {
			msg = "Declined: " + m.Message
		}
		return nil, http.StatusForbidden, msg
	case transfer.TypeError:
		return nil, http.StatusBadRequest, "refused: " + m.Message
	}
	taken := takenFiles(p, ids, m.Take)
	s := &session{
		n: n, id: newToken(), ip: ip, offerID: offerID, link: l, files: map[string]*sfile{},
		turn: make(chan struct{}, 1), done: make(chan struct{}), finished: make(chan struct{}),
		results: map[int]chan transfer.Message{}, active: time.Now(),
	}
	for i, id := range ids {
		if !taken[i] {
			continue
		}
		s.files[id] = &sfile{index: i, info: p.Files[id], token: newToken()}
		s.results[i] = make(chan transfer.Message, 1)
		s.left++
	}
	n.mu.Lock()
	n.sessions[s.id] = s
	n.mu.Unlock()
	if s.left == 0 {
		// Nothing but empty folders: the transfer ends at once.
		n.wg.Go(func() { s.finish() })
	}
	return s, 0, ""
}

// takenFiles says which files (by sorted index) the receiver's take keeps:
// those below the top-level entries it lists (all, when take is empty).
func takenFiles(p PrepareRequest, ids []string, take []int) []bool {
	out := make([]bool, len(ids))
	tops := map[string]int{}
	for i, id := range ids {
		top, _, _ := strings.Cut(p.Files[id].FileName, "/")
		t, ok := tops[top]
		if !ok {
			t = len(tops)
			tops[top] = t
		}
		out[i] = len(take) == 0 || slices.Contains(take, t)
	}
	return out
}

// pump reads the receiver's messages for a running session until it ends.
func (s *session) pump() {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		var m transfer.Message
		select {
		case raw, ok := <-s.link.Messages():
			if !ok {
				s.end(transfer.ErrClosed)
				return
			}
			if !raw.IsString {
				raw.Release()
				s.end(errors.New("the receiver sent data"))
				return
			}
			var err error
			m, err = transfer.DecodeMessage(raw.Data)
			raw.Release()
			if err != nil {
				s.end(err)
				return
			}
		case <-s.link.Done():
			s.end(transfer.ErrClosed)
			return
		case <-s.done:
			return
		case now := <-tick.C:
			s.mu.Lock()
			idle := now.Sub(s.active) > sessionIdle && len(s.turn) == 0 && !s.paused
			s.mu.Unlock()
			if idle {
				slog.Info("localsend: the sender went quiet; ending its session", slog.String("from", s.ip.String()))
				s.end(errors.New("the sender went quiet"))
				return
			}
			continue
		}
		switch m.Type {
		case transfer.TypeFileOK, transfer.TypeFileError:
			s.mu.Lock()
			ch := s.results[m.Index]
			s.mu.Unlock()
			if ch != nil {
				select {
				case ch <- m:
				default:
				}
			}
		case transfer.TypePause, transfer.TypeResume:
			s.setPaused(m.Type == transfer.TypePause)
		case transfer.TypeCancel:
			if m.Index < 0 {
				s.end(errors.New("cancelled by the receiver"))
				return
			}
			s.skip(m.Index)
		case transfer.TypeDone:
			close(s.finished)
			s.end(nil)
			return
		case transfer.TypeError:
			s.end(fmt.Errorf("the receiver refused: %s", m.Message))
			return
		}
	}
}

func (s *session) setPaused(p bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p == s.paused {
		return
	}
	s.paused = p
	if p {
		s.wake = make(chan struct{})
	} else {
		close(s.wake)
	}
}

// skip marks file i left out by the receiver (CancelItem).
func (s *session) skip(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.files {
		if f.index != i || f.finished || f.skipped {
			continue
		}
		f.skipped = true
		if f.open {
			// An upload of it may be running: it ends on this answer.
			if ch := s.results[i]; ch != nil {
				select {
				case ch <- transfer.Message{Type: transfer.TypeCancel, Index: i}:
				default:
				}
			}
			return
		}
		f.finished = true
		s.left--
		if s.left == 0 {
			s.n.wg.Go(s.finish)
		}
	}
}

// running waits while the receiver has paused the session.
func (s *session) running(ctx context.Context) error {
	for {
		s.mu.Lock()
		paused, wake := s.paused, s.wake
		s.active = time.Now()
		s.mu.Unlock()
		if !paused {
			return nil
		}
		select {
		case <-wake:
		case <-s.done:
			return s.why()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *session) why() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	return errors.New("the session ended")
}

// end closes the session: the link closes (a receiver that did not get
// "done" reports the transfer as interrupted and, the sender being
// ephemeral, removes what it had of it).
func (s *session) end(err error) {
	s.once.Do(func() {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.done)
		_ = s.link.Close()
		s.n.mu.Lock()
		delete(s.n.sessions, s.id)
		s.n.busy = false
		s.n.mu.Unlock()
	})
}

// cancel ends the session as the sender's cancel: the receiver is told
// first, so that it reports a cancel rather than a lost connection.
func (s *session) cancel(why string) {
	if err := sendMsg(s.link, transfer.Message{Type: transfer.TypeCancel, Index: -1}); err == nil {
		select {
		case <-s.link.Done():
		case <-s.done:
		case <-time.After(time.Second):
		}
	}
	s.end(errors.New(why))
}

// finish tells the receiver that every file was sent and waits for its
// "done".
func (s *session) finish() {
	if err := sendMsg(s.link, transfer.Message{Type: transfer.TypeEnd}); err != nil {
		s.end(err)
		return
	}
	select {
	case <-s.finished:
	case <-s.done:
	case <-time.After(resultTimeout):
		s.end(errors.New("the receiver did not confirm the end"))
	}
}

// handleCancel is the sender's cancel of its session.
func (n *Node) handleCancel(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	s := n.sessions[r.URL.Query().Get("sessionId")]
	n.mu.Unlock()
	if s != nil && s.ip == remoteAddr(r) {
		s.cancel("cancelled by the sender")
	}
	writeJSON(w, http.StatusOK, errorBody{Message: "Session cancelled"})
}

// stallReader reads an upload's body with a deadline renewed on every
// read: a sender that stops sending mid-body breaks its upload rather
// than holding the session (and every other sender) forever.
type stallReader struct {
	r  io.Reader
	rc *http.ResponseController
}

func (s *stallReader) Read(p []byte) (int, error) {
	_ = s.rc.SetReadDeadline(time.Now().Add(stallTimeout))
	n, err := s.r.Read(p)
	if err == io.EOF {
		_ = s.rc.SetReadDeadline(time.Time{}) // the body is over: the wait for the file's check may be long
	}
	return n, err
}

var rangeRe = regexp.MustCompile(`^bytes (\d{1,16})-(\d{1,16})/(\d{1,16})$`)

// handleUpload streams one file (or, with X-Content-Range, one piece of
// it) of a session onto the link.
func (n *Node) handleUpload(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n.mu.Lock()
	s := n.sessions[q.Get("sessionId")]
	n.mu.Unlock()
	if s == nil {
		fail(w, http.StatusNotFound, "session not found")
		return
	}
	f := s.files[q.Get("fileId")]
	if s.ip != remoteAddr(r) || f == nil || subtle.ConstantTimeCompare([]byte(f.token), []byte(q.Get("token"))) != 1 {
		fail(w, http.StatusForbidden, "invalid token")
		return
	}
	start, last, ranged := int64(0), f.info.Size-1, false
	if h := r.Header.Get("X-Content-Range"); h != "" {
		m := rangeRe.FindStringSubmatch(h)
		if m == nil {
			fail(w, http.StatusBadRequest, "invalid X-Content-Range")
			return
		}
		start, _ = strconv.ParseInt(m[1], 10, 64)
		last, _ = strconv.ParseInt(m[2], 10, 64)
		size, _ := strconv.ParseInt(m[3], 10, 64)
		if size != f.info.Size || last < start || last >= size {
			fail(w, http.StatusBadRequest, "X-Content-Range does not match the file")
			return
		}
		ranged = true
	}
	select {
	case s.turn <- struct{}{}:
	case <-s.done:
		fail(w, http.StatusGone, "the transfer ended: "+s.why().Error())
		return
	case <-r.Context().Done():
		return
	}
	defer func() { <-s.turn }()
	rc := http.NewResponseController(w)
	body := &stallReader{r: r.Body, rc: rc}
	status, msg := s.upload(r.Context(), f, body, start, last, ranged)
	if status != http.StatusOK {
		w.Header().Set("Connection", "close") // what is left of the body is not read
		fail(w, status, msg)
		return
	}
	writeJSON(w, http.StatusOK, errorBody{Message: msg})
}

// upload sends bytes start..last of f from body; the caller has the turn.
func (s *session) upload(ctx context.Context, f *sfile, body io.Reader, start, last int64, ranged bool) (int, string) {
	select {
	case <-s.done:
		return http.StatusGone, "the transfer ended: " + s.why().Error()
	default:
	}
	s.mu.Lock()
	var refuse string
	switch {
	case f.skipped:
		refuse = "the receiver left this file out"
	case f.finished:
		refuse = "this file was already received"
	case !f.open && start != 0, f.open && start != f.got:
		refuse = fmt.Sprintf("upload from byte %d, expected %d", start, f.got)
	case !f.open && s.openFile != nil:
		refuse = "one file at a time: finish " + s.openFile.info.FileName + " first"
	}
	opening := refuse == "" && !f.open
	if opening {
		f.open, f.got, f.hash = true, 0, sha256.New()
		s.openFile = f
	}
	s.mu.Unlock()
	if refuse != "" {
		return http.StatusConflict, refuse
	}
	if opening {
		if err := sendMsg(s.link, transfer.Message{Type: transfer.TypeFile, Index: f.index}); err != nil {
			return http.StatusGone, "the transfer ended"
		}
	}
	want := last + 1 - start
	if !ranged {
		want = f.info.Size
	}
	buf := make([]byte, chunkSize)
	var got int64
	for {
		k, err := body.Read(buf)
		if k > 0 {
			if got+int64(k) > want {
				s.cancel("the sender sent more than the file's size")
				return http.StatusBadRequest, "more bytes than the file's size"
			}
			if err := s.running(ctx); err != nil {
				return http.StatusGone, "the transfer ended: " + err.Error()
			}
			f.hash.Write(buf[:k])
			if err := s.link.Send(buf[:k]); err != nil {
				return http.StatusGone, "the transfer ended: " + s.why().Error()
			}
			got += int64(k)
			f.got += int64(k)
			for s.link.BufferedAmount() > highWater {
				low := s.link.LowWater(lowWater)
				if s.link.BufferedAmount() <= lowWater {
					break // drained before the channel was set: no wake-up comes
				}
				select {
				case <-low:
				case <-s.done:
					return http.StatusGone, "the transfer ended: " + s.why().Error()
				case <-ctx.Done():
					s.cancel("the sender went away mid-file")
					return http.StatusBadRequest, "upload broken"
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			// The sender went away mid-file: as its cancel.
			s.cancel("the sender stopped mid-file")
			return http.StatusBadRequest, "upload broken: " + err.Error()
		}
	}
	if got != want {
		s.cancel("an upload ended early")
		return http.StatusBadRequest, fmt.Sprintf("%d bytes, expected %d", got, want)
	}
	if ranged && f.got < f.info.Size {
		return http.StatusOK, "Chunk received"
	}
	sum := hex.EncodeToString(f.hash.Sum(nil))
	if f.info.SHA256 != nil && *f.info.SHA256 != "" {
		sum = strings.ToLower(*f.info.SHA256) // our receiver checks what arrived against the sender's claim
	}
	s.mu.Lock()
	f.open = false
	s.openFile = nil
	s.mu.Unlock()
	if err := sendMsg(s.link, transfer.Message{Type: transfer.TypeFileEnd, Index: f.index, SHA256: sum}); err != nil {
		return http.StatusGone, "the transfer ended"
	}
	s.mu.Lock()
	ch := s.results[f.index]
	s.mu.Unlock()
	var res transfer.Message
	select {
	case res = <-ch:
	case <-s.done:
		return http.StatusGone, "the transfer ended: " + s.why().Error()
	case <-time.After(resultTimeout):
		s.end(errors.New("the receiver did not confirm a file"))
		return http.StatusInternalServerError, "the receiver did not confirm the file"
	}
	s.mu.Lock()
	wasDone := f.finished
	f.finished = true
	if !wasDone {
		s.left--
	}
	left := s.left
	s.active = time.Now()
	s.mu.Unlock()
	if left == 0 && !wasDone {
		s.n.wg.Go(s.finish)
	}
	switch res.Type {
	case transfer.TypeFileOK:
		return http.StatusOK, "File received successfully"
	case transfer.TypeCancel:
		return http.StatusConflict, "the receiver left this file out"
	}
	return http.StatusInternalServerError, "not saved: " + res.Message
}
