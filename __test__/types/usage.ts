import ZooKeeperDefault, { ZooKeeper, executeTransaction, ZktxError, FencingTokenGuard, Lock, MultiLock, ZOO_LOG_LEVEL_WARN, ZktxChannels, LockAcquiredEvent, ZktxTracingContext, ZktxTracingChannel } from 'zktx';
import * as diagnostics from 'node:diagnostics_channel';
async function main() {
  const zk = new ZooKeeper({ connect: 'localhost:2181', timeout: 200000, debug_level: ZooKeeper.ZOO_LOG_LEVEL_WARN, host_order_deterministic: false });
  zk.on('state', (s) => console.log(s));
  const secured = new ZooKeeper({ auth: [{ scheme: 'digest', credentials: 'u:p' }, { scheme: 'ip', credentials: Buffer.from('x') }], acl: 'creator-all' });
  const sasl = new ZooKeeper({ sasl: { mechanism: 'DIGEST-MD5', username: 'u', password: 'p' }, acl: 'creator-all' });
  await sasl.close();
  const tls = new ZooKeeper({ tls: { ca: '-----BEGIN CERTIFICATE-----', cert: Buffer.from(''), key: Buffer.from(''), rejectUnauthorized: true } });
  await tls.close();
  const listed = new ZooKeeper({ acl: [{ perms: 'rwcda', scheme: 'digest', id: ZooKeeper.digestId('u', 'p') }, { perms: ['read'], scheme: 'world', id: 'anyone' }] });
  await Promise.all([secured.close(), listed.close()]);
  const st: string = zk.state;
  const lock: Lock = await zk.lock('/a', { timeout: 5, signal: AbortSignal.timeout(10) });
  lock.signal.addEventListener('abort', () => {});
  const e: ZktxError = await lock.lost;
  await zk.set('k', { a: 1 }, { lock });
  const r = await zk.executeTransaction('c', (cur) => (typeof cur === 'number' ? cur : 0) + 1);
  const n: number = r.version + r.token;
  await executeTransaction('foo', 1);
  const moved: boolean = await zk.transaction(async (tx) => { const a = await tx.get<number>('a'); tx.set('a', (a ?? 0) + 1); return true; }, { retries: 3, isolation: 'snapshot' });
  const m: MultiLock = await zk.multiLock(['/a', '/b']);
  const rw = zk.readWriteLock('/rw'); await (await rw.readLock()).release();
  const sem = zk.semaphore('/s', 2); await (await sem.acquire()).release();
  new FencingTokenGuard().check('db', m.tokens[0]);
  const undoSignals: () => void = zk.closeOnSignals(['SIGTERM']); undoSignals();
  const pruned: number = await zk.pruneTransactionIds(86_400_000);
  const compacted: number = (await zk.compactTombstones(86_400_000)).removed;
  const z: number | undefined = r.zxid;
  const viaDefault: ZooKeeper = new ZooKeeperDefault({ debug_level: ZOO_LOG_LEVEL_WARN, logger: console });
  diagnostics.subscribe('zktx:lock:acquired', (m) => { const ev = m as LockAcquiredEvent; console.log(ev.waitMs, ev.zk.connectString); });
  const lost: ZktxChannels['zktx:lock:lost']['reason'] = 'NODE_DELETED';
  const traced: ZktxTracingChannel = 'zktx:lock';
  diagnostics.tracingChannel<ZktxTracingContext>(traced).subscribe({
    start: (ctx) => { ctx.span = ctx.path; },
    end: () => {},
    asyncStart: () => {},
    asyncEnd: (ctx) => { console.log(ctx.kind, ctx.result); },
    error: (ctx) => { console.log(ctx.error instanceof ZktxError && (ctx.error.cause as { code?: string } | undefined)?.code); },
  });
  console.log(lost);
  await viaDefault.close();
  console.log(st, e.code, n, moved, pruned, compacted, z);
}
main();

