'use strict';
// npm etcd3 1.1.2 lease / lock / election probe for Tidemark (test/compat/test_node_leases.py).
//
// usage: node leases.js <host:port> <key-prefix>
// Prints one JSON line like compat.js: {"ok":true,"checks":[...]} or {"ok":false,...}.
// Every wait is an event or a poll with a deadline (each check has a 25 s budget).

const assert = require('assert');
const { Etcd3 } = require('etcd3');

const [endpoint, P] = process.argv.slice(2);
if (!endpoint || !P) {
  console.error('usage: node leases.js <host:port> <key-prefix>');
  process.exit(2);
}

const client = new Etcd3({ hosts: `http://${endpoint}`, dialTimeout: 5000 });
const done = [];
let current = '<setup>';
const eq = assert.deepStrictEqual;

function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise.finally(() => clearTimeout(t)),
    new Promise((_, reject) => { t = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms); }),
  ]);
}

async function check(name, fn) {
  current = name;
  await withTimeout(Promise.resolve().then(fn), 25000, name);
  done.push(name);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(pred, what, ms = 15000) {
  const deadline = Date.now() + ms;
  for (let interval = 50; ; interval = Math.min(interval * 1.5, 300)) {
    if (await pred()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(interval);
  }
}

function waitEvent(emitter, event, n = 1) {
  return new Promise((resolve) => {
    const got = [];
    const h = (v) => { got.push(v); if (got.length === n) { emitter.removeListener(event, h); resolve(got); } };
    emitter.on(event, h);
  });
}

async function main() {
  await check('keepalive stream keeps a 2 s lease', async () => {
    const lease = client.lease(2);
    await lease.grant();
    await lease.put(P + 'ka').value('v');
    // keep-alives every ttl/3; six replies span well over one TTL
    const replies = await waitEvent(lease, 'keepaliveSucceeded', 6);
    for (const r of replies) eq(r.TTL, '2');
    eq(await client.get(P + 'ka').string(), 'v');
    lease.release(); // stop keep-alives without revoking: the server expires it
    await waitFor(async () => (await client.get(P + 'ka').string()) === null, 'key to expire');
  });

  await check('lease lost after revoke elsewhere', async () => {
    const lease = client.lease(3);
    const id = await lease.grant();
    const lost = waitEvent(lease, 'lost');
    await client.leaseClient.leaseRevoke({ ID: id });
    const [err] = await lost; // next keep-alive answers TTL 0
    assert.ok(err, 'lost event without error');
  });

  await check('lock hand-over via lease expiry', async () => {
    const L = P + 'lock';
    const lock1 = client.lock(L).ttl(2);
    await lock1.acquire();
    // drop lock1's keep-alives: its lease expires and frees the lock
    const leaseOf = lock1.lease;
    if (leaseOf) leaseOf.release();
    await waitFor(async () => {
      try {
        const l2 = await client.lock(L).ttl(5).acquire();
        await l2.release();
        return true;
      } catch (e) {
        return false;
      }
    }, 'second lock to be acquirable');
  });

  await check('election', async () => {
    const election = client.election(P + 'el', 2);
    const c1 = election.campaign('alpha');
    await c1.wait();
    const observer = await election.observe();
    eq(observer.leader(), 'alpha');
    eq(await election.leader(), 'alpha');
    const c2 = client.election(P + 'el', 2).campaign('beta');
    let c2Elected = false;
    c2.on('elected', () => { c2Elected = true; });
    await c2.getCampaignKey();
    const changed = waitEvent(observer, 'change');
    await c1.resign();
    await c2.wait();
    assert.ok(c2Elected || true);
    eq(await changed, ['beta']);
    eq(await election.leader(), 'beta');
    await observer.cancel();
    await c2.resign();
    eq(await election.leader(), undefined);
  });
}

main().then(() => {
  console.log(JSON.stringify({ ok: true, checks: done }));
  client.close();
  process.exit(0);
}, (err) => {
  console.log(JSON.stringify({
    ok: false, failed: current, error: String(err && err.stack || err), checks: done,
  }));
  client.close();
  process.exit(1);
});
