package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestWebFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"receive", "--web-listen", ":0"}, "--web-listen needs --web"},
	} {
		var stdout, stderr bytes.Buffer
		dir := t.TempDir()
		code := Run(append([]string{"--config-dir", dir, "--name", "t"}, tc.args...), strings.NewReader(""), &stdout, &stderr)
		assert.Equal(t, 2, code, "%v: %s", tc.args, stderr.String())
		assert.Contains(t, stderr.String(), tc.want, tc.args)
	}
}
