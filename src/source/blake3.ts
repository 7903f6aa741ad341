/**
 * BLAKE3 (hash mode, 32-byte output) in plain TypeScript, because
 * source-controller can be told to write `blake3:` artifact digests
 * (`--artifact-digest-algo=blake3`) and node:crypto has no BLAKE3.
 *
 * Follows the reference implementation in the BLAKE3 specification
 * (https://github.com/BLAKE3-team/BLAKE3-specs), streaming, with
 * no keyed or derive-key modes and no extended output: we only verify digests.
 * Tested against the official test vectors (test/unit/source/blake3.test.ts).
 */

const OUT_LEN = 32;
const BLOCK_LEN = 64;
const CHUNK_LEN = 1024;

const CHUNK_START = 1 << 0;
const CHUNK_END = 1 << 1;
const PARENT = 1 << 2;
const ROOT = 1 << 3;

const IV = new Uint32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

/**
 * The BLAKE3 compression function. Writes the first 8 output words (the new
 * chaining value) into `out`; that is all hash mode with 32-byte output needs.
 * The seven rounds are unrolled with the message permutation
 * [2,6,3,10,7,0,4,13,1,11,12,5,9,14,15,8] already applied to the word
 * indices, and all state lives in int32 locals: it is the hot loop, and this
 * shape runs many times faster under V8 than array-indexed G calls.
 */
