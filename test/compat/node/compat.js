'use strict';
// npm etcd3 1.1.2 compatibility probe for Tidemark (test/compat).
//
// usage: node compat.js <host:port> <key-prefix>
// Runs a fixed sequence of checks against the server and prints one JSON line:
//   {"ok":true,"checks":[...names...]}                         exit 0
//   {"ok":false,"failed":"<check>","error":"...","checks":[...]} exit 1
// Only keys under <key-prefix> are written (the prefix must be unused).

const assert = require('assert');
const { Etcd3, Range, EtcdLockFailedError } = require('etcd3');

const [endpoint, P] = process.argv.slice(2);
if (!endpoint || !P) {
  console.error('usage: node compat.js <host:port> <key-prefix>');
  process.exit(2);
}

const client = new Etcd3({ hosts: `http://${endpoint}`, dialTimeout: 5000 });
const done = [];
let current = '<setup>';

function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise.finally(() => clearTimeout(t)),
    new Promise((_, reject) => { t = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms); }),
  ]);
}

async function check(name, fn) {
  current = name;
  await withTimeout(Promise.resolve().then(fn), 20000, name);
  done.push(name);
}

const eq = assert.deepStrictEqual;

async function main() {
  await check('put/get', async () => {
    await client.put(P + 'str').value('hello');
    await client.put(P + 'num').value(42);
    await client.put(P + 'json').value(JSON.stringify({ a: [1, 2] }));
    await client.put(P + 'bin').value(Buffer.from([0, 1, 255]));
    eq(await client.get(P + 'str').string(), 'hello');
    eq(await client.get(P + 'num').number(), 42);
    eq(await client.get(P + 'json').json(), { a: [1, 2] });
    eq(await client.get(P + 'bin').buffer(), Buffer.from([0, 1, 255]));
    eq(await client.get(P + 'missing').string(), null);
    eq(await client.get(P + 'str').exists(), true);
    eq(await client.get(P + 'missing').exists(), false);
  });

  await check('put getPrevious + revisions', async () => {
    const first = await client.put(P + 'rev').value('1').exec();
    const prev = await client.put(P + 'rev').value('2').getPrevious();
    eq(prev.value.toString(), '1');
    const res = await client.get(P + 'rev').exec();
    eq(res.kvs.length, 1);
    eq(res.kvs[0].version, '2');
    eq(res.kvs[0].create_revision, first.header.revision);
    eq(Number(res.kvs[0].mod_revision), Number(first.header.revision) + 1);
    eq(res.count, '1');
  });

  await check('delete', async () => {
    await client.put(P + 'del').value('x');
    const r = await client.delete().key(P + 'del').exec();
    eq(r.deleted, '1');
    eq(await client.get(P + 'del').string(), null);
    const r2 = await client.delete().key(P + 'del').exec();
    eq(r2.deleted, '0');
  });

  await check('getAll prefix keys/strings/count/limit/sort', async () => {
    const G = P + 'g/';
    const vals = { c: 'apple', a: 'cherry', b: 'banana', d: 'date' };
    for (const k of Object.keys(vals)) await client.put(G + k).value(vals[k]);
    eq(await client.getAll().prefix(G).keys(), ['a', 'b', 'c', 'd'].map((k) => G + k));
    eq(await client.getAll().prefix(G).strings(),
      { [G + 'a']: 'cherry', [G + 'b']: 'banana', [G + 'c']: 'apple', [G + 'd']: 'date' });
    eq(await client.getAll().prefix(G).count(), 4);
    eq(await client.getAll().prefix(G).limit(2).keys(), [G + 'a', G + 'b']);
    eq(await client.getAll().prefix(G).sort('Key', 'Descend').keys(), ['d', 'c', 'b', 'a'].map((k) => G + k));
    eq(await client.getAll().prefix(G).sort('Value', 'Ascend').keys(), ['c', 'b', 'a', 'd'].map((k) => G + k));
    eq(await client.getAll().prefix(G).sort('Create', 'Ascend').keys(), ['c', 'a', 'b', 'd'].map((k) => G + k));
    eq(await client.getAll().prefix(G).sort('Mod', 'Descend').limit(1).keys(), [G + 'd']);
    const ex = await client.getAll().prefix(G).limit(1).exec();
    eq(ex.more, true);
    eq(ex.count, '4');
    eq(await client.getAll().prefix(P + 'nothing-here/').keys(), []);
    eq(await client.getAll().prefix(P + 'nothing-here/').count(), 0);
  });

  await check('range', async () => {
    const G = P + 'g/';
    eq(await client.getAll().inRange(new Range(G + 'b', G + 'd')).keys(), [G + 'b', G + 'c']);
    eq(await client.getAll().inRange(new Range(G + 'c', G + 'a')).keys(), []);
    // prefix ending in 0xff: npm carries (prefix end "...\x00" + 1)
    const ff = Buffer.concat([Buffer.from(P + 'ff'), Buffer.from([0xff])]);
    await client.put(Buffer.concat([ff, Buffer.from('x')])).value('1');
    await client.put(Buffer.concat([ff, Buffer.from([0xff, 0x01])])).value('2');
    eq(await client.getAll().prefix(ff).count(), 2);
    const r = await client.delete().range(Range.prefix(ff)).exec();
    eq(r.deleted, '2');
    const mr = await client.getAll().prefix(P + 'g/').minModRevision(1).maxCreateRevision(1e12).count();
    eq(mr, 4);
  });

  await check('delete prefix getPrevious', async () => {
    const D = P + 'dp/';
    await client.put(D + '1').value('one');
    await client.put(D + '2').value('two');
    const prev = await client.delete().prefix(D).getPrevious();
    eq(prev.map((kv) => kv.value.toString()), ['one', 'two']);
    eq(await client.getAll().prefix(D).count(), 0);
  });

  await check('txn if/then/else', async () => {
    const K = P + 't';
    await client.put(K).value('v1');
    const first = await client.get(K).exec();
    const cr = first.kvs[0].create_revision;
    await client.put(K).value('v2');
    let r = await client.if(K, 'Value', '==', 'v2')
      .and(K, 'Version', '==', 2)
      .and(K, 'Create', '==', cr)
      .and(K, 'Mod', '>', cr)
      .and(K, 'Lease', '==', 0)
      .then(client.put(K + '-then').value('yes'), client.get(K))
      .else(client.put(K + '-else').value('yes'))
      .commit();
    eq(r.succeeded, true);
    eq(r.responses.length, 2);
    eq(r.responses[1].response_range.kvs[0].value.toString(), 'v2');
    eq(await client.get(K + '-then').string(), 'yes');
    eq(await client.get(K + '-else').string(), null);

    r = await client.if(K, 'Version', '<', 2)
      .then(client.put(K + '-then2').value('yes'))
      .else(client.put(K + '-else2').value('yes'), client.delete().key(K + '-then'))
      .commit();
    eq(r.succeeded, false);
    eq(r.responses[1].response_delete_range.deleted, '1');
    eq(await client.get(K + '-else2').string(), 'yes');
    eq(await client.get(K + '-then2').string(), null);

    // compares on a missing key: create == 0 true, value compare false
    r = await client.if(K + '-nope', 'Create', '==', 0).then().else().commit();
    eq(r.succeeded, true);
    r = await client.if(K + '-nope', 'Value', '!=', 'x').then().else().commit();
    eq(r.succeeded, false);
  });

  await check('lease', async () => {
    const lease = client.lease(30);
    const id = await lease.grant();
    await lease.put(P + 'leased').value('l');
    const kv = (await client.get(P + 'leased').exec()).kvs[0];
    eq(kv.lease, id);
    const r = await client.if(P + 'leased', 'Lease', '==', id).then().else().commit();
    eq(r.succeeded, true);
    const ka = await lease.keepaliveOnce();
    eq(ka.TTL, '30');
    const ttl = await client.leaseClient.leaseTimeToLive({ ID: id, keys: true });
    eq(ttl.grantedTTL, '30');
    eq(ttl.keys.map((k) => k.toString()), [P + 'leased']);
    await lease.revoke();
    eq(await client.get(P + 'leased').string(), null);
  });

  await check('watch', async () => {
    const W = P + 'w/';
    const watcher = await client.watch().prefix(W).withPreviousKV().create();
    const seen = [];
    const finished = new Promise((resolve) => {
      watcher.on('put', (kv, prev) => { seen.push(['put', kv.key.toString(), kv.value.toString(), prev ? prev.value.toString() : null]); if (seen.length === 3) resolve(); });
      watcher.on('delete', (kv, prev) => { seen.push(['delete', kv.key.toString(), prev ? prev.value.toString() : null]); if (seen.length === 3) resolve(); });
    });
    await client.put(W + 'a').value('1');
    await client.put(W + 'a').value('2');
    await client.delete().key(W + 'a');
    await finished;
    await watcher.cancel();
    eq(seen, [['put', W + 'a', '1', null], ['put', W + 'a', '2', '1'], ['delete', W + 'a', '2']]);
  });

  await check('lock', async () => {
    const L = P + 'lock';
    const lock1 = await client.lock(L).ttl(10).acquire();
    let failed = false;
    try {
      await client.lock(L).ttl(10).acquire();
    } catch (e) {
      failed = e instanceof EtcdLockFailedError;
    }
    eq(failed, true);
    await lock1.release();
    const lock2 = await client.lock(L).ttl(10).acquire();
    await lock2.release();
  });

  await check('errors', async () => {
    let msg = null;
    try {
      await client.put(P + 'badlease').value('x').lease('1234567');
    } catch (e) {
      msg = `${e.constructor.name}: ${e.message}`;
    }
    assert.match(String(msg), /^EtcdLeaseInvalidError: /);
    msg = null;
    try {
      await client.put('').value('x');
    } catch (e) {
      msg = e.message;
    }
    eq(msg, '3 INVALID_ARGUMENT: etcdserver: key is not provided'); // grpc-js: code + exact etcd text
  });

  await check('maintenance status + member list', async () => {
    const st = await client.maintenance.status({});
    eq(st.leader, st.header.member_id);
    assert.ok(st.version.startsWith('3.4.'), st.version);
    const ml = await client.cluster.memberList({});
    eq(ml.members.length, 1);
    eq(ml.members[0].ID, st.header.member_id);
    eq(ml.members[0].clientURLs, [`http://${endpoint}`]);
    const al = await client.maintenance.alarm({ action: 0, memberID: 0, alarm: 0 });
    eq(al.alarms, []);
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
