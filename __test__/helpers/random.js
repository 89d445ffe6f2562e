'use strict';
// Seeded randomness for generative and fault tests: a failing run replays from its printed seed.

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The same stream as integers: `next(n)` is in [0, n). */
function randInt(seed) {
  const next = rng(seed);
  return (n) => (next() * n) | 0;
}

module.exports = { rng, randInt };
