// The escaper of internal/visible (Go) for the page: names and texts from
// the network show what prints nothing, or hides, reorders or breaks what
// follows, as visible escapes (`\u200B`), and a word that mixes scripts can
// be pointed out. The rules are the Go package's; change both together.

// Characters filed under letters or marks that draw nothing (Unicode's
// Default_Ignorable_Code_Point, less the variation selectors emoji need).
const INVISIBLE = '\u034F\u115F\u1160\u17B4\u17B5\u3164\uFFA0';

// HIDDEN is what Go's unicode.IsPrint refuses (other, separator: controls,
// format characters, line and paragraph separators, private use,
// unassigned, lone surrogates, spaces but U+0020) and INVISIBLE.
const HIDDEN = new RegExp(`[\\p{C}\\p{Z}${INVISIBLE}]`, 'gu');

function hex(n, width) { return n.toString(16).toUpperCase().padStart(width, '0'); }

function escapeChar(ch) {
  if (ch === ' ') return ch;
  const cp = ch.codePointAt(0);
  return cp > 0xffff ? `\\U${hex(cp, 8)}` : `\\u${hex(cp, 4)}`;
}

// escapeName returns s with every hidden character as `\uXXXX` (`\UXXXXXXXX`
// beyond U+FFFF), line feeds and tabs included: names are one line.
export function escapeName(s) {
  return String(s).replace(HIDDEN, escapeChar);
}

// escapeText is escapeName for a message: line feeds and tabs stay.
export function escapeText(s) {
  return String(s).replace(HIDDEN, (ch) => (ch === '\n' || ch === '\t' ? ch : escapeChar(ch)));
}

// Scripts mixed with Latin every day in East Asian names: no warning.
const EAST_ASIAN = new Set(['Latin', 'Han', 'Hiragana', 'Katakana', 'Hangul', 'Bopomofo']);
const COMMON = ['Latin', 'Cyrillic', 'Greek', 'Han', 'Hiragana', 'Katakana', 'Hangul', 'Arabic', 'Hebrew', 'Armenian'];
// Every script of Go's unicode.Scripts but Common and Inherited (Unicode
// 15.0), the usual ones first; one the browser does not know is skipped.
const ALL = [
  'Adlam', 'Ahom', 'Anatolian_Hieroglyphs', 'Arabic', 'Armenian', 'Avestan', 'Balinese', 'Bamum',
  'Bassa_Vah', 'Batak', 'Bengali', 'Bhaiksuki', 'Bopomofo', 'Brahmi', 'Braille', 'Buginese',
  'Buhid', 'Canadian_Aboriginal', 'Carian', 'Caucasian_Albanian', 'Chakma', 'Cham', 'Cherokee',
  'Chorasmian', 'Coptic', 'Cuneiform', 'Cypriot', 'Cypro_Minoan', 'Cyrillic', 'Deseret',
  'Devanagari', 'Dives_Akuru', 'Dogra', 'Duployan', 'Egyptian_Hieroglyphs', 'Elbasan', 'Elymaic',
  'Ethiopic', 'Georgian', 'Glagolitic', 'Gothic', 'Grantha', 'Greek', 'Gujarati', 'Gunjala_Gondi',
  'Gurmukhi', 'Han', 'Hangul', 'Hanifi_Rohingya', 'Hanunoo', 'Hatran', 'Hebrew', 'Hiragana',
  'Imperial_Aramaic', 'Inscriptional_Pahlavi', 'Inscriptional_Parthian', 'Javanese', 'Kaithi',
  'Kannada', 'Katakana', 'Kawi', 'Kayah_Li', 'Kharoshthi', 'Khitan_Small_Script', 'Khmer',
  'Khojki', 'Khudawadi', 'Lao', 'Latin', 'Lepcha', 'Limbu', 'Linear_A', 'Linear_B', 'Lisu',
  'Lycian', 'Lydian', 'Mahajani', 'Makasar', 'Malayalam', 'Mandaic', 'Manichaean', 'Marchen',
  'Masaram_Gondi', 'Medefaidrin', 'Meetei_Mayek', 'Mende_Kikakui', 'Meroitic_Cursive',
  'Meroitic_Hieroglyphs', 'Miao', 'Modi', 'Mongolian', 'Mro', 'Multani', 'Myanmar', 'Nabataean',
  'Nag_Mundari', 'Nandinagari', 'New_Tai_Lue', 'Newa', 'Nko', 'Nushu', 'Nyiakeng_Puachue_Hmong',
  'Ogham', 'Ol_Chiki', 'Old_Hungarian', 'Old_Italic', 'Old_North_Arabian', 'Old_Permic',
  'Old_Persian', 'Old_Sogdian', 'Old_South_Arabian', 'Old_Turkic', 'Old_Uyghur', 'Oriya', 'Osage',
  'Osmanya', 'Pahawh_Hmong', 'Palmyrene', 'Pau_Cin_Hau', 'Phags_Pa', 'Phoenician',
  'Psalter_Pahlavi', 'Rejang', 'Runic', 'Samaritan', 'Saurashtra', 'Sharada', 'Shavian', 'Siddham',
  'SignWriting', 'Sinhala', 'Sogdian', 'Sora_Sompeng', 'Soyombo', 'Sundanese', 'Syloti_Nagri',
  'Syriac', 'Tagalog', 'Tagbanwa', 'Tai_Le', 'Tai_Tham', 'Tai_Viet', 'Takri', 'Tamil', 'Tangsa',
  'Tangut', 'Telugu', 'Thaana', 'Thai', 'Tibetan', 'Tifinagh', 'Tirhuta', 'Toto', 'Ugaritic',
  'Vai', 'Vithkuqi', 'Wancho', 'Warang_Citi', 'Yezidi', 'Yi', 'Zanabazar_Square'
];
const SCRIPTS = [...COMMON, ...ALL.filter((n) => !COMMON.includes(n))].flatMap((name) => {
  try {
    return [[name, new RegExp(`^\\p{Script=${name}}$`, 'u')]];
  } catch {
    return [];
  }
});

function scriptOf(ch) {
  for (const [name, re] of SCRIPTS) if (re.test(ch)) return name;
  return '';
}

// mixedScripts returns, sorted, the scripts of the words of s that mix
// scripts ("pаypal" with a Cyrillic "а": ['Cyrillic', 'Latin']), [] when
// none does. A word is a run of letters, marks and decimal digits.
export function mixedScripts(s) {
  const found = new Set();
  let word = new Set();
  const flush = () => {
    if (word.size > 1 && [...word].some((sc) => !EAST_ASIAN.has(sc))) for (const sc of word) found.add(sc);
    word = new Set();
  };
  for (const ch of String(s)) {
    if (/\p{L}/u.test(ch)) {
      const sc = scriptOf(ch);
      if (sc) word.add(sc);
    } else if (!/[\p{M}\p{Nd}]/u.test(ch)) {
      flush();
    }
  }
  flush();
  return [...found].sort();
}

// showName is escapeName plus, for a name that mixes scripts, a warning in
// brackets, as the CLI prints it: "pаypal.txt [mixes Cyrillic and Latin letters]".
export function showName(s) {
  const sc = mixedScripts(s);
  if (!sc.length) return escapeName(s);
  return `${escapeName(s)} [mixes ${sc.slice(0, -1).join(', ')} and ${sc[sc.length - 1]} letters]`;
}
