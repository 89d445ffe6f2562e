// Types of zktx's ES module entry (index.mjs): the same exports as index.d.ts, and the
// ZooKeeper class as the default export.
import { ZooKeeper } from './index.js';

export * from './index.js';
export default ZooKeeper;