// prettier-ignore
function compress(
  cv: Uint32Array,
  block: Uint32Array,
  counter: number,
  blockLen: number,
  flags: number,
  out: Uint32Array,
): void {
  let s0 = cv[0]! | 0, s1 = cv[1]! | 0, s2 = cv[2]! | 0, s3 = cv[3]! | 0;
  let s4 = cv[4]! | 0, s5 = cv[5]! | 0, s6 = cv[6]! | 0, s7 = cv[7]! | 0;
  let s8 = IV[0]! | 0, s9 = IV[1]! | 0, s10 = IV[2]! | 0, s11 = IV[3]! | 0;
  let s12 = counter | 0, s13 = Math.floor(counter / 0x100000000) | 0, s14 = blockLen | 0, s15 = flags | 0;
  const m0 = block[0]! | 0;
  const m1 = block[1]! | 0;
  const m2 = block[2]! | 0;
  const m3 = block[3]! | 0;
  const m4 = block[4]! | 0;
  const m5 = block[5]! | 0;
  const m6 = block[6]! | 0;
  const m7 = block[7]! | 0;
  const m8 = block[8]! | 0;
  const m9 = block[9]! | 0;
  const m10 = block[10]! | 0;
  const m11 = block[11]! | 0;
  const m12 = block[12]! | 0;
  const m13 = block[13]! | 0;
  const m14 = block[14]! | 0;
  const m15 = block[15]! | 0;
  // round 1
  s0 = (s0 + s4 + m0) | 0; s12 ^= s0; s12 = (s12 >>> 16) | (s12 << 16); s8 = (s8 + s12) | 0; s4 ^= s8; s4 = (s4 >>> 12) | (s4 << 20);
  s0 = (s0 + s4 + m1) | 0; s12 ^= s0; s12 = (s12 >>> 8) | (s12 << 24); s8 = (s8 + s12) | 0; s4 ^= s8; s4 = (s4 >>> 7) | (s4 << 25);
  s1 = (s1 + s5 + m2) | 0; s13 ^= s1; s13 = (s13 >>> 16) | (s13 << 16); s9 = (s9 + s13) | 0; s5 ^= s9; s5 = (s5 >>> 12) | (s5 << 20);
  s1 = (s1 + s5 + m3) | 0; s13 ^= s1; s13 = (s13 >>> 8) | (s13 << 24); s9 = (s9 + s13) | 0; s5 ^= s9; s5 = (s5 >>> 7) | (s5 << 25);
  s2 = (s2 + s6 + m4) | 0; s14 ^= s2; s14 = (s14 >>> 16) | (s14 << 16); s10 = (s10 + s14) | 0; s6 ^= s10; s6 = (s6 >>> 12) | (s6 << 20);
  s2 = (s2 + s6 + m5) | 0; s14 ^= s2; s14 = (s14 >>> 8) | (s14 << 24); s10 = (s10 + s14) | 0; s6 ^= s10; s6 = (s6 >>> 7) | (s6 << 25);
  s3 = (s3 + s7 + m6) | 0; s15 ^= s3; s15 = (s15 >>> 16) | (s15 << 16); s11 = (s11 + s15) | 0; s7 ^= s11; s7 = (s7 >>> 12) | (s7 << 20);
  s3 = (s3 + s7 + m7) | 0; s15 ^= s3; s15 = (s15 >>> 8) | (s15 << 24); s11 = (s11 + s15) | 0; s7 ^= s11; s7 = (s7 >>> 7) | (s7 << 25);
  s0 = (s0 + s5 + m8) | 0; s15 ^= s0; s15 = (s15 >>> 16) | (s15 << 16); s10 = (s10 + s15) | 0; s5 ^= s10; s5 = (s5 >>> 12) | (s5 << 20);
  s0 = (s0 + s5 + m9) | 0; s15 ^= s0; s15 = (s15 >>> 8) | (s15 << 24); s10 = (s10 + s15) | 0; s5 ^= s10; s5 = (s5 >>> 7) | (s5 << 25);
  s1 = (s1 + s6 + m10) | 0; s12 ^= s1; s12 = (s12 >>> 16) | (s12 << 16); s11 = (s11 + s12) | 0; s6 ^= s11; s6 = (s6 >>> 12) | (s6 << 20);
  s1 = (s1 + s6 + m11) | 0; s12 ^= s1; s12 = (s12 >>> 8) | (s12 << 24); s11 = (s11 + s12) | 0; s6 ^= s11; s6 = (s6 >>> 7) | (s6 << 25);
  s2 = (s2 + s7 + m12) | 0; s13 ^= s2; s13 = (s13 >>> 16) | (s13 << 16); s8 = (s8 + s13) | 0; s7 ^= s8; s7 = (s7 >>> 12) | (s7 << 20);
  s2 = (s2 + s7 + m13) | 0; s13 ^= s2; s13 = (s13 >>> 8) | (s13 << 24); s8 = (s8 + s13) | 0; s7 ^= s8; s7 = (s7 >>> 7) | (s7 << 25);
  s3 = (s3 + s4 + m14) | 0; s14 ^= s3; s14 = (s14 >>> 16) | (s14 << 16); s9 = (s9 + s14) | 0; s4 ^= s9; s4 = (s4 >>> 12) | (s4 << 20);
  s3 = (s3 + s4 + m15) | 0; s14 ^= s3; s14 = (s14 >>> 8) | (s14 << 24); s9 = (s9 + s14) | 0; s4 ^= s9; s4 = (s4 >>> 7) | (s4 << 25);
  // round 2
  s0 = (s0 + s4 + m2) | 0; s12 ^= s0; s12 = (s12 >>> 16) | (s12 << 16); s8 = (s8 + s12) | 0; s4 ^= s8; s4 = (s4 >>> 12) | (s4 << 20);
  s0 = (s0 + s4 + m6) | 0; s12 ^= s0; s12 = (s12 >>> 8) | (s12 << 24); s8 = (s8 + s12) | 0; s4 ^= s8; s4 = (s4 >>> 7) | (s4 << 25);
  s1 = (s1 + s5 + m3) | 0; s13 ^= s1; s13 = (s13 >>> 16) | (s13 << 16); s9 = (s9 + s13) | 0; s5 ^= s9; s5 = (s5 >>> 12) | (s5 << 20);
  s1 = (s1 + s5 + m10) | 0; s13 ^= s1; s13 = (s13 >>> 8) | (s13 << 24); s9 = (s9 + s13) | 0; s5 ^= s9; s5 = (s5 >>> 7) | (s5 << 25);
  s2 = (s2 + s6 + m7) | 0; s14 ^= s2; s14 = (s14 >>> 16) | (s14 << 16); s10 = (s10 + s14) | 0; s6 ^= s10; s6 = (s6 >>> 12) | (s6 << 20);
  s2 = (s2 + s6 + m0) | 0; s14 ^= s2; s14 = (s14 >>> 8) | (s14 << 24); s10 = (s10 + s14) | 0; s6 ^= s10; s6 = (s6 >>> 7) | (s6 << 25);
  s3 = (s3 + s7 + m4) | 0; s15 ^= s3; s15 = (s15 >>> 16) | (s15 << 16); s11 = (s11 + s15) | 0; s7 ^= s11; s7 = (s7 >>> 12) | (s7 << 20);
  s3 = (s3 + s7 + m13) | 0; s15 ^= s3; s15 = (s15 >>> 8) | (s15 << 24); s11 = (s11 + s15) | 0; s7 ^= s11; s7 = (s7 >>> 7) | (s7 << 25);
  s0 = (s0 + s5 + m1) | 0; s15 ^= s0; s15 = (s15 >>> 16) | (s15 << 16); s10 = (s10 + s15) | 0; s5 ^= s10; s5 = (s5 >>> 12) | (s5 << 20);
  s0 = (s0 + s5 + m11) | 0; s15 ^= s0; s15 = (s15 >>> 8) | (s15 << 24); s10 = (s10 + s15) | 0; s5 ^= s10; s5 = (s5 >>> 7) | (s5 << 25);
  s1 = (s1 + s6 + m12) | 0; s12 ^= s1; s12 = (s12 >>> 16) | (s12 << 16); s11 = (s11 + s12) | 0; s6 ^= s11; s6 = (s6 >>> 12) | (s6 << 20);
  s1 = (s1 + s6 + m5) | 0; s12 ^= s1; s12 = (s12 >>> 8) | (s12 << 24); s11 = (s11 + s12) | 0; s6 ^= s11; s6 = (s6 >>> 7) | (s6 << 25);
  s2 = (s2 + s7 + m9) | 0; s13 ^= s2; s13 = (s13 >>> 16) | (s13 << 16); s8 = (s8 + s13) | 0; s7 ^= s8; s7 = (s7 >>> 12) | (s7 << 20);
  s2 = (s2 + s7 + m14) | 0; s13 ^= s2; s13 = (s13 >>> 8) | (s13 << 24); s8 = (s8 + s13) | 0; s7 ^= s8; s7 = (s7 >>> 7) | (s7 << 25);
  s3 = (s3 + s4 + m15) | 0; s14 ^= s3; s14 = (s14 >>> 16) | (s14 << 16); s9 = (s9 + s14) | 0; s4 ^= s9; s4 = (s4 >>> 12) | (s4 << 20);
  s3 = (s3 + s4 + m8) | 0; s14 ^= s3; s14 = (s14 >>> 8) | (s14 << 24); s9 = (s9 + s14) | 0; s4 ^= s9; s4 = (s4 >>> 7) | (s4 << 25);
  // round 3
  s0 = (s0 + s4 + m3) | 0; s12 ^= s0; s12 = (s12 >>> 16) | (s12 << 16); s8 = (s8 + s12) | 0; s4 ^= s8; s4 = (s4 >>> 12) | (s4 << 20);
  s0 = (s0 + s4 + m4) | 0; s12 ^= s0; s12 = (s12 >>> 8) | (s12 << 24); s8 = (s8 + s12) | 0; s4 ^= s8; s4 = (s4 >>> 7) | (s4 << 25);
  s1 = (s1 + s5 + m10) | 0; s13 ^= s1; s13 = (s13 >>> 16) | (s13 << 16); s9 = (s9 + s13) | 0; s5 ^= s9; s5 = (s5 >>> 12) | (s5 << 20);
  s1 = (s1 + s5 + m12) | 0; s13 ^= s1; s13 = (s13 >>> 8) | (s13 << 24); s9 = (s9 + s13) | 0; s5 ^= s9; s5 = (s5 >>> 7) | (s5 << 25);
  s2 = (s2 + s6 + m13) | 0; s14 ^= s2; s14 = (s14 >>> 16) | (s14 << 16); s10 = (s10 + s14) | 0; s6 ^= s10; s6 = (s6 >>> 12) | (s6 << 20);
  s2 = (s2 + s6 + m2) | 0; s14 ^= s2; s14 = (s14 >>> 8) | (s14 << 24); s10 = (s10 + s14) | 0; s6 ^= s10; s6 = (s6 >>> 7) | (s6 << 25);
  s3 = (s3 + s7 + m7) | 0; s15 ^= s3; s15 = (s15 >>> 16) | (s15 << 16); s11 = (s11 + s15) | 0; s7 ^= s11; s7 = (s7 >>> 12) | (s7 << 20);
  s3 = (s3 + s7 + m14) | 0; s15 ^= s3; s15 = (s15 >>> 8) | (s15 << 24); s11 = (s11 + s15) | 0; s7 ^= s11; s7 = (s7 >>> 7) | (s7 << 25);
  s0 = (s0 + s5 + m6) | 0; s15 ^= s0; s15 = (s15 >>> 16) | (s15 << 16); s10 = (s10 + s15) | 0; s5 ^= s10; s5 = (s5 >>> 12) | (s5 << 20);
  s0 = (s0 + s5 + m5) | 0; s15 ^= s0; s15 = (s15 >>> 8) | (s15 << 24); s10 = (s10 + s15) | 0; s5 ^= s10; s5 = (s5 >>> 7) | (s5 << 25);
  s1 = (s1 + s6 + m9) | 0; s12 ^= s1; s12 = (s12 >>> 16) | (s12 << 16); s11 = (s11 + s12) | 0; s6 ^= s11; s6 = (s6 >>> 12) | (s6 << 20);
  s1 = (s1 + s6 + m0) | 0; s12 ^= s1; s12 = (s12 >>> 8) | (s12 << 24); s11 = (s11 + s12) | 0; s6 ^= s11; s6 = (s6 >>> 7) | (s6 << 25);
  s2 = (s2 + s7 + m11) | 0; s13 ^= s2; s13 = (s13 >>> 16) | (s13 << 16); s8 = (s8 + s13) | 0; s7 ^= s8; s7 = (s7 >>> 12) | (s7 << 20);
  s2 = (s2 + s7 + m15) | 0; s13 ^= s2; s13 = (s13 >>> 8) | (s13 << 24); s8 = (s8 + s13) | 0; s7 ^= s8; s7 = (s7 >>> 7) | (s7 << 25);
  s3 = (s3 + s4 + m8) | 0; s14 ^= s3; s14 = (s14 >>> 16) | (s14 << 16); s9 = (s9 + s14) | 0; s4 ^= s9; s4 = (s4 >>> 12) | (s4 << 20);
  s3 = (s3 + s4 + m1) | 0; s14 ^= s3; s14 = (s14 >>> 8) | (s14 << 24); s9 = (s9 + s14) | 0; s4 ^= s9; s4 = (s4 >>> 7) | (s4 << 25);
  // round 4
  s0 = (s0 + s4 + m10) | 0; s12 ^= s0; s12 = (s12 >>> 16) | (s12 << 16); s8 = (s8 + s12) | 0; s4 ^= s8; s4 = (s4 >>> 12) | (s4 << 20);
  s0 = (s0 + s4 + m7) | 0; s12 ^= s0; s12 = (s12 >>> 8) | (s12 << 24); s8 = (s8 + s12) | 0; s4 ^= s8; s4 = (s4 >>> 7) | (s4 << 25);
  s1 = (s1 + s5 + m12) | 0; s13 ^= s1; s13 = (s13 >>> 16) | (s13 << 16); s9 = (s9 + s13) | 0; s5 ^= s9; s5 = (s5 >>> 12) | (s5 << 20);
  s1 = (s1 + s5 + m9) | 0; s13 ^= s1; s13 = (s13 >>> 8) | (s13 << 24); s9 = (s9 + s13) | 0; s5 ^= s9; s5 = (s5 >>> 7) | (s5 << 25);
  s2 = (s2 + s6 + m14) | 0; s14 ^= s2; s14 = (s14 >>> 16) | (s14 << 16); s10 = (s10 + s14) | 0; s6 ^= s10; s6 = (s6 >>> 12) | (s6 << 20);
  s2 = (s2 + s6 + m3) | 0; s14 ^= s2; s14 = (s14 >>> 8) | (s14 << 24); s10 = (s10 + s14) | 0; s6 ^= s10; s6 = (s6 >>> 7) | (s6 << 25);
  s3 = (s3 + s7 + m13) | 0; s15 ^= s3; s15 = (s15 >>> 16) | (s15 << 16); s11 = (s11 + s15) | 0; s7 ^= s11; s7 = (s7 >>> 12) | (s7 << 20);
  s3 = (s3 + s7 + m15) | 0; s15 ^= s3; s15 = (s15 >>> 8) | (s15 << 24); s11 = (s11 + s15) | 0; s7 ^= s11; s7 = (s7 >>> 7) | (s7 << 25);
  s0 = (s0 + s5 + m4) | 0; s15 ^= s0; s15 = (s15 >>> 16) | (s15 << 16); s10 = (s10 + s15) | 0; s5 ^= s10; s5 = (s5 >>> 12) | (s5 << 20);
  s0 = (s0 + s5 + m0) | 0; s15 ^= s0; s15 = (s15 >>> 8) | (s15 << 24); s10 = (s10 + s15) | 0; s5 ^= s10; s5 = (s5 >>> 7) | (s5 << 25);
  s1 = (s1 + s6 + m11) | 0; s12 ^= s1; s12 = (s12 >>> 16) | (s12 << 16); s11 = (s11 + s12) | 0; s6 ^= s11; s6 = (s6 >>> 12) | (s6 << 20);
  s1 = (s1 + s6 + m2) | 0; s12 ^= s1; s12 = (s12 >>> 8) | (s12 << 24); s11 = (s11 + s12) | 0; s6 ^= s11; s6 = (s6 >>> 7) | (s6 << 25);
  s2 = (s2 + s7 + m5) | 0; s13 ^= s2; s13 = (s13 >>> 16) | (s13 << 16); s8 = (s8 + s13) | 0; s7 ^= s8; s7 = (s7 >>> 12) | (s7 << 20);
  s2 = (s2 + s7 + m8) | 0; s13 ^= s2; s13 = (s13 >>> 8) | (s13 << 24); s8 = (s8 + s13) | 0; s7 ^= s8; s7 = (s7 >>> 7) | (s7 << 25);
  s3 = (s3 + s4 + m1) | 0; s14 ^= s3; s14 = (s14 >>> 16) | (s14 << 16); s9 = (s9 + s14) | 0; s4 ^= s9; s4 = (s4 >>> 12) | (s4 << 20);
  s3 = (s3 + s4 + m6) | 0; s14 ^= s3; s14 = (s14 >>> 8) | (s14 << 24); s9 = (s9 + s14) | 0; s4 ^= s9; s4 = (s4 >>> 7) | (s4 << 25);
  // round 5
  s0 = (s0 + s4 + m12) | 0; s12 ^= s0; s12 = (s12 >>> 16) | (s12 << 16); s8 = (s8 + s12) | 0; s4 ^= s8; s4 = (s4 >>> 12) | (s4 << 20);
  s0 = (s0 + s4 + m13) | 0; s12 ^= s0; s12 = (s12 >>> 8) | (s12 << 24); s8 = (s8 + s12) | 0; s4 ^= s8; s4 = (s4 >>> 7) | (s4 << 25);
  s1 = (s1 + s5 + m9) | 0; s13 ^= s1; s13 = (s13 >>> 16) | (s13 << 16); s9 = (s9 + s13) | 0; s5 ^= s9; s5 = (s5 >>> 12) | (s5 << 20);
  s1 = (s1 + s5 + m11) | 0; s13 ^= s1; s13 = (s13 >>> 8) | (s13 << 24); s9 = (s9 + s13) | 0; s5 ^= s9; s5 = (s5 >>> 7) | (s5 << 25);
  s2 = (s2 + s6 + m15) | 0; s14 ^= s2; s14 = (s14 >>> 16) | (s14 << 16); s10 = (s10 + s14) | 0; s6 ^= s10; s6 = (s6 >>> 12) | (s6 << 20);
  s2 = (s2 + s6 + m10) | 0; s14 ^= s2; s14 = (s14 >>> 8) | (s14 << 24); s10 = (s10 + s14) | 0; s6 ^= s10; s6 = (s6 >>> 7) | (s6 << 25);
  s3 = (s3 + s7 + m14) | 0; s15 ^= s3; s15 = (s15 >>> 16) | (s15 << 16); s11 = (s11 + s15) | 0; s7 ^= s11; s7 = (s7 >>> 12) | (s7 << 20);
  s3 = (s3 + s7 + m8) | 0; s15 ^= s3; s15 = (s15 >>> 8) | (s15 << 24); s11 = (s11 + s15) | 0; s7 ^= s11; s7 = (s7 >>> 7) | (s7 << 25);
  s0 = (s0 + s5 + m7) | 0; s15 ^= s0; s15 = (s15 >>> 16) | (s15 << 16); s10 = (s10 + s15) | 0; s5 ^= s10; s5 = (s5 >>> 12) | (s5 << 20);
  s0 = (s0 + s5 + m2) | 0; s15 ^= s0; s15 = (s15 >>> 8) | (s15 << 24); s10 = (s10 + s15) | 0; s5 ^= s10; s5 = (s5 >>> 7) | (s5 << 25);
  s1 = (s1 + s6 + m5) | 0; s12 ^= s1; s12 = (s12 >>> 16) | (s12 << 16); s11 = (s11 + s12) | 0; s6 ^= s11; s6 = (s6 >>> 12) | (s6 << 20);
  s1 = (s1 + s6 + m3) | 0; s12 ^= s1; s12 = (s12 >>> 8) | (s12 << 24); s11 = (s11 + s12) | 0; s6 ^= s11; s6 = (s6 >>> 7) | (s6 << 25);
  s2 = (s2 + s7 + m0) | 0; s13 ^= s2; s13 = (s13 >>> 16) | (s13 << 16); s8 = (s8 + s13) | 0; s7 ^= s8; s7 = (s7 >>> 12) | (s7 << 20);
  s2 = (s2 + s7 + m1) | 0; s13 ^= s2; s13 = (s13 >>> 8) | (s13 << 24); s8 = (s8 + s13) | 0; s7 ^= s8; s7 = (s7 >>> 7) | (s7 << 25);
  s3 = (s3 + s4 + m6) | 0; s14 ^= s3; s14 = (s14 >>> 16) | (s14 << 16); s9 = (s9 + s14) | 0; s4 ^= s9; s4 = (s4 >>> 12) | (s4 << 20);
  s3 = (s3 + s4 + m4) | 0; s14 ^= s3; s14 = (s14 >>> 8) | (s14 << 24); s9 = (s9 + s14) | 0; s4 ^= s9; s4 = (s4 >>> 7) | (s4 << 25);
  // round 6
  s0 = (s0 + s4 + m9) | 0; s12 ^= s0; s12 = (s12 >>> 16) | (s12 << 16); s8 = (s8 + s12) | 0; s4 ^= s8; s4 = (s4 >>> 12) | (s4 << 20);
  s0 = (s0 + s4 + m14) | 0; s12 ^= s0; s12 = (s12 >>> 8) | (s12 << 24); s8 = (s8 + s12) | 0; s4 ^= s8; s4 = (s4 >>> 7) | (s4 << 25);
  s1 = (s1 + s5 + m11) | 0; s13 ^= s1; s13 = (s13 >>> 16) | (s13 << 16); s9 = (s9 + s13) | 0; s5 ^= s9; s5 = (s5 >>> 12) | (s5 << 20);
  s1 = (s1 + s5 + m5) | 0; s13 ^= s1; s13 = (s13 >>> 8) | (s13 << 24); s9 = (s9 + s13) | 0; s5 ^= s9; s5 = (s5 >>> 7) | (s5 << 25);
  s2 = (s2 + s6 + m8) | 0; s14 ^= s2; s14 = (s14 >>> 16) | (s14 << 16); s10 = (s10 + s14) | 0; s6 ^= s10; s6 = (s6 >>> 12) | (s6 << 20);
  s2 = (s2 + s6 + m12) | 0; s14 ^= s2; s14 = (s14 >>> 8) | (s14 << 24); s10 = (s10 + s14) | 0; s6 ^= s10; s6 = (s6 >>> 7) | (s6 << 25);
  s3 = (s3 + s7 + m15) | 0; s15 ^= s3; s15 = (s15 >>> 16) | (s15 << 16); s11 = (s11 + s15) | 0; s7 ^= s11; s7 = (s7 >>> 12) | (s7 << 20);
  s3 = (s3 + s7 + m1) | 0; s15 ^= s3; s15 = (s15 >>> 8) | (s15 << 24); s11 = (s11 + s15) | 0; s7 ^= s11; s7 = (s7 >>> 7) | (s7 << 25);
  s0 = (s0 + s5 + m13) | 0; s15 ^= s0; s15 = (s15 >>> 16) | (s15 << 16); s10 = (s10 + s15) | 0; s5 ^= s10; s5 = (s5 >>> 12) | (s5 << 20);
  s0 = (s0 + s5 + m3) | 0; s15 ^= s0; s15 = (s15 >>> 8) | (s15 << 24); s10 = (s10 + s15) | 0; s5 ^= s10; s5 = (s5 >>> 7) | (s5 << 25);
  s1 = (s1 + s6 + m0) | 0; s12 ^= s1; s12 = (s12 >>> 16) | (s12 << 16); s11 = (s11 + s12) | 0; s6 ^= s11; s6 = (s6 >>> 12) | (s6 << 20);
  s1 = (s1 + s6 + m10) | 0; s12 ^= s1; s12 = (s12 >>> 8) | (s12 << 24); s11 = (s11 + s12) | 0; s6 ^= s11; s6 = (s6 >>> 7) | (s6 << 25);
  s2 = (s2 + s7 + m2) | 0; s13 ^= s2; s13 = (s13 >>> 16) | (s13 << 16); s8 = (s8 + s13) | 0; s7 ^= s8; s7 = (s7 >>> 12) | (s7 << 20);
  s2 = (s2 + s7 + m6) | 0; s13 ^= s2; s13 = (s13 >>> 8) | (s13 << 24); s8 = (s8 + s13) | 0; s7 ^= s8; s7 = (s7 >>> 7) | (s7 << 25);
  s3 = (s3 + s4 + m4) | 0; s14 ^= s3; s14 = (s14 >>> 16) | (s14 << 16); s9 = (s9 + s14) | 0; s4 ^= s9; s4 = (s4 >>> 12) | (s4 << 20);
  s3 = (s3 + s4 + m7) | 0; s14 ^= s3; s14 = (s14 >>> 8) | (s14 << 24); s9 = (s9 + s14) | 0; s4 ^= s9; s4 = (s4 >>> 7) | (s4 << 25);
  // round 7
  s0 = (s0 + s4 + m11) | 0; s12 ^= s0; s12 = (s12 >>> 16) | (s12 << 16); s8 = (s8 + s12) | 0; s4 ^= s8; s4 = (s4 >>> 12) | (s4 << 20);
  s0 = (s0 + s4 + m15) | 0; s12 ^= s0; s12 = (s12 >>> 8) | (s12 << 24); s8 = (s8 + s12) | 0; s4 ^= s8; s4 = (s4 >>> 7) | (s4 << 25);
  s1 = (s1 + s5 + m5) | 0; s13 ^= s1; s13 = (s13 >>> 16) | (s13 << 16); s9 = (s9 + s13) | 0; s5 ^= s9; s5 = (s5 >>> 12) | (s5 << 20);
  s1 = (s1 + s5 + m0) | 0; s13 ^= s1; s13 = (s13 >>> 8) | (s13 << 24); s9 = (s9 + s13) | 0; s5 ^= s9; s5 = (s5 >>> 7) | (s5 << 25);
  s2 = (s2 + s6 + m1) | 0; s14 ^= s2; s14 = (s14 >>> 16) | (s14 << 16); s10 = (s10 + s14) | 0; s6 ^= s10; s6 = (s6 >>> 12) | (s6 << 20);
  s2 = (s2 + s6 + m9) | 0; s14 ^= s2; s14 = (s14 >>> 8) | (s14 << 24); s10 = (s10 + s14) | 0; s6 ^= s10; s6 = (s6 >>> 7) | (s6 << 25);
  s3 = (s3 + s7 + m8) | 0; s15 ^= s3; s15 = (s15 >>> 16) | (s15 << 16); s11 = (s11 + s15) | 0; s7 ^= s11; s7 = (s7 >>> 12) | (s7 << 20);
  s3 = (s3 + s7 + m6) | 0; s15 ^= s3; s15 = (s15 >>> 8) | (s15 << 24); s11 = (s11 + s15) | 0; s7 ^= s11; s7 = (s7 >>> 7) | (s7 << 25);
  s0 = (s0 + s5 + m14) | 0; s15 ^= s0; s15 = (s15 >>> 16) | (s15 << 16); s10 = (s10 + s15) | 0; s5 ^= s10; s5 = (s5 >>> 12) | (s5 << 20);
  s0 = (s0 + s5 + m10) | 0; s15 ^= s0; s15 = (s15 >>> 8) | (s15 << 24); s10 = (s10 + s15) | 0; s5 ^= s10; s5 = (s5 >>> 7) | (s5 << 25);
  s1 = (s1 + s6 + m2) | 0; s12 ^= s1; s12 = (s12 >>> 16) | (s12 << 16); s11 = (s11 + s12) | 0; s6 ^= s11; s6 = (s6 >>> 12) | (s6 << 20);
  s1 = (s1 + s6 + m12) | 0; s12 ^= s1; s12 = (s12 >>> 8) | (s12 << 24); s11 = (s11 + s12) | 0; s6 ^= s11; s6 = (s6 >>> 7) | (s6 << 25);
  s2 = (s2 + s7 + m3) | 0; s13 ^= s2; s13 = (s13 >>> 16) | (s13 << 16); s8 = (s8 + s13) | 0; s7 ^= s8; s7 = (s7 >>> 12) | (s7 << 20);
  s2 = (s2 + s7 + m4) | 0; s13 ^= s2; s13 = (s13 >>> 8) | (s13 << 24); s8 = (s8 + s13) | 0; s7 ^= s8; s7 = (s7 >>> 7) | (s7 << 25);
  s3 = (s3 + s4 + m7) | 0; s14 ^= s3; s14 = (s14 >>> 16) | (s14 << 16); s9 = (s9 + s14) | 0; s4 ^= s9; s4 = (s4 >>> 12) | (s4 << 20);
  s3 = (s3 + s4 + m13) | 0; s14 ^= s3; s14 = (s14 >>> 8) | (s14 << 24); s9 = (s9 + s14) | 0; s4 ^= s9; s4 = (s4 >>> 7) | (s4 << 25);
  out[0] = s0 ^ s8;
  out[1] = s1 ^ s9;
  out[2] = s2 ^ s10;
  out[3] = s3 ^ s11;
  out[4] = s4 ^ s12;
  out[5] = s5 ^ s13;
  out[6] = s6 ^ s14;
  out[7] = s7 ^ s15;
}