// zk.znodes: the raw ZooKeeper API, and zktx/zookeeper (the `zookeeper` package's API).
import type { Stat, WatchEvent, MultiResult, Znodes } from 'zktx';
async function znodes(zk: ZooKeeper) {
  const z: Znodes = zk.znodes;
  const created: string = await z.create('/app/job-', 'x', { mode: 'ephemeral', sequential: true, acl: 'open' });
  await z.create('/app/ttl', Buffer.from([1]), { ttl: 60000 });
  const { data, stat, watch } = await z.getData(created, { watch: true, signal: AbortSignal.timeout(1000) });
  const bytes: Buffer = data;
  const version: number = stat.version;
  const owner: string = stat.ephemeralOwner;
  const event: WatchEvent | undefined = await watch;
  const exists: Stat | null = (await z.exists('/app')).stat;
  const names: string[] = (await z.getChildren('/app')).children;
  const next: Stat = await z.setData('/app', 'y', { version });
  await z.delete('/app/ttl', { version: -1 });
  const results: MultiResult[] = await z.multi([{ op: 'check', path: '/app', version: next.version }, { op: 'create', path: '/app/a', data: 'a', mode: 'persistent' }, { op: 'set', path: '/app', data: null }, { op: 'delete', path: '/app/a' }]);
  const perms: number = (await z.getAcl('/app')).acl[0].perms;
  await z.setAcl('/app', [{ perms: 'r', scheme: 'world', id: 'anyone' }], { version: 0 });
  await z.sync();
  await z.addAuth('digest', 'u:p');
  const id: string = await z.sessionId();
  const password: string = await z.sessionPassword();
  const resumed = new ZooKeeper({ session: { id, password } });
  void resumed;
  const cache = await z.treeCache('/app', { signal: AbortSignal.timeout(1000) });
  cache.on('changed', (path: string) => console.log(path, cache.get(path)?.data.length, cache.children('/app'), cache.paths()));
  cache.close();
  const pw = await z.addWatch('/app', { recursive: true, signal: AbortSignal.timeout(1000) });
  for await (const ev of pw) if (ev.type === 'resync') console.log(ev.reason); else if (ev.type === 'changed') pw.close();
  pw.on('event', (ev) => console.log(ev.type, ev.path)).on('resync', (ev) => console.log(ev.reason)).once('aborted', (ev) => console.log(ev.path));
  const done: boolean = pw.ended;
  await z.exists('/app', { watch: (ev: WatchEvent) => console.log(ev.type), signal: AbortSignal.timeout(1000) });
  console.log(done);
  console.log(bytes, owner, event, exists, names, results, perms, id);

}
void znodes;

import type { Election, Leadership, ElectionParticipant, ElectionLeader, ElectionState } from 'zktx';

async function election(zk: ZooKeeper): Promise<void> {
  const e: Election = zk.election('/election/orders', { id: 'node-a' });
  e.on('leader', (leader: ElectionLeader | null) => console.log(leader?.id, leader?.node));
  e.on('participants', (ps: ElectionParticipant[]) => console.log(ps.map((p) => p.isLeader)));
  const leadership: Leadership = await e.lead({ timeout: 1000, signal: AbortSignal.timeout(2000) });
  const asLock: Lock = leadership; // fences writes wherever a lock does
  await zk.set('orders/leader', { token: leadership.token }, { lock: leadership });
  leadership.signal.addEventListener('abort', () => {});
  const leading: boolean = await leadership.isLeader();
  const leader: ElectionLeader | null = await e.leader();
  const ps: ElectionParticipant[] = await e.participants();
  for await (const state of e.watch({ signal: AbortSignal.timeout(1000) })) {
    const s: ElectionState = state;
    console.log(s.leader, s.participants.length);
  }
  await leadership.resign();
  e.close();
  console.log(asLock, leading, leader, ps, leadership.id);
}
void election;
