// Package localsend speaks LocalSend protocol v2 (the localsend/protocol
// repository's README, docs/PROTOCOL-localsend.md) so that LocalSend's apps
// appear among the nearby devices and exchange files with ours. It finds
// them (multicast announcements, the HTTP legacy scan), serves their
// uploads and uploads to them, and bridges both onto our own transfer
// protocol over in-memory links: the engine serves a LocalSend sender with
// the same transfer.Receiver as any device (prompt, names, limits, free
// space, queue), and sends to a LocalSend receiver with the same
// transfer.Sender. It imports no UI package.
package localsend

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/thepeerdrop/peerdrop/internal/device"
	"github.com/thepeerdrop/peerdrop/transfer"
)

// The protocol's constants (spec §2, §3).
const (
	DefaultPort      = 53317
	MulticastAddr    = "224.0.0.167"
	ProtocolVersion  = "2.1"
	apiPrefix        = "/api/localsend/v2/"
	ProtocolHTTPS    = "https"
	ProtocolHTTP     = "http"
	maxJSONBytes     = 8 << 20  // a prepare-upload of MaxFiles files with long names
	maxSmallJSON     = 64 << 10 // announcements, register, info, answers
	MaxFiles         = 10_000   // files in one session
	maxAliasBytes    = 64
	maxModelBytes    = 64
	maxFingerprint   = 128
	maxFileTypeBytes = 256
	maxPreviewBytes  = transfer.MaxTextBytes
)

// Info is a device as LocalSend describes itself: in a multicast
// announcement (Announce set), the register call and its answer, the info
// call and a prepare-upload's info.
type Info struct {
	Alias       string  `json:"alias"`
	Version     string  `json:"version"`
	DeviceModel *string `json:"deviceModel"`
	DeviceType  *string `json:"deviceType"`
	Fingerprint string  `json:"fingerprint"`
	Port        int     `json:"port,omitempty"`
	Protocol    string  `json:"protocol,omitempty"`
	Download    bool    `json:"download"`
	Announce    *bool   `json:"announce,omitempty"`
}

// FileInfo is one file of a prepare-upload.
type FileInfo struct {
	ID       string    `json:"id"`
	FileName string    `json:"fileName"`
	Size     int64     `json:"size"`
	FileType string    `json:"fileType"`
	SHA256   *string   `json:"sha256,omitempty"`
	Preview  *string   `json:"preview,omitempty"`
	Metadata *Metadata `json:"metadata,omitempty"`
}

// Metadata holds a file's times, RFC 3339.
type Metadata struct {
	Modified *string `json:"modified,omitempty"`
	Accessed *string `json:"accessed,omitempty"`
}

// PrepareRequest is the body of prepare-upload.
type PrepareRequest struct {
	Info  Info                `json:"info"`
	Files map[string]FileInfo `json:"files"`
}

// PrepareResponse is prepare-upload's answer: a token per accepted file.
type PrepareResponse struct {
	SessionID string            `json:"sessionId"`
	Files     map[string]string `json:"files"`
}

// errorBody is LocalSend's error answer.
type errorBody struct {
	Message string `json:"message"`
}

// decode reads one JSON value of at most limit bytes into v, and nothing
// after it.
// It decodes as it reads: no copy of the body is kept.
func decode(r io.Reader, limit int64, v any) error {
	lr := &io.LimitedReader{R: r, N: limit + 1}
	d := json.NewDecoder(lr)
	err := d.Decode(v)
	if err == nil {
		if _, err = d.Token(); err == io.EOF {
			return nil
		}
		if err == nil {
			err = errors.New("more than one value")
		}
	}
	if lr.N <= 0 {
		return fmt.Errorf("more than %d bytes", limit)
	}
	return fmt.Errorf("bad JSON: %w", err)
}

func decodeBytes(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("bad JSON: %w", err)
	}
	if d.More() {
		return errors.New("bad JSON: more than one value")
	}
	return nil
}

// DecodeInfo decodes and checks an announcement, a register body or
// answer, or an info answer.
func DecodeInfo(b []byte) (Info, error) {
	var in Info
	if len(b) > maxSmallJSON {
		return Info{}, fmt.Errorf("device info of %d bytes", len(b))
	}
	if err := decodeBytes(b, &in); err != nil {
		return Info{}, err
	}
	return in, in.check()
}

// check refuses what we will not show or store: names and fingerprints
// are bounded and printable, the port and protocol are real.
func (in *Info) check() error {
	alias, err := cleanName(in.Alias)
	if err != nil {
		return fmt.Errorf("alias: %w", err)
	}
	in.Alias = alias
	if in.DeviceModel != nil && (len(*in.DeviceModel) > maxModelBytes || !printable(*in.DeviceModel)) {
		return errors.New("bad device model")
	}
	if in.Fingerprint == "" || len(in.Fingerprint) > maxFingerprint || !printable(in.Fingerprint) {
		return errors.New("bad fingerprint")
	}
	if in.Port < 0 || in.Port > 65535 {
		return fmt.Errorf("bad port %d", in.Port)
	}
	switch in.Protocol {
	case "", ProtocolHTTP, ProtocolHTTPS:
	default:
		return fmt.Errorf("unknown protocol %q", in.Protocol)
	}
	if len(in.Version) > 16 || !printable(in.Version) {
		return errors.New("bad version")
	}
	return nil
}

