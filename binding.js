'use strict';
// Loads the compiled addon (built by `npm install` / `npm run build` into ./zktx.node).
const path = require('node:path');
const file = process.env.ZKTX_NATIVE || path.join(__dirname, 'zktx.node');
try {
  module.exports = require(file);
} catch (err) {
  err.message = `zktx: cannot load the native addon at ${file} (${err.message}). ` +
    'Build it with `npm run build` (needs a Rust toolchain: cargo).';
  throw err;
}
