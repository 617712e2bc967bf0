// A media path that breaks and heals. Alice's browser runs on host a, Bob's on host b; both
// reach calling-server on the hub, and the only path between a and b is their direct link, so
// the call's media can only use it. Pulling that link (`ip link set … down`) interrupts the
// media while signaling stays up; plugging it back must heal the same call through the SDK's
// ICE restart, and a break longer than the SDK's give-up must end the call on both sides, once.
//
// Prints the time from `link up` to the first newly presented remote frame on each side, and,
// for comparison in the same topology, a fresh call's accept to first remote frame.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Person, DESKTOP, PHONE } from '../harness.mjs';
import { TestNetwork, rootInterfaces, INTERFACES, DIRECT_LINK, OUTPUT } from './network.mjs';
import { installProbe, waitForFramesSince, stats, events, waitForEvents } from './probe.mjs';

/** Deadline for either side to notice the pulled link (Chromium's ICE consent checks). */
const NOTICE_MS = 20_000;
/** Deadline for the call to heal once the link is back (the SDK restarts ICE within ~10 s). */
const HEAL_MS = 25_000;
/** Deadline for the SDK to give up a link that stays down (30 s after it noticed). */
const GIVE_UP_MS = 45_000;
/** Frames (at 20 fps) that must arrive after an event for media to count as flowing. */
const FLOWING = 10;
/** How many times the link is pulled and plugged back for the restore time (bench: more). */
const ROUNDS = Number(process.env.NETNS_ICE_ROUNDS || 2);
/** How many times host a goes offline and back in one call (bench: more). */
const NETWORK_ROUNDS = Number(process.env.NETNS_NETWORK_ROUNDS || 1);

const net = new TestNetwork('ice', { direct: true });
let alice;
let bob;
const measured = { restore: { alice: [], bob: [] }, fresh: { alice: [], bob: [] }, networkBack: { alice: [], bob: [] } };

before(async () => {
  net.up();
  const base = await net.startServer();
  const [browserA, browserB] = await Promise.all([net.launchBrowser('a', base), net.launchBrowser('b', base)]);
  alice = new Person(browserA, 'alice', DESKTOP, 'ice', base);
  bob = new Person(browserB, 'bob', PHONE, 'ice', base);
  for (const p of [alice, bob]) {
    await p.open();
    await installProbe(p);
    await p.signIn();
  }
});

after(async () => {
  const p50 = (xs) => [...xs].sort((x, y) => x - y)[Math.floor((xs.length - 1) / 2)];
  const all = (m) => [...m.alice, ...m.bob];
  if (all(measured.restore).length) {
    console.log(`link up → first remote frame (ms): alice ${measured.restore.alice.join(', ')}; bob ${measured.restore.bob.join(', ')}; p50 ${p50(all(measured.restore))}`);
  }
  if (all(measured.networkBack).length) {
    console.log(`host a's whole network back → first remote frame (ms): alice ${measured.networkBack.alice.join(', ')}; bob ${measured.networkBack.bob.join(', ')}; p50 ${p50(all(measured.networkBack))}`);
  }
  if (all(measured.fresh).length) {
    console.log(`fresh call, accept → first remote frame (ms): alice ${measured.fresh.alice.join(', ')}; bob ${measured.fresh.bob.join(', ')}; p50 ${p50(all(measured.fresh))}`);
  }
  writeFileSync(path.join(OUTPUT, 'ice-restore.json'), JSON.stringify(measured, null, 2));
  await net.down();
});

/** Runs `body`; on failure saves both pages' screenshots and prints their consoles. */
async function diagnosed(scenario, body) {
  try {
    await body();
  } catch (err) {
    for (const p of [alice, bob]) {
      p.scenario = scenario;
      await p.shot('FAILED').catch(() => {});
      console.error(p.dumpLogs());
    }
    throw err;
  }
}

/** Alice calls Bob (video), Bob accepts; returns when both see the other's video flowing. */
async function call() {
  await alice.page.getByTestId('callee-input').fill('bob');
  await alice.page.getByTestId('call-video').click();
  await bob.waitFor('[data-testid="incoming"]');
  const accepted = Date.now();
  await bob.page.getByTestId('accept').click();
  await Promise.all([alice.waitFor('body[data-call="connected"]'), bob.waitFor('body[data-call="connected"]')]);
  const [toAlice, toBob] = await Promise.all([
    waitForFramesSince(alice, 'bob', accepted, FLOWING, 20_000),
    waitForFramesSince(bob, 'alice', accepted, FLOWING, 20_000),
  ]);
  measured.fresh.alice.push(toAlice - accepted);
  measured.fresh.bob.push(toBob - accepted);
}

