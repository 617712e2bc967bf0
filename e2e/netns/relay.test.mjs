// Calls through a TURN relay. Alice's browser runs on host a, Bob's on host b, and there is no
// path between a and b at all: each reaches only the hub, which does not forward. The hub runs
// coturn and four calling-servers: three hand out TURN credentials minted from coturn's secret
// (--turn-secret, --turn-uri), one for TURN over UDP, one for TURN over TCP only and one for
// TURN over TLS only (`turns:`, networks that allow nothing but TLS), the fourth offers no
// TURN. Through the first three a call connects over the relay; through the last it cannot
// connect, and the SDK must say so (60009) and leave
// the call on both sides instead of hanging. And while an invitation rings through the relay,
// the caller's browser learns no address of the callee's host.
//
// A second network adds a direct link between a and b (its hub runs coturn and a TURN-minting
// calling-server too): a call rung there reveals nothing while ringing either, starts on the
// relay path made meanwhile, and once settled moves to the direct link, without the app
// hearing of any interruption.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Person, DESKTOP, PHONE } from '../harness.mjs';
import { TestNetwork, HOST_ADDRESSES } from './network.mjs';
import { installProbe, waitForFramesSince, stats, events } from './probe.mjs';

/**
 * calling-server hands out TURN credentials only with --turn-secret; a build without the flag
 * cannot run the relay tests, which then say so instead of failing on a refused flag.
 */
const SERVER_MINTS_TURN = execFileSync(process.env.SERVER_BIN, ['--help'], { encoding: 'utf8' }).includes('--turn-secret');
const NO_TURN_FLAGS = !SERVER_MINTS_TURN && 'this calling-server has no --turn-secret';

/** Frames (at 20 fps) that must arrive for video to count as flowing. */
const FLOWING = 10;
/** Deadline for a call that cannot connect to be given up and left (the SDK gives up at ~45 s). */
const FAIL_MS = 60_000;

const TURN_PORT = 8080;
const PLAIN_PORT = 8081;
const TCP_TURN_PORT = 8082;
const TLS_TURN_PORT = 8083;

const net = new TestNetwork('relay');
const wide = new TestNetwork('widen', { direct: true });
let viaTurn;
let viaTcpTurn;
let viaTlsTurn;
let plain;
let browsers;
/** The server of the network with a direct link, and that network's browsers. */
let wideServer;
let wideBrowsers;

before(async () => {
  net.up();
  if (SERVER_MINTS_TURN) {
    const turn = await net.startTurn({ tls: true });
    viaTurn = await net.startServer(['--turn-secret', turn.secret, '--turn-uri', turn.uri], TURN_PORT);
    // coturn listens on TCP on the same port.
    const overTcp = turn.uri.replace('transport=udp', 'transport=tcp');
    viaTcpTurn = await net.startServer(['--turn-secret', turn.secret, '--turn-uri', overTcp], TCP_TURN_PORT);
    viaTlsTurn = await net.startServer(['--turn-secret', turn.secret, '--turn-uri', turn.tlsUri], TLS_TURN_PORT);
  }
  plain = await net.startServer([], PLAIN_PORT);
  const origins = [viaTurn, viaTcpTurn, viaTlsTurn, plain].filter(Boolean);
  const options = { turnOverTls: Boolean(viaTlsTurn) };
  const [a, b] = await Promise.all([net.launchBrowser('a', origins, options), net.launchBrowser('b', origins, options)]);
  browsers = { a, b };
  if (SERVER_MINTS_TURN) {
    wide.up();
    const turn = await wide.startTurn();
    wideServer = await wide.startServer(['--turn-secret', turn.secret, '--turn-uri', turn.uri], TURN_PORT);
    const [wa, wb] = await Promise.all([wide.launchBrowser('a', [wideServer]), wide.launchBrowser('b', [wideServer])]);
    wideBrowsers = { a: wa, b: wb };
  }
});

after(async () => {
  await Promise.all([net.down(), wide.down()]);
});