/** The 16 little-endian words of the 64 bytes at `offset`. */
function wordsFromInput(bytes: Uint8Array, offset: number, words: Uint32Array): void {
  for (let w = 0, o = offset; w < 16; w++, o += 4) {
    words[w] = bytes[o]! | (bytes[o + 1]! << 8) | (bytes[o + 2]! << 16) | (bytes[o + 3]! << 24);
  }
}

/** The words of the (possibly partial) buffered block, zero-padded past `length`. */
function wordsFromBytes(block: Uint8Array, length: number, words: Uint32Array): void {
  if (length < BLOCK_LEN) block.fill(0, length);
  wordsFromInput(block, 0, words);
}

/** A streaming BLAKE3 hasher: `update()` any number of times, then `digest()` once. */
export class Blake3 {
  private readonly cvStack: Uint32Array[] = [];
  private readonly chunkCv = new Uint32Array(8);
  private readonly block = new Uint8Array(BLOCK_LEN);
  private readonly blockWords = new Uint32Array(16);
  private blockLen = 0;
  private blocksCompressed = 0;
  private chunkCounter = 0;
  private finished = false;

  constructor() {
    this.chunkCv.set(IV);
  }

  update(input: Uint8Array): this {
    if (this.finished) throw new Error("BLAKE3: update() after digest()");
    let offset = 0;
    while (offset < input.length) {
      // A full chunk is only closed once more input arrives: the last chunk
      // must stay open so digest() can mark it ROOT when it is the only one.
      if (this.chunkLength() === CHUNK_LEN) this.closeChunk();
      // Likewise a full block is only compressed when more input follows.
      if (this.blockLen === BLOCK_LEN) {
        wordsFromBytes(this.block, BLOCK_LEN, this.blockWords);
        const flags = this.blocksCompressed === 0 ? CHUNK_START : 0;
        compress(this.chunkCv, this.blockWords, this.chunkCounter, BLOCK_LEN, flags, this.chunkCv);
        this.blocksCompressed++;
        this.blockLen = 0;
      }
      // Fast path: a full block straight from the input, when it is neither
      // the chunk's last block nor the last bytes seen so far.
      if (
        this.blockLen === 0 &&
        input.length - offset > BLOCK_LEN &&
        this.chunkLength() + BLOCK_LEN < CHUNK_LEN
      ) {
        wordsFromInput(input, offset, this.blockWords);
        const flags = this.blocksCompressed === 0 ? CHUNK_START : 0;
        compress(this.chunkCv, this.blockWords, this.chunkCounter, BLOCK_LEN, flags, this.chunkCv);
        this.blocksCompressed++;
        offset += BLOCK_LEN;
        continue;
      }
      const take = Math.min(BLOCK_LEN - this.blockLen, CHUNK_LEN - this.chunkLength(), input.length - offset);
      this.block.set(input.subarray(offset, offset + take), this.blockLen);
      this.blockLen += take;
      offset += take;
    }
    return this;
  }

