// Preloaded (node -r) into the npm localsend CLI by the e2e tests.
//
// localsend@0.1.2's `send` computes its progress bar's speed as bytes over
// the milliseconds since the previous callback and formats it with
// pretty-bytes, which throws on NaN. A file over 50 MB is uploaded in chunks,
// and the first progress callback comes in the same millisecond as the bar's
// start: 0/0, the upload is abandoned ("Error uploading file: TypeError:
// Expected a finite number, got number: NaN"), every time. A clock that never
// returns the same millisecond twice keeps the divisor positive; nothing on
// the wire changes.
"use strict";

const realNow = Date.now;
let last = 0;
Date.now = function now() {
  const t = realNow();
  last = t > last ? t : last + 1;
  return last;
};
