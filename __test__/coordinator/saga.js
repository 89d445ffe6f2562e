'use strict';
// The saga the coordinator's saga tests share (worker processes and the recovering test
// process register the same definition): `pay` moves `amount` from a PostgreSQL account to a
// balance an HTTP service holds, then asks the service to approve it.
//
//   step 0  debit the account       behind the sub-transaction barrier (ctx.barrier)
//   step 1  credit the service      POST /credit, compensation POST /refund, key = ctx.key
//   step 2  approval                POST /approve: 409 when input.reject (compensates 1 and 0)
//
// input: { account, amount, reject, slowCreditMs (the service holds each credit that long) }.
//
// HTTP calls retry transient failures (5xx, dropped connection, timeout) with the same
// idempotency key, as a real client would: that is what duplicates actions, and a timed-out
// action still on its way is what arrives after its compensation (hanging).
const TIMEOUT_MS = 400;
const ATTEMPTS = 3;

class Refused extends Error {}

/** POSTs `body` as JSON; resolves the JSON answer. 409 is final; other failures are retried. */
async function call(url, body) {
  let last;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    try {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(TIMEOUT_MS) });
      const text = await res.text();
      if (res.status === 409) throw new Refused(`${url}: refused: ${text}`);
      if (res.status >= 400) throw new Error(`${url}: HTTP ${res.status} ${text}`);
      return JSON.parse(text);
    } catch (err) {
      if (err instanceof Refused) throw err;
      last = err;
    }
  }
  throw last;
}

/**
 * The saga definitions for `zk.coordinator(name, { sagas })`. `onStep(ctx)` is called as each
 * action or compensation starts (workers print it, so a test can kill them mid-saga).
 */
function sagas({ pool, service, onStep = () => {} }) {
  const step = (fn) => (input, ctx) => {
    onStep(ctx);
    return fn(input, ctx);
  };
  const move = (sign) => (input, ctx) => ctx.barrier(pool, (c) => c.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [sign * input.amount, input.account]));
  return {
    pay: [
      { action: step(move(-1)), compensate: step(move(1)) },
      {
        action: step((input, ctx) => call(`${service}/credit`, { key: ctx.key, amount: input.amount, slowMs: input.slowCreditMs })),
        compensate: step((input, ctx) => call(`${service}/refund`, { key: ctx.key })),
      },
      {
        action: step((input, ctx) => call(`${service}/approve`, { key: ctx.key, reject: input.reject })),
        compensate: step(async () => {}),
      },
    ],
  };
}

module.exports = { sagas, call };
