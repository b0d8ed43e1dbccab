//go:build peerdrop_testhook

package app

// TestHooksBuilt says whether this build can enable the test hook.
const TestHooksBuilt = true

// StartTestHooks enables the test hook when the PEERDROP_TEST_* variables
// (read with getenv, os.Getenv in main) ask for it; see startTestHooks.
func (u *UI) StartTestHooks(getenv func(string) string) (stop func(), err error) {
	return u.startTestHooks(getenv)
}
