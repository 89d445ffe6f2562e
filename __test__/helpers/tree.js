'use strict';
// Tree-cache checks shared by the znode suite and the ensemble fault suite: what the server
// holds under a path, what a cache holds, "they become equal", and random writers.

/** What the server holds under `top`: path -> data (UTF-8), read by client `c`. */
async function serverTree(c, top) {
  const out = {};
  const walk = async (p) => {
    try {
      const [{ data }, { children }] = await Promise.all([c.znodes.getData(p), c.znodes.getChildren(p)]);
      out[p] = data.toString();
      await Promise.all(children.map((k) => walk(`${p}/${k}`)));
    } catch (err) {
      if (err.code !== 'NONODE') throw err;
    }
  };
  await walk(top);
  return out;
}

/** What a TreeCache holds: path -> data (UTF-8). */
const cacheTree = (cache) => Object.fromEntries(cache.paths().map((p) => [p, cache.get(p).data.toString()]));

/**
 * Waits until `cache` holds what the server holds under `top` (read by `c`), polling for up to
 * `timeoutMs`; otherwise fails the test showing both.
 */
async function converges(cache, c, top, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  let want;
  let got;
  while (Date.now() < deadline) {
    want = await serverTree(c, top);
    got = cacheTree(cache);
    if (JSON.stringify(Object.entries(want).sort()) === JSON.stringify(Object.entries(got).sort())) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect({ what, cache: got }).toEqual({ what, cache: want });
}

/**
 * Random creates, sets and deletes under `top` by `c` for `ms` (seeded). Codes in `tolerate`
 * (besides NONODE / NODEEXISTS / NOTEMPTY, which the races make) are ignored too: a writer
 * during a failover tolerates CONNECTIONLOSS and TIMEOUT. Resolves the number of writes made.
 */
async function write(c, top, ms, seed, tolerate = []) {
  let x = seed;
  const rnd = (n) => { x = (x * 1103515245 + 12345) % 2147483648; return x % n; };
  const end = Date.now() + ms;
  let writes = 0;
  while (Date.now() < end) {
    const p = `${top}/n${rnd(4)}${rnd(2) ? `/m${rnd(3)}` : ''}`;
    const op = rnd(3);
    await (op === 0 ? c.znodes.create(p, `c${rnd(100)}`) : op === 1 ? c.znodes.setData(p, `s${rnd(100)}`) : c.znodes.delete(p)).then(() => { writes += 1; }, (e) => {
      if (!['NONODE', 'NODEEXISTS', 'NOTEMPTY', ...tolerate].includes(e.code)) throw e;
    });
  }
  return writes;
}

module.exports = { serverTree, cacheTree, converges, write };
