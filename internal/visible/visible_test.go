package visible

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestEscape(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"plain ASCII", "report.txt", "report.txt"},
		{"accents, NFC", "caf\u00e9.txt", "caf\u00e9.txt"},
		{"accents, NFD: combining marks print", "cafe\u0301.txt", "cafe\u0301.txt"},
		{"emoji with variation selector", "\u2764\ufe0f.png", "\u2764\ufe0f.png"},
		{"CJK", "報告書.pdf", "報告書.pdf"},
		{"space stays", "my file.txt", "my file.txt"},
		{"zero-width space", "a\u200bb.txt", `a\u200Bb.txt`},
		{"zero-width joiner and non-joiner", "a\u200c\u200db", `a\u200C\u200Db`},
		{"BOM", "\ufeffname", `\uFEFFname`},
		{"line separator", "first\u2028second", `first\u2028second`},
		{"paragraph separator", "a\u2029b", `a\u2029b`},
		{"right-to-left override", "gpj\u202eexe.scr", `gpj\u202Eexe.scr`},
		{"bidi isolates", "\u2066x\u2069", `\u2066x\u2069`},
		{"left-to-right mark", "x\u200e", `x\u200E`},
		{"C0 controls", "a\x1b[31mred\x07", `a\u001B[31mred\u0007`},
		{"newline and tab", "a\nb\tc", `a\u000Ab\u0009c`},
		{"DEL", "a\x7f", `a\u007F`},
		{"C1 control", "a\u0085b", `a\u0085b`},
		{"soft hyphen", "in\u00advisible", `in\u00ADvisible`},
		{"no-break space", "a\u00a0b", `a\u00A0b`},
		{"ideographic space", "a\u3000b", `a\u3000b`},
		{"word joiner", "a\u2060b", `a\u2060b`},
		{"Hangul filler", "\u3164", `\u3164`},
		{"combining grapheme joiner", "a\u034fb", `a\u034Fb`},
		{"private use", "\ue000", `\uE000`},
		{"tag character beyond the BMP", "a\U000E0041", `a\U000E0041`},
		{"invalid UTF-8", "a\xff\xfeb", `a\xFF\xFEb`},
		{"truncated sequence", "caf\xc3", `caf\xC3`},
		{"backslash stays", `C:\dir`, `C:\dir`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, Escape(tc.in))
		})
	}
}

func TestText(t *testing.T) {
	assert.Equal(t, "line one\nline\ttwo", Text("line one\nline\ttwo"), "lines and tabs of a message stay")
	assert.Equal(t, `a\u000Db\u2028c`+"\n", Text("a\rb\u2028c\n"), "other controls and separators are escaped")
}

func TestMixedScripts(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"Latin", "paypal.txt", nil},
		{"Cyrillic a in a Latin word", "p\u0430ypal.txt", []string{"Cyrillic", "Latin"}},
		{"Greek omicron in a Latin word", "g\u03bfogle", []string{"Greek", "Latin"}},
		{"Cyrillic alone", "файл.txt", nil},
		{"scripts in separate words", "отчёт report.txt", nil},
		{"digits join a word", "IMG1файл", []string{"Cyrillic", "Latin"}},
		{"Japanese mixes three scripts", "日本語のファイル.txt", nil},
		{"Korean with Han", "한국語.txt", nil},
		{"Latin with Han", "report報告.pdf", nil},
		{"Han with Cyrillic", "報告файл", []string{"Cyrillic", "Han"}},
		{"accents and NFD marks", "cafe\u0301 na\u00efve", nil},
		{"empty", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, MixedScripts(tc.in))
		})
	}
	assert.Equal(t, "mixes Cyrillic and Latin letters", Warning("p\u0430ypal"))
	assert.Empty(t, Warning("paypal"))
	assert.Equal(t, `p\u200Bаypal [mixes Cyrillic and Latin letters]`, Name("p\u200b\u0430ypal"))
	assert.Equal(t, "paypal", Name("paypal"))
}

func FuzzEscape(f *testing.F) {
	f.Add("a\u200bb\u2028c\xff")
	f.Fuzz(func(t *testing.T, s string) {
		out := Escape(s)
		for _, r := range out {
			if hidden(r) {
				t.Fatalf("Escape(%q) = %q still holds %U", s, out, r)
			}
		}
		if Escape(out) != out {
			t.Fatalf("Escape is not idempotent on %q", s)
		}
	})
}
