'use strict';
// Spans for zktx with the OpenTelemetry SDK. zktx publishes each operation on a
// node:diagnostics_channel TracingChannel (`tracing:zktx:lock`, `tracing:zktx:transaction`,
// `tracing:zktx:executeTransaction`, `tracing:zktx:coordinator.run`, `tracing:zktx:coordinator.saga`);
// `instrumentZktx` below turns them into spans. Binding the span's context to the channel's
// `start` store makes it the active context for everything the operation runs, so a lock taken
// inside `coordinator.run` is that run's child, and the run a child of the caller's span.
//
//   npm install @opentelemetry/api @opentelemetry/sdk-trace-base
//   ZK_CONNECT=localhost:2181 node examples/opentelemetry.js     (prints the spans as JSON)
//
// A real service registers its own context manager (@opentelemetry/sdk-trace-node does) and
// exporter; this file uses a small AsyncLocalStorage context manager and an in-memory exporter
// so that it runs as it is, and its test (__test__/tracing.test.js) can read the spans.
const { AsyncLocalStorage } = require('node:async_hooks');
const diagnostics = require('node:diagnostics_channel');
const { trace, context, ROOT_CONTEXT, SpanKind, SpanStatusCode } = require('@opentelemetry/api');
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');

/** OpenTelemetry's context manager over an AsyncLocalStorage we can bind channel stores to. */
class StorageContextManager {
  constructor() { this.storage = new AsyncLocalStorage(); }
  active() { return this.storage.getStore() ?? ROOT_CONTEXT; }
  with(ctx, fn, thisArg, ...args) { return this.storage.run(ctx, () => fn.apply(thisArg, args)); }
  bind(ctx, target) { return typeof target === 'function' ? (...args) => this.with(ctx, target, undefined, ...args) : target; }
  enable() { return this; }
  disable() { this.storage.disable(); return this; }
}

/** Span name and attributes of each zktx operation, from its TracingChannel context. */
const OPERATIONS = {
  'zktx:lock': (c) => ['zktx.lock', { 'zktx.lock.path': c.path, 'zktx.lock.kind': c.kind, ...(c.paths && c.paths.length > 1 ? { 'zktx.lock.paths': c.paths } : {}) }],
  'zktx:transaction': (c) => ['zktx.transaction', c.id === undefined ? {} : { 'zktx.transaction.id': c.id }],
  'zktx:executeTransaction': (c) => ['zktx.executeTransaction', { 'zktx.key': c.key }],
  'zktx:coordinator.run': (c) => ['zktx.coordinator.run', { 'zktx.coordinator': c.name }],
  'zktx:coordinator.saga': (c) => ['zktx.coordinator.saga', { 'zktx.coordinator': c.name, 'zktx.saga': c.saga }],
};

/** Subscribes `tracer` to zktx's TracingChannels; returns a function that unsubscribes. */
function instrumentZktx(tracer, contextManager) {
  const undo = [];
  for (const [channelName, describe] of Object.entries(OPERATIONS)) {
    const channel = diagnostics.tracingChannel(channelName);
    // Runs as the operation starts, in the caller's context: the span's parent is the caller's.
    channel.start.bindStore(contextManager.storage, (ctx) => {
      const parent = contextManager.active();
      const [name, attributes] = describe(ctx);
      ctx.span = tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, parent);
      return trace.setSpan(parent, ctx.span);
    });
    const handlers = {
      error(ctx) {
        ctx.span.recordException(ctx.error);
        ctx.span.setStatus({ code: SpanStatusCode.ERROR, message: `${ctx.error.code ?? ''} ${ctx.error.message}`.trim() });
        if (ctx.error.code !== undefined) ctx.span.setAttribute('zktx.error.code', ctx.error.code);
      },
      asyncEnd(ctx) {
        if (ctx.txid !== undefined) ctx.span.setAttribute('zktx.txid', ctx.txid);
        ctx.span.end();
      },
    };
    channel.subscribe(handlers);
    undo.push(() => {
      channel.unsubscribe(handlers);
      channel.start.unbindStore(contextManager.storage);
    });
  }
  return () => undo.forEach((f) => f());
}

module.exports = { instrumentZktx, StorageContextManager };

if (require.main === module) {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const contextManager = new StorageContextManager();
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(provider);
  const tracer = trace.getTracer('zktx-example');
  instrumentZktx(tracer, contextManager);

  const { ZooKeeper } = require('..'); // require('zktx') in your code
  (async () => {
    const zk = new ZooKeeper({ connect: process.env.ZK_CONNECT || 'localhost:2181', timeout: 10000 });
    const orders = zk.coordinator('otel-example', {});
    const suffix = `${process.pid}-${Date.now()}`;
    try {
      await tracer.startActiveSpan('checkout', async (span) => {
        await zk.withLock(`/otel-example/${suffix}`, async () => {
          await zk.executeTransaction(`otel-example/stock-${suffix}`, (n) => (n ?? 10) - 1);
        });
        await orders.run(async (tx) => {
          const lock = await zk.lock(`/otel-example/order-${suffix}`); // a child of the run's span
          tx.store.set(`otel-example/order-${suffix}`, { state: 'placed' });
          await lock.release();
        });
        await zk.transaction(async () => { throw new Error('out of stock'); }).catch(() => {});
        span.end();
      });
    } finally {
      orders.close();
      await zk.close();
    }
    const spans = exporter.getFinishedSpans().map((s) => ({
      name: s.name,
      id: s.spanContext().spanId,
      parent: s.parentSpanContext ? s.parentSpanContext.spanId : s.parentSpanId,
      status: s.status.code === SpanStatusCode.ERROR ? 'error' : 'ok',
      message: s.status.message,
      attributes: s.attributes,
    }));
    console.log(JSON.stringify(spans, null, 2));
  })().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
