// zktx/zookeeper as code written for the `zookeeper` package uses it (CommonJS, as its README).
import ZooKeeperPackage = require('zktx/zookeeper');

export function tutorial(): void {
  const client = new ZooKeeperPackage({ connect: 'localhost:2181', timeout: 5000, debug_level: ZooKeeperPackage.constants.ZOO_LOG_LEVEL_WARN, host_order_deterministic: false });
  client.on('connect', async () => {
    const p: string = await client.create('/lock/n-', '', ZooKeeperPackage.ZOO_EPHEMERAL | ZooKeeperPackage.ZOO_SEQUENCE);
    const kids: string[] = await client.get_children('/lock', false);
    const s: ZooKeeperPackage.stat = await client.w_exists(p, (type, state, path) => console.log(type, state, path));
    const [st, d] = await client.get(p, false);
    await client.set(p, 'x', st.version);
    await client.delete_(p, -1);
    client.a_create('/x', 'y', ZooKeeperPackage.constants.ZOO_PERSISTENT, (rc, error, path) => console.log(rc, error, path));
    console.log(kids, s, d, client.client_id, client.state);
    await client.close();
  });
  client.init({});
}
