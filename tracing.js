'use strict';
// Spans for APM tools: zktx's operations on node:diagnostics_channel TracingChannels, the
// convention Node documents for tracing (https://nodejs.org/api/diagnostics_channel.html#class-tracingchannel)
// and that mysql2 (`tracing:mysql2:query`) and Node's own `tracing:http.*` follow. Each operation
// publishes `tracing:zktx:<name>:start|end|asyncStart|asyncEnd|error` with one context object:
// the fields named in index.d.ts (`ZktxTracingContext`), then `result` or `error`. A subscriber
// that binds a store to `start` (`channel.start.bindStore(als, ...)`) makes its span the parent
// of everything the operation runs. With nobody subscribed an operation costs one
// `hasSubscribers` check and builds no context.

const diagnostics = require('node:diagnostics_channel');

/** The operations traced, by TracingChannel name. */
const NAMES = {
  lock: 'zktx:lock',
  transaction: 'zktx:transaction',
  executeTransaction: 'zktx:executeTransaction',
  coordinatorRun: 'zktx:coordinator.run',
  coordinatorSaga: 'zktx:coordinator.saga',
};

// TracingChannel: Node >= 18.19 / 19.9. On an older Node, no spans (the zktx:* events remain).
const tracing = typeof diagnostics.tracingChannel === 'function'
  ? Object.fromEntries(Object.entries(NAMES).map(([k, name]) => [k, diagnostics.tracingChannel(name)]))
  : {};

/** Whether anyone listens on `tc` (TracingChannel#hasSubscribers is Node >= 20.13 / 22). */
function listened(tc) {
  if (tc === undefined) return false;
  if (typeof tc.hasSubscribers === 'boolean') return tc.hasSubscribers;
  return tc.start.hasSubscribers || tc.end.hasSubscribers || tc.asyncStart.hasSubscribers || tc.asyncEnd.hasSubscribers || tc.error.hasSubscribers;
}

/**
 * `run(context)` (returning a promise) traced on `tc` with the context `makeContext()` builds,
 * or just `run(undefined)` when nobody listens; `run` may add fields it learns (a txid).
 */
function traceAsync(tc, makeContext, run) {
  if (!listened(tc)) return run(undefined);
  let context;
  try {
    context = makeContext();
  } catch {
    context = {}; // a hostile argument (a throwing getter): the call itself refuses it
  }
  return tc.tracePromise(run, context, undefined, context);
}

module.exports = { tracing, traceAsync, TRACING_CHANNELS: NAMES };
