'use strict';
// The fencing checker must catch what it claims to catch, or a green randomized run means nothing.
const { checkFencedHistory } = require('../helpers/checker');

const w = (key, value, sentAt, status = 'ok', extra = {}) => ({ key, value, sentAt, ackAt: sentAt + 1, status, ...extra });

/** Two holders one after the other, each writing its own key and the shared one. */
function cleanHistory() {
  const holds = [
    { holder: 'a', token: 10, enter: 100, writes: [w('order', 'a1', 101, 'ok', { version: 0 }), w('log-a', 'a', 103)] },
    { holder: 'b', token: 20, enter: 110, writes: [w('order', 'b1', 111, 'ok', { version: 1 }), w('log-b', 'b', 113)] },
    // c believed it held (frozen, then resumed) but was fenced off: refused writes, no evidence.
    { holder: 'c', token: 5, enter: 90, writes: [w('order', 'c1', 130, 'refused', { code: 'SESSIONEXPIRED' }), w('log-c', 'c', 131, 'refused', { code: 'LOCK_LOST' })] },
    // d's write's fate is unknown (connection lost): either way is fine.
    { holder: 'd', token: 30, enter: 140, writes: [w('log-d', 'd', 141, 'unknown')] },
  ];
  const store = new Map([['order', 'b1'], ['log-a', 'a'], ['log-b', 'b']]);
  return { holds, store, orderKey: 'order', storeKeys: ['order', 'log-a', 'log-b'] };
}

describe('checker: fenced lock histories', () => {
  it('accepts a correct history, excluding holders whose writes were all refused or unknown', () => {
    const { violations, stats } = checkFencedHistory(cleanHistory());
    expect(violations).toEqual([]);
    expect(stats).toMatchObject({ holds: 4, ackedHolds: 2, writes: 7, ok: 4, refused: 2, unknown: 1, unknownApplied: 0 });
  });

  it('counts an unknown-outcome write found in the store as holding: an overlap cannot hide behind a lost answer', () => {
    const h = cleanHistory();
    h.holds[3].enter = 112; // d entered while b held (b's last write was sent at 113)...
    expect(checkFencedHistory(h).violations).toEqual([]); // ...harmless while d's write is not stored
    h.store.set('log-d', 'd'); // but it was applied
    h.storeKeys.push('log-d');
    const { violations, stats } = checkFencedHistory(h);
    expect(stats.unknownApplied).toBe(1);
    expect(violations).toEqual([expect.stringMatching(/^exclusion: d \(token 30\) held from 112.0 while b \(token 20\) held until 113.0/)]);
  });

  it('catches two acknowledged holders whose holding intervals overlap', () => {
    const h = cleanHistory();
    h.holds[1].enter = 102; // b entered before a's last acknowledged write was sent (103)
    const { violations } = checkFencedHistory(h);
    expect(violations).toHaveLength(1);
    expect(violations[0]).toMatch(/^exclusion: b \(token 20\) held from 102.0 while a \(token 10\) held until 103.0/);
  });

  it('does not count a late acknowledgement as holding (a frozen holder reading its answer late)', () => {
    const h = cleanHistory();
    h.holds[0].writes[1].ackAt = 500; // answered long after b took over: a held only until it sent
    expect(checkFencedHistory(h).violations).toEqual([]);
  });

  it('catches an acknowledged write missing from the store', () => {
    const h = cleanHistory();
    h.store.delete('log-a');
    const { violations } = checkFencedHistory(h);
    expect(violations).toEqual([expect.stringMatching(/^durability: acknowledged write of log-a by a \(token 10\) is missing/)]);
  });

  it('catches a refused write present in the store', () => {
    const h = cleanHistory();
    h.store.set('log-c', 'c');
    h.storeKeys.push('log-c');
    const { violations } = checkFencedHistory(h);
    expect(violations).toEqual([expect.stringMatching(/^refusal: log-c by c \(token 5\) was refused \(LOCK_LOST\)/)]);
  });

  it('catches a shared key overwritten by an older token, and a final value that is not the last write', () => {
    const h = cleanHistory();
    h.holds[0].writes[0].version = 2; // a's write landed after b's
    const { violations } = checkFencedHistory(h);
    expect(violations).toEqual(expect.arrayContaining([
      expect.stringMatching(/^order: order@2 written by token 10 \(a\) after @1 by newer token 20 \(b\)/),
      expect.stringMatching(/^durability: order is "b1", expected its last acknowledged write "a1"/),
    ]));
  });

  it('catches tokens that do not grow with holding order, and keys no write made', () => {
    const h = cleanHistory();
    h.holds[1].token = 7;
    h.holds[1].writes[0].version = 1;
    h.storeKeys.push('log-zombie');
    const { violations } = checkFencedHistory(h);
    expect(violations).toEqual(expect.arrayContaining([
      expect.stringMatching(/^tokens: b \(token 7\) held after a \(token 10\)/),
      expect.stringMatching(/^strays: log-zombie/),
    ]));
  });
});
