'use strict';
// Values are JSON: what JSON.stringify would silently turn into something else ({} for a Map, a
// Set, a typed array, a forgotten promise) is refused with INVALID_ARGUMENT, at any depth, by
// every call that stores a value; nothing is written. What JSON encodes by a rule of its own
// (Date → ISO string, toJSON, boxed primitives) is stored as JSON.stringify would.
const { client, unique, rejection } = require('./helpers/zk');


class Money {
  constructor(cents) { this.cents = cents; }
  toJSON() { return `${this.cents / 100} EUR`; }
}

const mangled = {
  Map: () => new Map([['a', 1]]),
  Set: () => new Set([1]),
  WeakMap: () => new WeakMap(),
  WeakSet: () => new WeakSet(),
  Uint8Array: () => new Uint8Array([1, 2]),
  Float64Array: () => new Float64Array(2),
  ArrayBuffer: () => new ArrayBuffer(8),
  DataView: () => new DataView(new ArrayBuffer(8)),
  Promise: () => Promise.resolve(1),
  'a Map deep inside': () => ({ a: [{ b: { c: new Map() } }] }),
  'a Set returned by toJSON': () => ({ x: { toJSON: () => new Set([1]) } }),
};

describe('values JSON would mangle', () => {
  let zk;
  beforeAll(() => { zk = client(); });
  afterAll(() => zk.close());

  const stores = {
    'zk.set': (key, v) => zk.set(key, v),
    'zk.executeTransaction(value)': (key, v) => zk.executeTransaction(key, v),
    'zk.executeTransaction(updater)': (key, v) => zk.executeTransaction(key, () => v),
    'tx.set': (key, v) => zk.transaction(async (tx) => { tx.set(key, v); }),
    'tx.create': (key, v) => zk.transaction(async (tx) => { tx.create(key, v); }),
  };

  for (const [call, store] of Object.entries(stores)) {
    it(`${call} refuses Map, Set, WeakMap, typed arrays, ArrayBuffer, DataView, Promise at any depth, writing nothing`, async () => {
      for (const [kind, make] of Object.entries(mangled)) {
        if (call.includes('updater') && kind === 'Promise') continue; // an updater may be async: its promise is awaited
        const key = unique('mangled');
        const err = await rejection(store(key, make()));
        expect([kind, err.code]).toEqual([kind, 'INVALID_ARGUMENT']);
        expect([kind, err.message]).toEqual([kind, expect.stringMatching(/JSON/)]);
        expect([kind, await zk.get(key)]).toEqual([kind, undefined]);
      }
    });
  }

  it('stores a Date as its ISO string, a toJSON result, boxed primitives and a Buffer as JSON.stringify does', async () => {
    const date = new Date('2026-12-01T08:00:00Z');
    const value = { date, price: new Money(1250), n: Object(3), s: Object('x'), b: Object(true), buf: Buffer.from('hi'), list: [1, null] };
    const key = unique('json');
    await zk.set(key, value);
    expect(await zk.get(key)).toEqual(JSON.parse(JSON.stringify(value)));
    expect((await zk.get(key)).date).toBe('2026-12-01T08:00:00.000Z');
  });

  it('refuses a cycle, and a shared (acyclic) object is fine', async () => {
    const cyclic = { a: {} };
    cyclic.a.back = cyclic;
    expect((await rejection(zk.set(unique('k'), cyclic))).code).toBe('INVALID_ARGUMENT');
    const shared = { x: 1 };
    const key = unique('shared');
    await zk.set(key, { a: shared, b: [shared, shared] });
    expect(await zk.get(key)).toEqual({ a: { x: 1 }, b: [{ x: 1 }, { x: 1 }] });
  });
});
