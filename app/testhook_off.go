//go:build !peerdrop_testhook

package app

// TestHooksBuilt says whether this build can enable the test hook.
const TestHooksBuilt = false

// StartTestHooks does nothing in a build without the peerdrop_testhook
// tag: the PEERDROP_TEST_* variables are not read. stop is never nil.
func (u *UI) StartTestHooks(func(string) string) (stop func(), err error) {
	return func() {}, nil
}