/** Alice on host a and Bob on host b (`on`: their browsers), signed in to the server at `base`, with the probe. */
async function withPair(scenario, base, body, on = browsers) {
  const alice = new Person(on.a, 'alice', DESKTOP, scenario, base);
  const bob = new Person(on.b, 'bob', PHONE, scenario, base);
  try {
    for (const p of [alice, bob]) {
      await p.open();
      await installProbe(p);
      await p.signIn();
    }
    await body(alice, bob);
  } catch (err) {
    for (const p of [alice, bob]) {
      if (p.page) await p.shot('FAILED').catch(() => {});
      console.error(p.dumpLogs());
      const heard = await events(p).catch(() => 'page gone');
      const links = await stats(p).catch(() => 'page gone');
      console.error(`--- ${p.userID} heard ${JSON.stringify(heard)}\n--- peer connections ${JSON.stringify(links)}`);
    }
    throw err;
  } finally {
    await Promise.all([alice.close(), bob.close()]);
  }
}

/** Alice calls Bob (video) and waits until it rings on Bob's side. */
async function ring(alice, bob) {
  await alice.page.getByTestId('callee-input').fill('bob');
  await alice.page.getByTestId('call-video').click();
  await bob.waitFor('[data-testid="incoming"]');
}

/** Bob accepts; returns when both see the other's video flowing. */
async function acceptAndWatch(alice, bob) {
  const accepted = Date.now();
  await bob.page.getByTestId('accept').click();
  await Promise.all([alice.waitFor('body[data-call="connected"]'), bob.waitFor('body[data-call="connected"]')]);
  await Promise.all([
    waitForFramesSince(alice, 'bob', accepted, FLOWING, 20_000),
    waitForFramesSince(bob, 'alice', accepted, FLOWING, 20_000),
  ]);
  return accepted;
}

/** Every address `person`'s live peer connections know of the other side. */
async function remoteAddresses(person) {
  return (await stats(person)).flatMap((pc) => pc.remotes.map((c) => c.address));
}

/** Once alice's connection has learned bob's (relay) candidates, none carries a host address of bob's, while it still rings. */
async function assertRingingRevealsNothing(alice, bob) {
  let seen = [];
  for (const deadline = Date.now() + 10_000; !seen.length; await new Promise((r) => setTimeout(r, 100))) {
    assert.ok(Date.now() < deadline, 'alice learned no candidate of bob while ringing');
    seen = await remoteAddresses(alice);
  }
  assert.equal(await bob.page.evaluate(() => document.body.dataset.call), 'incoming', 'still ringing');
  for (const address of HOST_ADDRESSES.b) {
    assert.ok(!seen.includes(address), `alice saw bob's address ${address} while ringing (${seen})`);
  }
}

/** Both sides' one connection selected a pair with a relay candidate; the pairs. */
async function assertRelayed(alice, bob) {
  const pairs = [];
  for (const p of [alice, bob]) {
    const [pc, ...more] = await stats(p);
    assert.equal(more.length, 0, `${p.userID}: one peer connection`);
    assert.ok(pc.selected, `${p.userID}: a selected candidate pair`);
    const types = [pc.selected.local.type, pc.selected.remote.type];
    assert.ok(types.includes('relay'), `${p.userID}: the selected pair relays (${JSON.stringify(pc.selected)})`);
    pairs.push(pc.selected);
  }
  return pairs;
}

async function hangUp(alice, bob) {
  await alice.page.getByTestId('btn-hangup').click();
  await Promise.all([alice, bob].map((p) => p.waitFor('body[data-screen="home"][data-call="idle"]')));
}

test('a video call between hosts that cannot reach each other connects through the TURN relay', { skip: NO_TURN_FLAGS }, async () => {
  await withPair('relay-call', viaTurn, async (alice, bob) => {
    await ring(alice, bob);
    await acceptAndWatch(alice, bob);
    await assertRelayed(alice, bob);
    await alice.shot('connected');
    await hangUp(alice, bob);
  });
});

// Networks that let nothing but TCP, or nothing but TLS, out: the relay is reached that way.
for (const [transport, server, protocol] of [['TCP', () => viaTcpTurn, 'tcp'], ['TLS (turns:)', () => viaTlsTurn, 'tls']]) {
  test(`with TURN over ${transport} as the only relay, the call connects through it`, { skip: NO_TURN_FLAGS }, async () => {
    await withPair(`relay-${protocol}`, server(), async (alice, bob) => {
      await ring(alice, bob);
      await acceptAndWatch(alice, bob);
      const pairs = await assertRelayed(alice, bob);
      const over = pairs.filter((pair) => pair.local.type === 'relay' && pair.local.relayProtocol === protocol);
      assert.ok(over.length > 0, `a side relays over its ${protocol} allocation: ${JSON.stringify(pairs)}`);
      await hangUp(alice, bob);
    });
  });
}

