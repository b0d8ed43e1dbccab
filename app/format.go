package app

import (
	"fmt"
	"hash/fnv"
	"image/color"
	"strings"
	"time"
	"unicode"

	"github.com/thepeerdrop/peerdrop/discovery"
	"github.com/thepeerdrop/peerdrop/engine"
	"github.com/thepeerdrop/peerdrop/internal/units"
	"github.com/thepeerdrop/peerdrop/internal/visible"
)

// humanBytes formats a size in SI units (internal/units): "12.3 MB".
func humanBytes(n int64) string { return units.Bytes(n) }

// humanSpeed formats bytes per second: "12.3 MB/s"; "" when not moving.
func humanSpeed(bps float64) string { return units.Speed(bps) }

// humanETA formats the time left: "8 s left", "3 min 5 s left", "1 h 20 min
// left"; "" when unknown.
func humanETA(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	s := int64((d + time.Second - 1) / time.Second) // round up: "0 s left" helps nobody
	switch {
	case s < 60:
		return fmt.Sprintf("%d s left", s)
	case s < 10*60:
		if s%60 == 0 {
			return fmt.Sprintf("%d min left", s/60)
		}
		return fmt.Sprintf("%d min %d s left", s/60, s%60)
	case s < 3600:
		return fmt.Sprintf("%d min left", (s+30)/60)
	default:
		m := (s + 30) / 60
		return fmt.Sprintf("%d h %d min left", m/60, m%60)
	}
}

// plural is "1 file", "3 files".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// offerWhat says what an offer holds: "3 files", "2 files in 1 folder",
// "a message".
func offerWhat(o engine.Offer) string {
	switch {
	case o.Files == 0 && o.Folders == 0 && o.Text != "":
		return "a message"
	case o.Folders > 0 && o.Files == 0:
		return plural(o.Folders, "empty folder")
	case o.Folders > 0:
		return plural(o.Files, "file") + " in " + plural(o.Folders, "folder")
	}
	return plural(o.Files, "file")
}

// offerNotice is the notification text for an offer.
func offerNotice(o engine.Offer) string {
	return fmt.Sprintf("%s wants to send you %s", peerName(o.From), offerWhat(o))
}

// peerName is a peer's name (what does not print shown escaped), or a
// short id when it has none.
func peerName(p engine.Peer) string {
	if strings.TrimSpace(p.Name) != "" {
		return visible.Escape(p.Name)
	}
	if p.ID != "" {
		return "Device " + shortID(p.ID)
	}
	return "Unknown device"
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// initials is what an avatar shows: the first letter (or digit) of the
// first two words of a name, upper case: "Alice's MacBook" -> "AM",
// "bob" -> "B", "office-pc" -> "OP", "" -> "?".
func initials(name string) string {
	words := strings.FieldsFunc(name, func(r rune) bool {
		return unicode.IsSpace(r) || r == '-' || r == '_' || r == '.' || r == '/' || r == '|'
	})
	var out []rune
	for _, w := range words {
		w = strings.TrimSuffix(strings.TrimSuffix(w, "'s"), "’s")
		for _, r := range w {
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				out = append(out, unicode.ToUpper(r))
				break
			}
		}
		if len(out) == 2 {
			break
		}
	}
	if len(out) == 0 {
		return "?"
	}
	return string(out)
}

// avatarPalette holds colours dark enough for white initials (Material 600
// and 700 shades), distinct from each other in both themes.
var avatarPalette = []color.NRGBA{
	{0xE5, 0x39, 0x35, 0xFF}, // red
	{0xD8, 0x1B, 0x60, 0xFF}, // pink
	{0x8E, 0x24, 0xAA, 0xFF}, // purple
	{0x5E, 0x35, 0xB1, 0xFF}, // deep purple
	{0x39, 0x49, 0xAB, 0xFF}, // indigo
	{0x1E, 0x88, 0xE5, 0xFF}, // blue
	{0x03, 0x88, 0xD1, 0xFF}, // light blue
	{0x00, 0x89, 0x7B, 0xFF}, // teal
	{0x38, 0x8E, 0x3C, 0xFF}, // green
	{0xF4, 0x51, 0x1E, 0xFF}, // deep orange
	{0x6D, 0x4C, 0x41, 0xFF}, // brown
	{0x54, 0x6E, 0x7A, 0xFF}, // blue grey
}

