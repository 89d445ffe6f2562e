'use strict';
// Interop: a zktx candidate and Apache Curator's LeaderLatch (Java, Debian's
// libcurator-recipes-java 5.4) on one path agree on one leader, whoever came first; the leader's
// going (closing its latch, resigning, or a kill -9 of its process) hands leadership over.
// __test__/curator/LatchMember.java is compiled here, at test time, into a temp dir.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { clientAt, unique, zkScripts } = require('./helpers/zk');
const { spawnProcess, waitFor, within, report } = require('./faults/util');

const TICK = 200;
const SESSION = 2000;
const JARS = ['curator-recipes', 'curator-framework', 'curator-client', 'zookeeper', 'zookeeper-jute', 'guava', 'slf4j-api', 'slf4j-nop']
  .map((j) => path.join(process.env.CURATOR_JARS || '/usr/share/java', `${j}.jar`));

describe('Curator LeaderLatch interop', () => {
  let server;
  let classDir;
  let procs = [];
  let clients = [];

  beforeAll(async () => {
    const missing = JARS.filter((j) => !fs.existsSync(j));
    if (missing.length) throw new Error(`Curator's jars are missing (${missing.join(', ')}): apt-get install -y libcurator-recipes-java (or set CURATOR_JARS to a directory holding them)`);
    classDir = fs.mkdtempSync(path.join(os.tmpdir(), 'zktx-curator-'));
    execFileSync('javac', ['-d', classDir, '-cp', JARS.join(':'), path.join(__dirname, 'curator', 'LatchMember.java')], { stdio: 'pipe' });
    server = await zkScripts.startStandalone({ tickTime: TICK });
  }, 60000);
  afterEach(async () => {
    for (const p of procs) p.kill('SIGKILL');
    procs = [];
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    clients = [];
  });
  afterAll(async () => {
    if (server) await server.stop();
    if (classDir) fs.rmSync(classDir, { recursive: true, force: true });
  });

  /** A Java process with a LeaderLatch on `latchPath` as `id`. */
  function curator(latchPath, id) {
    const p = spawnProcess('java', ['-cp', [classDir, ...JARS].join(':'), 'LatchMember', server.connect, latchPath, id, String(SESSION)]);
    procs.push(p);
    return p;
  }

  const isLine = (prefix) => (l) => typeof l.text === 'string' && l.text.startsWith(prefix);

  /** What the Java side says the leader is (LeaderLatch.getLeader().getId()). */
  async function curatorSaysLeader(p) {
    const from = p.lines.length;
    p.send('leader');
    await waitFor(() => p.lines.slice(from).some(isLine('LEADER_IS')), { what: 'the Java side to answer' });
    return p.lines.slice(from).find(isLine('LEADER_IS')).text.slice('LEADER_IS '.length);
  }

  function zk() {
    const c = clientAt(server.connect, { timeout: SESSION, debug_level: 0 });
    clients.push(c);
    return c;
  }

  it('Curator first: zktx waits behind it (both name the Java leader); when the latch closes, zktx leads', async () => {
    const latchPath = `/interop/${unique('curator-first')}`;
    const java = curator(latchPath, 'java-1');
    const javaLeads = await java.next(isLine('LEADER '), 30000);
    const javaNode = javaLeads.text.slice('LEADER '.length).split('/').pop();
    expect(javaNode).toMatch(/^_c_[0-9a-f-]{36}-latch-\d{10}$/);
    const client = zk();
    const election = client.election(latchPath, { id: 'zktx-1' });
    let zktxLeads = false;
    const leading = election.lead().then((l) => { zktxLeads = true; return l; });
    await waitFor(async () => (await election.participants()).length === 2, { what: 'zktx to take part' });
    expect(await election.participants()).toEqual([
      { id: 'java-1', node: javaNode, isLeader: true },
      { id: 'zktx-1', node: expect.stringMatching(/^_c_[0-9a-f]{32}-latch-\d{10}$/), isLeader: false },
    ]);
    expect(await curatorSaysLeader(java)).toBe('java-1');
    expect(zktxLeads).toBe(false);

    java.send('close');
    await java.next(isLine('CLOSED'));
    const leadership = await within(leading, 10000, 'zktx to lead');
    expect(await election.leader()).toEqual({ id: 'zktx-1', node: leadership.nodePath.split('/').pop() });
    await leadership.resign();
  }, 60000);

  it('zktx first: Curator does not lead and names the zktx leader; when zktx resigns, Curator leads', async () => {
    const latchPath = `/interop/${unique('zktx-first')}`;
    const client = zk();
    const election = client.election(latchPath, { id: 'zktx-1' });
    const leadership = await election.lead();
    const java = curator(latchPath, 'java-1');
    await java.next(isLine('STARTED'), 30000);
    await waitFor(async () => (await election.participants()).length === 2, { timeoutMs: 20000, what: 'Curator to take part' });
    expect(await curatorSaysLeader(java)).toBe('zktx-1');
    expect(java.lines.some(isLine('LEADER '))).toBe(false);
    expect((await election.participants()).map((p) => [p.id, p.isLeader])).toEqual([['zktx-1', true], ['java-1', false]]);

    const resignedAt = Date.now();
    await leadership.resign();
    const javaLeads = await java.next(isLine('LEADER '), 10000);
    expect(await curatorSaysLeader(java)).toBe('java-1');
    expect(await election.leader()).toEqual({ id: 'java-1', node: javaLeads.text.split('/').pop() });
    report('interop: zktx resigns, Curator leads', { handoverMs: javaLeads.receivedAt - resignedAt });
  }, 60000);

  it('kill -9 of the Java leader: zktx leads once its session expires, with a larger token', async () => {
    const latchPath = `/interop/${unique('curator-killed')}`;
    const java = curator(latchPath, 'java-1');
    await java.next(isLine('LEADER '), 30000);
    const client = zk();
    const election = client.election(latchPath, { id: 'zktx-1' });
    const leading = election.lead();
    await waitFor(async () => (await election.participants()).length === 2, { what: 'zktx to take part' });
    const javaNode = (await election.participants())[0].node;
    const javaCzxid = (await client.znodes.exists(`${latchPath}/${javaNode}`)).stat.czxid;
    const killedAt = Date.now();
    java.kill('SIGKILL');
    const leadership = await within(leading, SESSION + 8000, 'zktx to lead');
    const takeover = Date.now() - killedAt;
    expect(takeover).toBeGreaterThan(SESSION / 2); // the node goes with the session, not the socket
    expect(leadership.token).toBeGreaterThan(javaCzxid);
    expect(await election.participants()).toEqual([{ id: 'zktx-1', node: leadership.nodePath.split('/').pop(), isLeader: true }]);
    report('interop: kill -9 of the Curator leader', { sessionMs: SESSION, takeoverMs: takeover });
    await leadership.resign();
  }, 60000);

  it('two zktx and two Curator candidates, interleaved, leave one at a time: each time both sides name the same leader, and only that one says it leads', async () => {
    const latchPath = `/interop/${unique('mixed')}`;
    const observer = zk().election(latchPath);
    const javas = [curator(latchPath, 'java-a')];
    await javas[0].next(isLine('LEADER '), 30000);
    const zktx = [];
    for (const id of ['zktx-a', 'zktx-b']) {
      const e = zk().election(latchPath, { id });
      const entry = { id, led: false, done: false };
      entry.leading = e.lead().then((l) => { entry.led = true; return l; });
      zktx.push(entry);
      await waitFor(async () => (await observer.participants()).some((p) => p.id === id), { what: `${id} to take part` });
    }
    javas.push(curator(latchPath, 'java-b'));
    await javas[1].next(isLine('STARTED'), 30000);
    await waitFor(async () => (await observer.participants()).length === 4, { timeoutMs: 20000, what: 'java-b to take part' });
    const order = (await observer.participants()).map((p) => p.id);
    expect(order).toEqual(['java-a', 'zktx-a', 'zktx-b', 'java-b']);
    for (const expected of order) {
      const leader = await observer.leader();
      expect(leader.id).toBe(expected);
      for (const j of javas.filter((p) => !p.exited && !p.lines.some(isLine('CLOSED')))) expect(await curatorSaysLeader(j)).toBe(expected);
      if (expected.startsWith('java')) {
        const j = javas[expected === 'java-a' ? 0 : 1];
        await waitFor(() => j.lines.some(isLine('LEADER ')), { what: `${expected} to say it leads` });
        j.send('close');
        await j.next(isLine('CLOSED'));
      } else {
        const z = zktx.find((x) => x.id === expected);
        const l = await within(z.leading, 10000, `${expected} to lead`);
        expect(zktx.filter((x) => x !== z && !x.done).map((x) => x.led)).toEqual(zktx.filter((x) => x !== z && !x.done).map(() => false));
        z.done = true;
        await l.resign();
      }
      // Nobody claims leadership twice, and no Java candidate before its turn.
      expect(javas.filter((j) => j.lines.filter(isLine('LEADER ')).length > 1)).toEqual([]);
      const turn = order.indexOf(expected);
      expect(order.slice(turn + 1).filter((id) => id.startsWith('java') && javas[id === 'java-a' ? 0 : 1].lines.some(isLine('LEADER ')))).toEqual([]);
    }
    await waitFor(async () => (await observer.participants()).length === 0, { what: 'everyone to leave' });
  }, 90000);
});