/** Both pages' live peer connections run over the direct link: its addresses at both ends. */
async function assertOnDirectLink() {
  for (const p of [alice, bob]) {
    const [pc, ...more] = await stats(p);
    assert.equal(more.length, 0, `${p.userID}: one peer connection`);
    assert.ok(pc.selected, `${p.userID}: a selected candidate pair`);
    assert.match(pc.selected.local.address, /^10\.77\.3\./, `${p.userID}: local end on the direct link`);
    assert.match(pc.selected.remote.address, /^10\.77\.3\./, `${p.userID}: remote end on the direct link`);
  }
}

/** Neither page heard the call end or its peer leave, and both still show the call. */
async function assertStillInCall() {
  for (const p of [alice, bob]) {
    for (const name of ['onUserLeave', 'onCallEnd']) {
      assert.deepEqual(await events(p, name), [], `${p.userID}: ${name}`);
    }
    assert.equal(await p.page.evaluate(() => document.body.dataset.call), 'connected', `${p.userID}: still in the call`);
    assert.notEqual(await p.page.evaluate(() => document.body.dataset.connection), 'reconnecting', `${p.userID}: signaling up`);
  }
}

test('the network is its own: no interface in the root namespace, no forwarding hub, no way out', () => {
  const ours = rootInterfaces().filter((name) => INTERFACES.includes(name));
  assert.deepEqual(ours, [], 'interfaces of the test network in the root namespace');
  const namespaces = new Set(['hub', 'a', 'b'].map((h) => net.ns(h)));
  for (const host of ['hub', 'a', 'b']) {
    // Every veth's other end is in one of our namespaces (`ip -d` names its namespace).
    const links = net.ip(host, '-o', '-d', 'link', 'show', 'type', 'veth').split('\n').filter(Boolean);
    assert.ok(links.length > 0, `${host}: has links`);
    for (const line of links) {
      const peerNs = line.match(/link-netns (\S+)/)?.[1];
      assert.ok(namespaces.has(peerNs), `${host}: veth whose peer is in ${peerNs}: ${line}`);
    }
    assert.doesNotMatch(net.ip(host, 'route', 'show'), /^default/m, `${host}: no default route`);
  }
  const forward = execFileSync('ip', ['netns', 'exec', net.ns('hub'), 'cat', '/proc/sys/net/ipv4/ip_forward'], { encoding: 'utf8' });
  assert.equal(forward.trim(), '0', 'the hub does not forward');
});

test('the direct link is pulled and plugged back: the call heals by itself, media flows again both ways', async () => {
  await diagnosed('ice-heal', async () => {
    await call();
    await assertOnDirectLink();

    for (let round = 1; round <= ROUNDS; round += 1) {
      net.setLink('a', DIRECT_LINK.a, 'down');
      await Promise.all([
        waitForEvents(alice, 'onPeerMediaInterrupted', 'bob', round, NOTICE_MS),
        waitForEvents(bob, 'onPeerMediaInterrupted', 'alice', round, NOTICE_MS),
      ]);
      await assertStillInCall();

      const plugged = Date.now();
      net.setLink('a', DIRECT_LINK.a, 'up');
      const [toAlice, toBob] = await Promise.all([
        waitForFramesSince(alice, 'bob', plugged, FLOWING, HEAL_MS),
        waitForFramesSince(bob, 'alice', plugged, FLOWING, HEAL_MS),
      ]);
      measured.restore.alice.push(toAlice - plugged);
      measured.restore.bob.push(toBob - plugged);
      await Promise.all([
        waitForEvents(alice, 'onPeerMediaRestored', 'bob', round, HEAL_MS),
        waitForEvents(bob, 'onPeerMediaRestored', 'alice', round, HEAL_MS),
      ]);
      await assertStillInCall();
      await assertOnDirectLink();
      // Each interruption is told once, and so is each recovery.
      for (const [p, other] of [[alice, 'bob'], [bob, 'alice']]) {
        for (const name of ['onPeerMediaInterrupted', 'onPeerMediaRestored']) {
          const heard = (await events(p, name)).filter((e) => e.userID === other);
          assert.equal(heard.length, round, `${p.userID}: ${name} after round ${round}`);
        }
      }
    }
    await alice.shot('healed');

    // For comparison: a fresh call's accept → first remote frame, in the same topology.
    await alice.page.getByTestId('btn-hangup').click();
    await Promise.all([alice, bob].map((p) => p.waitFor('body[data-screen="home"][data-call="idle"]')));
    await call();
    await alice.page.getByTestId('btn-hangup').click();
    await Promise.all([alice, bob].map((p) => p.waitFor('body[data-screen="home"][data-call="idle"]')));
  });
});