// avatarColor is a device's colour: the same id always gets the same one,
// on every machine.
func avatarColor(id string) color.NRGBA {
	h := fnv.New32a()
	h.Write([]byte(id))
	return avatarPalette[h.Sum32()%uint32(len(avatarPalette))]
}

// typeLabel is a device type for people: "Laptop".
func typeLabel(t string) string {
	switch t {
	case discovery.TypeDesktop:
		return "Desktop"
	case discovery.TypeLaptop:
		return "Laptop"
	case discovery.TypePhone:
		return "Phone"
	case discovery.TypeTablet:
		return "Tablet"
	case discovery.TypeServer:
		return "Server"
	}
	return "Device"
}

// stateText is an item's state for people, by direction.
func stateText(it engine.Item) string {
	switch it.State {
	case engine.StateConnecting:
		if it.Direction == engine.Outgoing {
			return "Waiting for " + peerName(it.Peer)
		}
		return "Connecting"
	case engine.StateWaiting:
		if it.Direction == engine.Outgoing {
			return "Waits for " + peerName(it.Peer) + " to appear"
		}
		return "Waiting for you"
	case engine.StateRunning:
		if it.Direction == engine.Outgoing {
			return "Sending"
		}
		return "Receiving"
	case engine.StatePaused:
		return "Paused"
	case engine.StateDone:
		if it.Direction == engine.Outgoing {
			return "Sent"
		}
		return "Received"
	case engine.StateFailed:
		return "Failed"
	case engine.StateCancelled:
		return "Cancelled"
	case engine.StateDeclined:
		return "Declined"
	}
	return string(it.State)
}

// itemDetail is the second line of a queue row: who, how much, how fast,
// how long. The error of a failed item has a line of its own.
func itemDetail(it engine.Item) string {
	who := "to " + peerName(it.Peer)
	if it.Direction == engine.Incoming {
		who = "from " + peerName(it.Peer)
	}
	parts := []string{who}
	switch {
	case it.State == engine.StateDone:
		if it.Files > 0 {
			parts = append(parts, plural(it.Files, "file"))
		}
		parts = append(parts, humanBytes(it.Total))
	case it.State.Finished():
		if it.Total > 0 {
			parts = append(parts, humanBytes(it.Bytes)+" of "+humanBytes(it.Total))
		}
	default:
		// The connection's verification code, to compare with the other
		// screen: first while the answer is awaited, when it matters.
		waiting := it.State == engine.StateConnecting || it.State == engine.StateWaiting
		if it.Code != "" && waiting {
			parts = append(parts, "Code "+it.Code)
		}
		if it.Total > 0 {
			parts = append(parts, humanBytes(it.Bytes)+" of "+humanBytes(it.Total))
		}
		if it.Code != "" && !waiting {
			parts = append(parts, "code "+it.Code)
		}
		if it.State == engine.StateRunning {
			if s := humanSpeed(it.Speed); s != "" {
				parts = append(parts, s)
			}
			if e := humanETA(it.ETA); e != "" {
				parts = append(parts, e)
			}
		}
	}
	if len(it.Skipped) > 0 {
		// Left out by the receiver (Accept N of M); names from the network.
		names := make([]string, len(it.Skipped))
		for i, n := range it.Skipped {
			names[i] = visible.Escape(n)
		}
		parts = append(parts, fmt.Sprintf("%d skipped: %s", len(names), strings.Join(names, ", ")))
	}
	return strings.Join(parts, " · ")
}

// whenText says when something happened, as seen at now, in now's time
// zone: "Today 14:05", "Yesterday 09:30", "3 Dec", "3 Dec 2025".
func whenText(t, now time.Time) string {
	t = t.In(now.Location())
	day := func(x time.Time) time.Time { y, m, d := x.Date(); return time.Date(y, m, d, 0, 0, 0, 0, x.Location()) }
	today := day(now)
	switch d := day(t); {
	case d.Equal(today):
		return "Today " + t.Format("15:04")
	case d.Equal(today.AddDate(0, 0, -1)):
		return "Yesterday " + t.Format("15:04")
	case t.Year() == now.Year():
		return t.Format("2 Jan")
	}
	return t.Format("2 Jan 2006")
}

// progress is an item's fraction done, 0..1.
func progress(it engine.Item) float64 {
	if it.Total <= 0 {
		if it.State == engine.StateDone {
			return 1
		}
		return 0
	}
	f := float64(it.Bytes) / float64(it.Total)
	return min(max(f, 0), 1)
}

// wrapf is fmt.Errorf(format+": %w", args..., err).
func wrapf(err error, format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, err)...)
}
