'use strict';
const { client, unique } = require('./helpers/zk');
const { runWorkers, workerPath } = require('./helpers/procs');

describe('concurrency across processes (real ZooKeeper)', () => {
  it('4 processes x 50 executeTransaction(key, cur => cur + 1) end at exactly 200', async () => {
    const key = unique('counter');
    const results = await runWorkers(workerPath('counter.js'), 4, { args: () => [key, '50'] });
    for (const r of results) expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const zk = client();
    try {
      expect(await zk.get(key)).toBe(200);
      // Every increment saw a distinct previous value: 1..200, each exactly once.
      const values = results.flatMap((r) => r.lines.map((l) => l.value)).sort((a, b) => a - b);
      expect(values).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      // The lock queue is empty afterwards.
      expect(await zk.children(`/zktx/locks/kv/${key}`)).toEqual([]);
    } finally {
      await zk.close();
    }
  });

  it('a lock has one holder at a time across 4 processes, and tokens grow in holding order', async () => {
    const path = `/zktx-test/${unique('mutex')}`;
    const file = require('node:path').join(require('node:os').tmpdir(), `${unique('mutex-log')}.jsonl`);
    const results = await runWorkers(workerPath('mutex.js'), 4, { args: () => [path, '25', file] });
    for (const r of results) expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const lines = require('node:fs').readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    require('node:fs').unlinkSync(file);
    // The file's line order is the order holders wrote it in: it must be the holding order.
    expect(lines.map((l) => l.token)).toEqual([...lines.map((l) => l.token)].sort((a, b) => a - b));
    const intervals = lines.sort((a, b) => a.enter - b.enter);
    expect(intervals).toHaveLength(100);
    expect(new Set(intervals.map((i) => i.pid)).size).toBe(4);
    for (let i = 1; i < intervals.length; i++) {
      const [prev, cur] = [intervals[i - 1], intervals[i]];
      expect(cur.enter).toBeGreaterThanOrEqual(prev.leave); // no overlap
      expect(cur.token).toBeGreaterThan(prev.token); // fencing tokens strictly increase
    }
    const zk = client();
    try {
      expect(await zk.children(path)).toEqual([]);
    } finally {
      await zk.close();
    }
  });
});
