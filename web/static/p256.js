// P-256 (NIST secp256r1) point arithmetic with BigInt, for the pairing PAKE
// (docs/PROTOCOL-pairing.md P.5): WebCrypto has ECDH and ECDSA but cannot
// add points or multiply an arbitrary point by a scalar.
//
// Affine coordinates and double-and-add: simple and a few milliseconds per
// multiplication, not constant time. The secrets multiplied here are the
// fresh one-run scalars of one PAKE run (and the code's hash, which a
// timing observer in the same browser could read anyway); a run takes one
// guess of the code, so there is nothing to accumulate across runs.

export const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
export const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;
export const G = {
  x: 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n,
  y: 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n,
};

const mod = (a, m = P) => {
  const r = a % m;
  return r < 0n ? r + m : r;
};

// inv is the inverse of a modulo m (extended Euclid); a ≠ 0 mod m.
function inv(a, m = P) {
  let [r0, r1] = [mod(a, m), m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  if (r0 !== 1n) throw new Error('p256: not invertible');
  return mod(s0, m);
}

// Points are {x, y}; null is the point at infinity.

export function onCurve(pt) {
  if (!pt || pt.x < 0n || pt.x >= P || pt.y < 0n || pt.y >= P) return false;
  return mod(pt.y * pt.y) === mod(pt.x * pt.x * pt.x - 3n * pt.x + B);
}

export function neg(pt) {
  return pt && { x: pt.x, y: mod(-pt.y) };
}

function double(pt) {
  if (!pt || pt.y === 0n) return null;
  const l = mod((3n * pt.x * pt.x - 3n) * inv(2n * pt.y));
  const x = mod(l * l - 2n * pt.x);
  return { x, y: mod(l * (pt.x - x) - pt.y) };
}

export function add(a, b) {
  if (!a) return b;
  if (!b) return a;
  if (a.x === b.x) return a.y === b.y ? double(a) : null;
  const l = mod((b.y - a.y) * inv(b.x - a.x));
  const x = mod(l * l - a.x - b.x);
  return { x, y: mod(l * (a.x - x) - a.y) };
}

// mul is k·pt, k taken modulo the group order n (as Go's ScalarMult).
export function mul(k, pt) {
  let e = mod(k, N);
  let acc = null;
  let cur = pt;
  while (e > 0n) {
    if (e & 1n) acc = add(acc, cur);
    cur = double(cur);
    e >>= 1n;
  }
  return acc;
}

export function bytesToBig(b) {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

// bigToBytes is v big-endian in len bytes, or (len 0) in as few as it
// takes: Go's big.Int.Bytes, empty for zero.
export function bigToBytes(v, len = 0) {
  const out = [];
  while (v > 0n) {
    out.unshift(Number(v & 0xffn));
    v >>= 8n;
  }
  while (out.length < len) out.unshift(0);
  return Uint8Array.from(out);
}

// encode is SEC 1 uncompressed: 0x04 ‖ x ‖ y, 65 bytes.
export function encode(pt) {
  if (!pt) throw new Error('p256: the point at infinity has no encoding');
  const out = new Uint8Array(65);
  out[0] = 4;
  out.set(bigToBytes(pt.x, 32), 1);
  out.set(bigToBytes(pt.y, 32), 33);
  return out;
}

// decode reads a SEC 1 uncompressed point and checks it is on the curve
// (the encoding cannot express the identity); null if it is not a point.
export function decode(b) {
  if (!(b instanceof Uint8Array) || b.length !== 65 || b[0] !== 4) return null;
  const pt = { x: bytesToBig(b.subarray(1, 33)), y: bytesToBig(b.subarray(33)) };
  return onCurve(pt) ? pt : null;
}

// randomScalar is uniform in [1, n−1] (rejection sampling).
export function randomScalar() {
  const b = new Uint8Array(32);
  for (;;) {
    crypto.getRandomValues(b);
    const k = bytesToBig(b);
    if (k >= 1n && k < N) return k;
  }
}
