package testkit_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/thepeerdrop/peerdrop/internal/testkit"
)

func TestClock(t *testing.T) {
	c := testkit.NewClock()
	start := c.Now()
	assert.Equal(t, start, c.Now(), "the clock stands still")
	c.Advance(90 * time.Second)
	assert.Equal(t, start.Add(90*time.Second), c.Now())
}

func TestIdentityAndContext(t *testing.T) {
	a, b := testkit.Identity(t), testkit.Identity(t)
	assert.NotEqual(t, a.DeviceID, b.DeviceID, "each identity is new")
	ctx := testkit.Context(t, time.Hour)
	_, ok := ctx.Deadline()
	assert.True(t, ok)
}