test('without TURN the call cannot connect: it is given up with 60009 and both sides leave it once, within a deadline', async () => {
  await withPair('relay-none', plain, async (alice, bob) => {
    await ring(alice, bob);
    const accepted = Date.now();
    await bob.page.getByTestId('accept').click();
    await Promise.all([alice, bob].map((p) => p.waitFor('body[data-screen="home"][data-call="idle"]', FAIL_MS)));
    const took = Date.now() - accepted;
    let gaveUp = 0;
    for (const [p, other] of [[alice, 'bob'], [bob, 'alice']]) {
      const heard = await events(p);
      const errors = heard.filter((e) => e.name === 'onError').map((e) => e.code);
      // The side that gives up says why; the other hears the call end from the server.
      assert.ok(errors.every((code) => code === 60009) && errors.length <= 1, `${p.userID}: errors ${errors}`);
      gaveUp += errors.length;
      assert.equal(heard.filter((e) => e.name === 'onUserLeave' && e.userID === other).length, 1, `${p.userID}: ${other} left once`);
      assert.equal(heard.filter((e) => e.name === 'onCallEnd').length, 1, `${p.userID}: the call ended once`);
      assert.equal(await p.videoCount(), 0, `${p.userID}: videos left after the call`);
      // Nothing could cross: neither ever saw a frame of the other.
      assert.equal(await p.page.evaluate((id) => window.probeFramesSince(id, 0).count, other), 0, `${p.userID}: frames of ${other}`);
    }
    assert.ok(gaveUp >= 1, 'a side gave up with 60009');
    console.log(`a call that cannot connect was given up and left on both sides ${took} ms after accept`);
  });
});

test('while the callee rings, the caller learns none of its addresses; after accept video flows', { skip: NO_TURN_FLAGS }, async () => {
  await withPair('relay-ringing', viaTurn, async (alice, bob) => {
    await ring(alice, bob);
    await assertRingingRevealsNothing(alice, bob);
    await acceptAndWatch(alice, bob);
    await hangUp(alice, bob);
  });
});

test('with a direct path too, an accepted call moves from the relay to it once settled, and the app hears nothing of it', { skip: NO_TURN_FLAGS }, async () => {
  await withPair('relay-widen', wideServer, async (alice, bob) => {
    await ring(alice, bob);
    await assertRingingRevealsNothing(alice, bob);
    await acceptAndWatch(alice, bob);
    // Bob's side widens a few seconds after the accept: both then select the direct link's pair.
    const direct = { alice: [HOST_ADDRESSES.a[1], HOST_ADDRESSES.b[1]], bob: [HOST_ADDRESSES.b[1], HOST_ADDRESSES.a[1]] };
    const onDirect = async (p) => {
      const [pc] = await stats(p);
      const pair = pc?.selected;
      return pair ? pair.local.type === 'host' && pair.remote.type === 'host' && pair.local.address === direct[p.userID][0] && pair.remote.address === direct[p.userID][1] : false;
    };
    let last = [];
    for (const deadline = Date.now() + 20_000; !(await onDirect(alice)) || !(await onDirect(bob)); await new Promise((r) => setTimeout(r, 200))) {
      last = [await stats(alice), await stats(bob)].map((l) => l.map((pc) => pc.selected));
      assert.ok(Date.now() < deadline, `the call did not move to the direct link: ${JSON.stringify(last)}`);
    }
    const moved = Date.now();
    await Promise.all([
      waitForFramesSince(alice, 'bob', moved, FLOWING, 20_000),
      waitForFramesSince(bob, 'alice', moved, FLOWING, 20_000),
    ]);
    for (const p of [alice, bob]) {
      const names = (await events(p)).map((e) => e.name);
      for (const name of ['onPeerMediaInterrupted', 'onError', 'onUserLeave', 'onCallEnd']) {
        assert.ok(!names.includes(name), `${p.userID} heard ${name}: ${names}`);
      }
    }
    await hangUp(alice, bob);
  }, wideBrowsers);
});