test('host a loses its whole network, signaling and media, then gets it back: the same call resumes and heals, media both ways', async () => {
  await diagnosed('network-back', async () => {
    const start = { alice: (await events(alice)).length, bob: (await events(bob)).length };
    /** `p`'s events named `name` since this test began. */
    const since = async (p, name) => (await events(p)).slice(start[p.userID]).filter((e) => e.name === name);
    await call();
    for (let round = 1; round <= NETWORK_ROUNDS; round += 1) {
      net.setOnline('a', false);
      // Alice's browser sees itself offline; both sides see the media stop.
      await alice.page.waitForFunction(() => !navigator.onLine, null, { timeout: NOTICE_MS });
      await Promise.all([
        waitForEvents(alice, 'onPeerMediaInterrupted', 'bob', (await events(alice, 'onPeerMediaInterrupted')).length + 1, NOTICE_MS),
        waitForEvents(bob, 'onPeerMediaInterrupted', 'alice', (await events(bob, 'onPeerMediaInterrupted')).length + 1, NOTICE_MS),
      ]);

      const back = Date.now();
      net.setOnline('a', true);
      const [toAlice, toBob] = await Promise.all([
        waitForFramesSince(alice, 'bob', back, FLOWING, HEAL_MS),
        waitForFramesSince(bob, 'alice', back, FLOWING, HEAL_MS),
      ]);
      measured.networkBack.alice.push(toAlice - back);
      measured.networkBack.bob.push(toBob - back);
      // Signaling came back on the same session, and nobody left the call.
      await alice.page.waitForFunction(() => document.body.dataset.connection !== 'reconnecting', null, { timeout: HEAL_MS });
      const reconnected = await since(alice, 'onReconnected');
      assert.ok(reconnected.length >= round && reconnected.every((e) => e.resumed === true), `alice resumed each time: ${JSON.stringify(reconnected)}`);
      for (const p of [alice, bob]) {
        for (const name of ['onUserLeave', 'onCallEnd', 'onError']) {
          assert.deepEqual(await since(p, name), [], `${p.userID}: ${name}`);
        }
        assert.equal(await p.page.evaluate(() => document.body.dataset.call), 'connected', `${p.userID}: still in the call`);
      }
      await assertOnDirectLink();
    }
    await alice.page.getByTestId('btn-hangup').click();
    await Promise.all([alice, bob].map((p) => p.waitFor('body[data-screen="home"][data-call="idle"]')));
  });
});

test('the direct link stays down past the give-up: both sides leave the call once, then can call again', async () => {
  await diagnosed('ice-give-up', async () => {
    const before = { alice: (await events(alice)).length, bob: (await events(bob)).length };
    const since = async (p) => (await events(p)).slice(before[p.userID]);
    await call();

    net.setLink('a', DIRECT_LINK.a, 'down');
    await Promise.all([
      alice.waitFor('body[data-screen="home"][data-call="idle"]', GIVE_UP_MS),
      bob.waitFor('body[data-screen="home"][data-call="idle"]', GIVE_UP_MS),
    ]);
    net.setLink('a', DIRECT_LINK.a, 'up');

    // Nobody believes they are still in a call: a new call rings at once, and is declined.
    await alice.page.getByTestId('callee-input').fill('bob');
    await alice.page.getByTestId('call-audio').click();
    await bob.waitFor('[data-testid="incoming"]');
    await bob.page.getByTestId('reject').click();
    await alice.waitFor('body[data-screen="home"][data-call="idle"]');

    let gaveUp = 0;
    for (const [p, other] of [[alice, 'bob'], [bob, 'alice']]) {
      const heard = await since(p);
      const count = (name) => heard.filter((e) => e.name === name && (e.userID === other || name === 'onCallEnd')).length;
      // The failed call's end only: the declined call ended with onReject.
      assert.equal(count('onPeerMediaInterrupted'), 1, `${p.userID}: interrupted once`);
      assert.equal(count('onUserLeave'), 1, `${p.userID}: ${other} left once`);
      assert.equal(count('onCallEnd'), 1, `${p.userID}: the call ended once`);
      const errors = heard.filter((e) => e.name === 'onError');
      assert.ok(errors.every((e) => e.code === 60009), `${p.userID}: only 60009 errors: ${JSON.stringify(errors)}`);
      assert.ok(errors.length <= 1, `${p.userID}: gave up at most once`);
      gaveUp += errors.length;
      assert.equal(await p.videoCount(), 0, `${p.userID}: videos left after the call`);
    }
    assert.ok(gaveUp >= 1, 'at least one side gave up with 60009');
  });
});
