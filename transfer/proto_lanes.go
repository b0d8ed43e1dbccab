package transfer

import (
	"cmp"
	"slices"
)

// Lanes and ranges (docs/PROTOCOL.md section 4.3): one transfer over
// several associations with the same receiver, large files cut into
// ranges spread across them, each range verified by its own SHA-256.

const (
	// MaxLanes bounds the associations of one transfer, the first
	// included: one per core is where more stops helping, and four is
	// where pion's per-association goroutines stop paying off.
	MaxLanes = 4
	// RangeSize is how large the ranges are that the sender cuts files
	// into; a file no larger goes whole, on one lane.
	RangeSize = 16 << 20
	// MinRange is the smallest range a receiver accepts, but for a
	// file's last: it bounds the ranges one file can be cut into.
	MinRange = 1 << 20
	// MaxRanges bounds the verified ranges of one file a receiver keeps
	// apart (ranges that touch merge into one).
	MaxRanges = 4096
)

// RangePoint is a range of file Index, bytes Offset up to End.
type RangePoint struct {
	Index  int   `json:"index"`
	Offset int64 `json:"offset"`
	End    int64 `json:"end"`
}

// validateRanges checks an accept's lanes and verified ranges.
func (m *Message) validateRanges() error {
	if m.Lanes < 0 || m.Lanes > MaxLanes {
		return violation(CodeProtocol, "accept: lanes %d, want 0 to %d", m.Lanes, MaxLanes)
	}
	if len(m.Ranges) > MaxEntries {
		return violation(CodeTooLarge, "accept: too many ranges")
	}
	for _, r := range m.Ranges {
		if r.Index < 0 || r.Index >= MaxEntries || r.Offset < 0 || r.End <= r.Offset || r.End > MaxFileSize {
			return violation(CodeProtocol, "accept: bad range")
		}
	}
	return nil
}

// span is a range of bytes, [start, end).
type span struct{ start, end int64 }

// spans is a set of byte ranges, kept sorted, those that touch merged.
type spans []span

// overlaps reports whether [start, end) shares a byte with the set.
func (s spans) overlaps(start, end int64) bool {
	for _, x := range s {
		if start < x.end && x.start < end {
			return true
		}
	}
	return false
}

// mergeSpans makes a set of ranges given in any order, in O(n log n)
// (adding them one by one is O(n) each). It sorts in.
func mergeSpans(in []span) spans {
	slices.SortFunc(in, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	out := make(spans, 0, len(in))
	for _, x := range in {
		if n := len(out); n > 0 && x.start <= out[n-1].end {
			out[n-1].end = max(out[n-1].end, x.end)
			continue
		}
		out = append(out, x)
	}
	return out
}

// add puts [start, end) in the set, merging what touches it.
func (s spans) add(start, end int64) spans {
	out := make(spans, 0, len(s)+1)
	placed := false
	for _, x := range s {
		switch {
		case x.end < start:
			out = append(out, x)
		case end < x.start:
			if !placed {
				out, placed = append(out, span{start, end}), true
			}
			out = append(out, x)
		default:
			start, end = min(start, x.start), max(end, x.end)
		}
	}
	if !placed {
		out = append(out, span{start, end})
	}
	return out
}

// covers reports whether the set is exactly [0, size).
func (s spans) covers(size int64) bool {
	return len(s) == 1 && s[0].start == 0 && s[0].end == size
}

// bytes is how many bytes the set holds.
func (s spans) bytes() int64 {
	var n int64
	for _, x := range s {
		n += x.end - x.start
	}
	return n
}

// missing cuts what [0, size) holds beyond the set into ranges of at most
// RangeSize.
func (s spans) missing(index int, size int64) []queued {
	var out []queued
	at := int64(0)
	for _, x := range append(s, span{size, size}) {
		for ; at < x.start; at = min(at+rangeSize, x.start) {
			out = append(out, queued{index: index, offset: at, end: min(at+rangeSize, x.start)})
		}
		at = max(at, x.end)
	}
	return out
}