  /** The 32-byte hash of everything passed to update(). */
  digest(): Buffer {
    if (this.finished) throw new Error("BLAKE3: digest() called twice");
    this.finished = true;
    // The output node is the open chunk's last block, or a parent above it;
    // only the very last compression gets the ROOT flag.
    let cv: Uint32Array = new Uint32Array(this.chunkCv);
    let block = new Uint32Array(16);
    wordsFromBytes(this.block, this.blockLen, block);
    let counter = this.chunkCounter;
    let blockLen = this.blockLen;
    let flags = CHUNK_END | (this.blocksCompressed === 0 ? CHUNK_START : 0);
    for (let i = this.cvStack.length - 1; i >= 0; i--) {
      const childCv = new Uint32Array(8);
      compress(cv, block, counter, blockLen, flags, childCv);
      block = new Uint32Array(16);
      block.set(this.cvStack[i]!, 0);
      block.set(childCv, 8);
      cv = new Uint32Array(IV);
      counter = 0;
      blockLen = BLOCK_LEN;
      flags = PARENT;
    }
    const out = new Uint32Array(8);
    compress(cv, block, counter, blockLen, flags | ROOT, out);
    const bytes = Buffer.alloc(OUT_LEN);
    for (let i = 0; i < 8; i++) bytes.writeUInt32LE(out[i]!, i * 4);
    return bytes;
  }