// cleanName makes an alias a display name (device.ValidateName): spaces
// around it trimmed, cut to maxAliasBytes on a character boundary.
func cleanName(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) > maxAliasBytes {
		s = s[:maxAliasBytes]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s = strings.TrimSpace(s)
	}
	if err := device.ValidateName(s); err != nil {
		return "", err
	}
	return s, nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// DecodePrepare decodes and checks a prepare-upload body: at most MaxFiles
// files, ids unique and short, names valid paths (transfer.ValidatePath,
// the rules of our own offers), sizes within our limits, no path twice.
func DecodePrepare(r io.Reader) (PrepareRequest, error) {
	var p PrepareRequest
	if err := decode(r, maxJSONBytes, &p); err != nil {
		return PrepareRequest{}, err
	}
	if err := p.check(); err != nil {
		return PrepareRequest{}, err
	}
	return p, nil
}

// check is DecodePrepare's checks of a decoded prepare-upload.
func (p *PrepareRequest) check() error {
	if err := p.Info.check(); err != nil {
		return fmt.Errorf("info: %w", err)
	}
	if len(p.Files) == 0 {
		return errors.New("no files")
	}
	if len(p.Files) > MaxFiles {
		return fmt.Errorf("%d files, limit %d", len(p.Files), MaxFiles)
	}
	names := make(map[string]bool, len(p.Files))
	var total int64
	for key, f := range p.Files {
		if names[f.FileName] {
			return fmt.Errorf("file %q twice", f.FileName)
		}
		names[f.FileName] = true
		if f.Size > 0 {
			if total += f.Size; total > transfer.MaxFileSize {
				return errors.New("files too large in all")
			}
		}
		if f.ID != key || key == "" || len(key) > 128 || !printable(key) {
			return fmt.Errorf("file id %q does not match its key", key)
		}
		if err := transfer.ValidatePath(f.FileName); err != nil {
			return fmt.Errorf("file %q: %w", f.FileName, err)
		}
		if f.Size < 0 || f.Size > transfer.MaxFileSize {
			return fmt.Errorf("file %q: bad size %d", f.FileName, f.Size)
		}
		if len(f.FileType) > maxFileTypeBytes {
			return fmt.Errorf("file %q: file type too long", f.FileName)
		}
		if f.Preview != nil && len(*f.Preview) > maxPreviewBytes {
			// Too long for a message: it comes as the file it also is.
			f.Preview = nil
			p.Files[key] = f
		}
		if f.SHA256 != nil && *f.SHA256 != "" {
			if _, err := hex.DecodeString(*f.SHA256); err != nil || len(*f.SHA256) != 64 {
				return fmt.Errorf("file %q: bad sha256", f.FileName)
			}
		}
	}
	return nil
}

// DecodePrepareResponse decodes prepare-upload's answer; ids must be
// among those offered.
func DecodePrepareResponse(r io.Reader, offered map[string]bool) (PrepareResponse, error) {
	var p PrepareResponse
	if err := decode(r, maxJSONBytes, &p); err != nil {
		return PrepareResponse{}, err
	}
	if p.SessionID == "" || len(p.SessionID) > 256 || !printable(p.SessionID) {
		return PrepareResponse{}, errors.New("bad session id")
	}
	for id, tok := range p.Files {
		if !offered[id] {
			return PrepareResponse{}, fmt.Errorf("token for file %q, which was not offered", id)
		}
		if tok == "" || len(tok) > 256 || !printable(tok) {
			return PrepareResponse{}, fmt.Errorf("bad token for file %q", id)
		}
	}
	return p, nil
}

// modTime is a file's modification time from its metadata, 0 if unknown.
func (f FileInfo) modTime() int64 {
	if f.Metadata == nil || f.Metadata.Modified == nil {
		return 0
	}
	t, err := time.Parse(time.RFC3339Nano, *f.Metadata.Modified)
	if err != nil || t.Unix() < 0 {
		return 0
	}
	return t.Unix()
}

// isText says whether a prepare-upload is a text message, as LocalSend's
// apps send one (the spec does not describe it): one text/plain file whose
// preview is the whole text. It is shown as a message, answered 204, and
// nothing is stored.
func (p PrepareRequest) isText() (string, bool) {
	if len(p.Files) != 1 {
		return "", false
	}
	for _, f := range p.Files {
		if f.Preview != nil && strings.HasPrefix(f.FileType, "text/") && int64(len(*f.Preview)) == f.Size {
			return *f.Preview, true
		}
	}
	return "", false
}

// Fingerprint is LocalSend's fingerprint of a certificate: the SHA-256 of
// its DER, in hex.
func Fingerprint(der []byte) string {
	h := sha256.Sum256(der)
	return hex.EncodeToString(h[:])
}

// sdpFingerprint is a LocalSend fingerprint in our form ("sha-256 AA:..."),
// from which device ids derive (device.IDFor): a certificate's hash as is,
// any other string (an HTTP peer's random one) hashed first.
func sdpFingerprint(fp string) string {
	raw, err := hex.DecodeString(fp)
	if err != nil || len(raw) != sha256.Size {
		h := sha256.Sum256([]byte(fp))
		raw = h[:]
	}
	var b strings.Builder
	b.WriteString("sha-256 ")
	for i, c := range raw {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}
