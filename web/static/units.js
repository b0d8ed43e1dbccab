// Sizes for people, as the Go side writes them (internal/units.Bytes): SI
// units as file managers use, "980 B", "1.5 kB", "12.3 MB", "456 MB". The
// e2e web test holds this to the Go function on the same sizes.

const UNITS = ['kB', 'MB', 'GB', 'TB', 'PB', 'EB'];

export function humanBytes(n) {
  if (!(n >= 1000)) {
    return `${n > 0 ? Math.floor(n) : 0} B`;
  }
  let v = n / 1000;
  let i = 0;
  // What rounds to 1000 is the next unit's "1.0".
  while (Math.round(v) >= 1000 && i < UNITS.length - 1) {
    v /= 1000;
    i++;
  }
  // Math.round rounds half up, as Go's math.Round does for sizes.
  const t = Math.round(v * 10);
  if (t < 1000) {
    return `${(t / 10).toFixed(1)} ${UNITS[i]}`;
  }
  return `${Math.round(v)} ${UNITS[i]}`;
}
