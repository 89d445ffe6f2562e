import { Etcd, Lock, ZktxError, Coordinator, RecoveryReport } from 'zktx';
async function etcdMain() {
  const etcd = new Etcd({ endpoints: ['127.0.0.1:2379'], timeout: 10000, lostAfter: 0.5, auth: { user: 'root', password: 'pw' } });
  etcd.on('state', (s) => console.log(s));
  const fromString = new Etcd({ endpoints: 'a:2379,b:2379' });
  const lock: Lock = await etcd.lock('/locks/orders', { timeout: 1000, signal: AbortSignal.timeout(5000) });
  const token: number = lock.token;
  const lost: ZktxError = await lock.lost;
  await (await etcd.readWriteLock('/rw').readLock()).release();
  await (await etcd.semaphore('/s', 3).acquire()).release();
  const n: number = await etcd.withLock('/l', async (l) => l.token);
  const both = await etcd.multiLock(['/a', '/b'], { timeout: 1000 });
  await both.release();
  const endpoints: string[] = etcd.endpoints;
  const version: number = await etcd.set('k', { a: 1 }, { lock });
  const read = await etcd.get<{ a: number }>('k');
  const done = await etcd.executeTransaction<number>('n', (cur) => ((cur as number | undefined) ?? 0) + 1, { timeout: 1000 });
  const revision: number | undefined = done.zxid;
  const moved: boolean = await etcd.transaction(async (tx) => {
    const [a] = await tx.getMany(['a']);
    tx.set('a', (a as number) - 1);
    return true;
  }, { isolation: 'snapshot', id: 'transfer-1', lock });
  const level: number = Etcd.ZOO_LOG_LEVEL_WARN;
  const bank: Coordinator = etcd.coordinator('bank', { participantTimeoutMs: 5000, recoveryIntervalMs: 0 });
  const txid: string = await bank.run(async (tx) => tx.id);
  const outcome = await bank.outcome(txid);
  const report: RecoveryReport | null = await bank.recover();
  await Promise.all([etcd.close(), fromString.close()]);
  return [token, lost, n, endpoints, version, read, revision, moved, level, outcome, report];
}
void etcdMain;