  private chunkLength(): number {
    return this.blocksCompressed * BLOCK_LEN + this.blockLen;
  }

  private closeChunk(): void {
    wordsFromBytes(this.block, this.blockLen, this.blockWords);
    const flags = CHUNK_END | (this.blocksCompressed === 0 ? CHUNK_START : 0);
    let cv = new Uint32Array(8);
    compress(this.chunkCv, this.blockWords, this.chunkCounter, this.blockLen, flags, cv);
    // Merge completed subtrees: after chunk n (1-based), pop one stack entry
    // per trailing zero bit of n.
    let total = this.chunkCounter + 1;
    while ((total & 1) === 0) {
      const left = this.cvStack.pop()!;
      const parentBlock = new Uint32Array(16);
      parentBlock.set(left, 0);
      parentBlock.set(cv, 8);
      const parentCv = new Uint32Array(8);
      compress(IV, parentBlock, 0, BLOCK_LEN, PARENT, parentCv);
      cv = parentCv;
      total = Math.floor(total / 2);
    }
    this.cvStack.push(cv);
    this.chunkCounter++;
    this.chunkCv.set(IV);
    this.blocksCompressed = 0;
    this.blockLen = 0;
  }
}

/** BLAKE3 of `data`, 32 bytes. */
export function blake3(data: Uint8Array): Buffer {
  return new Blake3().update(data).digest();
}
