// `await using` as a TypeScript 5.9 user writes it; __test__/dispose.test.js compiles it to
// ES2022 (TypeScript lowers the syntax, Node 20 has none) and runs it against a real server.
// Prints one JSON report of what the server saw at each scope exit.
import { ZooKeeper } from 'zktx';

async function main(): Promise<void> {
  const [connect, path] = process.argv.slice(2);
  const observer = new ZooKeeper({ connect, timeout: 10000 });
  const nodes = async (): Promise<number> => {
    let n = 0;
    for (const p of [path, `${path}-sem`, `${path}-a`, `${path}-b`, `${path}-rw`]) n += (await observer.children(p)).length;
    return n;
  };
  const report: Record<string, unknown> = {};
  let outer: ZooKeeper;
  {
    await using zk = new ZooKeeper({ connect, timeout: 10000 });
    outer = zk;
    {
      await using lock = await zk.lock(path);
      report.insideLockScope = await nodes();
      report.token = typeof lock.token;
    }
    report.afterLockScope = await nodes();
    await using lease = await zk.semaphore(`${path}-sem`, 2).acquire();
    await using both = await zk.multiLock([`${path}-a`, `${path}-b`]);
    await using reader = await zk.readWriteLock(`${path}-rw`).readLock();
    report.insideClientScope = await nodes();
    report.held = [lease.released, both.released, reader.released];
  }
  report.afterClientScope = await nodes();
  report.state = outer.state;
  await observer.close();
  console.log(JSON.stringify(report));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
