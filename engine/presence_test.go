package engine

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// scheduleAt is a findSchedule of 30 s rounds whose clock reads start+*at.
func scheduleAt(at *time.Duration) findSchedule {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return newFindSchedule(30*time.Second, func() time.Time { return start.Add(*at) })
}

func TestFindScheduleDue(t *testing.T) {
	ten := make([]string, 10)
	for i := range ten {
		ten[i] = fmt.Sprintf("d%d", i)
	}
	miss := func(id string, times int) func(*findSchedule) {
		return func(s *findSchedule) {
			for range times {
				s.looked(id, false)
			}
		}
	}
	tests := []struct {
		name    string
		setup   func(*findSchedule) // at 0 s
		at      time.Duration       // when due is asked
		paired  []string
		present []string
		want    []string
	}{
		{name: "never looked for", paired: []string{"a", "b"}, want: []string{"a", "b"}},
		{name: "nearby or away: not looked for", paired: []string{"a", "b"}, present: []string{"a"}, want: []string{"b"}},
		{name: "one miss: waits a round", setup: miss("a", 1), at: 14 * time.Second, paired: []string{"a"}},
		{name: "one miss: half a round of slack", setup: miss("a", 1), at: 15 * time.Second, paired: []string{"a"}, want: []string{"a"}},
		{name: "two misses: two rounds", setup: miss("a", 2), at: 44 * time.Second, paired: []string{"a"}},
		{name: "two misses: then due", setup: miss("a", 2), at: 45 * time.Second, paired: []string{"a"}, want: []string{"a"}},
		{name: "three misses: the cap", setup: miss("a", 3), at: 104 * time.Second, paired: []string{"a"}},
		{name: "three misses: then due", setup: miss("a", 3), at: 105 * time.Second, paired: []string{"a"}, want: []string{"a"}},
		{name: "many misses: still the cap", setup: miss("a", 40), at: 105 * time.Second, paired: []string{"a"}, want: []string{"a"}},
		{name: "missed, then found: due at once", setup: func(s *findSchedule) { s.looked("a", false); s.looked("a", true) },
			paired: []string{"a"}, want: []string{"a"}},
		{name: "one waits, the other is due", setup: miss("a", 1), at: time.Second,
			paired: []string{"a", "b"}, want: []string{"b"}},
		{name: "wanted: first, even within its pause", setup: func(s *findSchedule) { s.looked("c", false); s.want("c") },
			at: time.Second, paired: []string{"a", "c"}, want: []string{"c", "a"}},
		{name: "wanted but present: not looked for", setup: func(s *findSchedule) { s.want("a") },
			paired: []string{"a"}, present: []string{"a"}},
		{name: "wanted but no longer paired: not looked for", setup: func(s *findSchedule) { s.want("gone") },
			paired: []string{"a"}, want: []string{"a"}},
		{name: "a round looks for a few", paired: ten, want: ten[:maxFindsPerRound]},
		{name: "the next round takes the others", setup: func(s *findSchedule) {
			for _, id := range ten[:maxFindsPerRound] {
				s.looked(id, false)
			}
		}, at: time.Second, paired: ten, want: ten[maxFindsPerRound:]},
		{name: "a round cut short: the next goes on from there", setup: func(s *findSchedule) {
			for _, id := range ten[:3] { // found (and gone again since), then the server refused a find
				s.looked(id, true)
			}
		}, at: time.Second, paired: ten, want: append(slices.Clone(ten[3:]), ten[0])},
		{name: "a reset forgets the misses", setup: func(s *findSchedule) { s.looked("a", false); s.reset() },
			at: time.Second, paired: []string{"a"}, want: []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var at time.Duration
			s := scheduleAt(&at)
			if tt.setup != nil {
				tt.setup(&s)
			}
			at = tt.at
			present := func(id string) bool { return slices.Contains(tt.present, id) }
			assert.Equal(t, tt.want, s.due(tt.paired, present))
			for id := range s.wanted {
				assert.True(t, slices.Contains(tt.paired, id) && !present(id), "%s stays wanted", id)
			}
		})
	}
}

func TestFindScheduleMissPauses(t *testing.T) {
	var at time.Duration
	s := scheduleAt(&at)
	// The pause after each miss in a row: a round, doubling, up to maxFindPause.
	for i, want := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 2 * time.Minute, 2 * time.Minute} {
		at = time.Duration(i) * time.Hour
		s.looked("a", false)
		assert.Equal(t, want, s.misses["a"].next.Sub(s.now()), "after miss %d", i+1)
	}
	s.looked("a", true)
	assert.NotContains(t, s.misses, "a", "found: no longer missing")
}

// Finds of us make devices wanted at most maxFoundPerMinute times a minute:
// anyone can claim an id, and each want costs a find.
func TestFindScheduleWantLimit(t *testing.T) {
	var at time.Duration
	s := scheduleAt(&at)
	steps := []struct {
		at   time.Duration
		id   string
		want bool
	}{
		{0, "a", true},
		{0, "a", false}, // already wanted
		{10 * time.Second, "b", true},
		{10 * time.Second, "c", true},
		{10 * time.Second, "d", true},
		{10 * time.Second, "e", true},
		{10 * time.Second, "f", true},
		{20 * time.Second, "g", false}, // six in the last minute
		{60 * time.Second, "g", true},  // a's is a minute old
		{61 * time.Second, "h", false},
		{70 * time.Second, "h", true}, // b..f's are a minute old
	}
	for _, st := range steps {
		at = st.at
		assert.Equal(t, st.want, s.want(st.id), "want %s at %v", st.id, st.at)
	}
	s.looked("a", false)
	assert.Equal(t, []string{"b", "c"}, s.due([]string{"a", "b", "c"}, func(string) bool { return false }),
		"looked for: no longer wanted, and it waits out its miss")
	assert.False(t, s.want("b"), "still wanted")
	s.reset()
	assert.True(t, s.want("b"), "a new connection forgets the wants")
}
