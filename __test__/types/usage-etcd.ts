import { Etcd, Lock, ZktxError } from 'zktx';
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
  await Promise.all([etcd.close(), fromString.close()]);
  return [token, lost, n, endpoints];
}
void etcdMain;
