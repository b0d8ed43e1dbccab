// Package visible makes names and texts that came from the network safe to
// show to a person. Characters that print nothing, or that hide, reorder or
// break what follows (controls, zero-width and bidirectional format
// characters, the BOM, line and paragraph separators, spaces other than
// U+0020), are shown as escapes such as `\u200B`; and a word that mixes
// scripts (Latin and Cyrillic letters, say) can be pointed out, since that
// is how look-alike names are made.
//
// Escaping is for people only: events, JSON output and files on disk keep
// the raw text. web/static/visible.js is the same rules for the web page;
// change both together.
package visible

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// invisibleGraphic are characters Unicode files under letters or marks that
// nevertheless draw nothing (Unicode's Default_Ignorable_Code_Point, less the
// variation selectors that emoji need).
var invisibleGraphic = map[rune]bool{
	'\u034F': true, // combining grapheme joiner
	'\u115F': true, // Hangul choseong filler
	'\u1160': true, // Hangul jungseong filler
	'\u17B4': true, // Khmer vowel inherent aq
	'\u17B5': true, // Khmer vowel inherent aa
	'\u3164': true, // Hangul filler
	'\uFFA0': true, // halfwidth Hangul filler
}

// hidden reports whether r is shown escaped: every character that is not
// printable in unicode.IsPrint's sense (controls, format characters, line
// and paragraph separators, private use, unassigned, spaces other than
// U+0020) and the invisible letters above.
func hidden(r rune) bool {
	return !unicode.IsPrint(r) || invisibleGraphic[r]
}

// Escape returns s with every hidden character written as `\uXXXX` (or
// `\UXXXXXXXX` beyond U+FFFF) and every byte that is not UTF-8 as `\xXX`.
// Newlines and tabs are escaped too: use it for names, which are one line.
func Escape(s string) string { return escape(s, false) }

// Text is Escape for a message: line feeds and tabs stay as they are, so
// a text of several lines still reads as such.
func Text(s string) string { return escape(s, true) }

func escape(s string, keepLines bool) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || hidden(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02X`, s[i])
		case keepLines && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case !hidden(r):
			b.WriteString(s[i : i+n])
		case r > 0xFFFF:
			fmt.Fprintf(&b, `\U%08X`, r)
		default:
			fmt.Fprintf(&b, `\u%04X`, r)
		}
		i += n
	}
	return b.String()
}

// eastAsian are the scripts that are written together in one word (Japanese
// mixes Han, Hiragana and Katakana; Korean Hangul and Han) and, with Latin,
// in file names every day ("報告2024_final"): mixing them is not a warning.
var eastAsian = map[string]bool{
	"Latin": true, "Han": true, "Hiragana": true, "Katakana": true, "Hangul": true, "Bopomofo": true,
}

// common are the scripts looked up first; the rest of unicode.Scripts after.
var common = []string{"Latin", "Cyrillic", "Greek", "Han", "Hiragana", "Katakana", "Hangul", "Arabic", "Hebrew", "Armenian"}

// scriptOf names the script of letter r, "" for Common and Inherited ones.
func scriptOf(r rune) string {
	for _, name := range common {
		if unicode.Is(unicode.Scripts[name], r) {
			return name
		}
	}
	for name, table := range unicode.Scripts {
		if name == "Common" || name == "Inherited" {
			continue
		}
		if unicode.Is(table, r) {
			return name
		}
	}
	return ""
}

// MixedScripts returns, sorted, the scripts of the letters in the words of s
// that mix scripts ("pаypal" with a Cyrillic "а": Cyrillic and Latin), or nil
// when every word keeps to one script. A word is a run of letters, marks and
// digits. Latin with Han, Hiragana, Katakana, Hangul or Bopomofo is not a mix
// (see eastAsian). Names in one foreign script that look like Latin ones
// ("рор" in Cyrillic) are not found: that needs Unicode's confusables table.
func MixedScripts(s string) []string {
	var found []string
	word := map[string]bool{}
	flush := func() {
		if len(word) > 1 {
			mixed := false
			for sc := range word {
				if !eastAsian[sc] {
					mixed = true
				}
			}
			if mixed {
				for sc := range word {
					if !slices.Contains(found, sc) {
						found = append(found, sc)
					}
				}
			}
		}
		clear(word)
	}
	for _, r := range s {
		switch {
		case unicode.IsLetter(r):
			if sc := scriptOf(r); sc != "" {
				word[sc] = true
			}
		case unicode.IsMark(r), unicode.IsDigit(r):
		default:
			flush()
		}
	}
	flush()
	slices.Sort(found)
	return found
}

// Warning is a short note for a name that mixes scripts ("mixes Cyrillic
// and Latin letters"), "" for one that does not.
func Warning(s string) string {
	sc := MixedScripts(s)
	if len(sc) == 0 {
		return ""
	}
	list := strings.Join(sc[:len(sc)-1], ", ") + " and " + sc[len(sc)-1]
	return "mixes " + list + " letters"
}

// Name is Escape followed, for a name that mixes scripts, by its Warning in
// brackets: what a prompt shows for a file name.
func Name(s string) string {
	if w := Warning(s); w != "" {
		return Escape(s) + " [" + w + "]"
	}
	return Escape(s)
}
