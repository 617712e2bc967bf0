// End-to-end scenarios: real people's flows through the demo page, each person in an
// independent Chromium context with fake camera and microphone, against a real calling-server.
// Screenshots of every step go to test-output/e2e/<scenario>-<step>-<user>.png.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, withPeople, Person, BASE_URL, DESKTOP, PHONE, STATE_TIMEOUT } from './harness.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

test('video call: ring, accept, both see video, mute shows on the other side, hang up', async () => {
  await withPeople(browser, '1-video-call', [['alice', DESKTOP], ['bob', PHONE]], async (alice, bob) => {
    await alice.shot('01-home');

    await alice.page.getByTestId('callee-input').fill('bob');
    await alice.page.getByTestId('call-video').click();
    await alice.waitFor('body[data-call="outgoing"]');
    await alice.waitFor(`${alice.tile('bob')}[data-joined="false"]`);

    // Bob's dialog names the caller and the call type, and it rings.
    await bob.waitFor('[data-testid="incoming"]');
    assert.equal(await bob.page.getByTestId('incoming-caller').textContent(), 'alice');
    assert.match(await bob.page.getByTestId('incoming-type').textContent(), /video call/i);
    assert.equal(await bob.page.evaluate(() => document.body.dataset.ringtone), 'incoming');
    await alice.waitForVideo('alice'); // own preview while ringing
    await alice.shot('02-calling');
    await bob.shot('02-incoming');

    await bob.page.getByTestId('accept').click();
    await bob.waitGone('[data-testid="incoming"]');
    await Promise.all([alice.waitFor('body[data-call="connected"]'), bob.waitFor('body[data-call="connected"]')]);
    assert.equal(await bob.page.evaluate(() => document.body.dataset.ringtone), undefined, 'ringtone stopped on answer');

    // Each sees the other's video with frames advancing, and their own.
    await Promise.all([alice.waitForVideo('bob'), bob.waitForVideo('alice'), bob.waitForVideo('bob')]);
    await alice.waitFor(`${alice.tile('bob')}[data-video="on"][data-audio="on"]`);
    await bob.waitFor(`${bob.tile('alice')}[data-video="on"][data-audio="on"]`);
    await bob.waitForText('call-timer', ':');
    await alice.shot('03-connected');
    await bob.shot('03-connected');

    // Alice mutes: her own tile and, through the network, Bob's tile of her show it.
    await alice.page.getByTestId('btn-mic').click();
    await alice.waitFor('[data-testid="btn-mic"][aria-pressed="true"]');
    await alice.waitFor(`${alice.tile('alice')}[data-audio="off"]`);
    await bob.waitFor(`${bob.tile('alice')}[data-audio="off"]`);
    await alice.shot('04-muted');
    await bob.shot('04-alice-muted');

    // Bob hangs up: both return to idle, the SDK removes every video it created.
    await bob.page.getByTestId('btn-hangup').click();
    await Promise.all([
      alice.waitFor('body[data-screen="home"][data-call="idle"]'),
      bob.waitFor('body[data-screen="home"][data-call="idle"]'),
    ]);
    await alice.waitForText('last-event', 'Call ended');
    await bob.waitForText('last-event', 'Call ended');
    assert.equal(await alice.videoCount(), 0, 'alice: videos left after the call');
    assert.equal(await bob.videoCount(), 0, 'bob: videos left after the call');
    await alice.shot('05-ended');
    await bob.shot('05-ended');
  });
});

test('rejected call: the caller is told, both return to idle', async () => {
  await withPeople(browser, '2-reject', [['carol', PHONE], ['dave', DESKTOP]], async (carol, dave) => {
    await carol.page.getByTestId('callee-input').fill('dave');
    await carol.page.getByTestId('call-audio').click();
    await carol.waitFor('body[data-call="outgoing"]');
    await dave.waitFor('[data-testid="incoming"]');
    assert.equal(await dave.page.getByTestId('incoming-caller').textContent(), 'carol');
    assert.match(await dave.page.getByTestId('incoming-type').textContent(), /audio call/i);
    await carol.shot('01-calling');
    await dave.shot('01-incoming');

    await dave.page.getByTestId('reject').click();
    await dave.waitGone('[data-testid="incoming"]');
    await carol.waitFor('[data-testid="notice"][data-kind="rejected"]');
    await carol.waitForText('notices', 'dave declined the call');
    await carol.waitFor('body[data-screen="home"][data-call="idle"]');
    await carol.waitForText('last-event', 'dave declined the call');
    await dave.waitFor('body[data-screen="home"][data-call="idle"]');
    assert.equal(await dave.page.evaluate(() => document.body.dataset.ringtone), undefined, 'ringtone stopped on reject');
    await carol.shot('02-rejected');
    await dave.shot('02-idle');
  });
});

test('group call: three people see each other; one leaves, the others stay; last hang-up ends it', async () => {
  const people = [['erin', DESKTOP], ['frank', PHONE], ['grace', DESKTOP]];
  await withPeople(browser, '3-group', people, async (erin, frank, grace) => {
    await erin.page.getByTestId('callee-input').fill('frank, grace');
    await erin.page.getByTestId('call-video').click();
    await erin.waitFor('body[data-call="outgoing"]');
    await Promise.all([frank.waitFor('[data-testid="incoming"]'), grace.waitFor('[data-testid="incoming"]')]);
    await frank.waitForText('incoming-group', 'grace');
    await erin.shot('01-calling');
    await frank.shot('01-incoming');

    await frank.page.getByTestId('accept').click();
    await grace.page.getByTestId('accept').click();
    const all = [erin, frank, grace];
    await Promise.all(all.map((p) => p.waitFor('body[data-call="connected"]')));

    // Everyone sees the two others' video moving.
    await Promise.all(all.flatMap((p) => all.filter((o) => o !== p).map((o) => p.waitForVideo(o.userID))));
    for (const p of all) {
      assert.equal(await p.page.locator('[data-testid="tile"][data-joined="true"]').count(), 2, `${p.userID}: remote tiles`);
    }
    await Promise.all(all.map((p) => p.shot('02-connected')));

    // Erin leaves; Frank and Grace stay connected to each other.
    await erin.page.getByTestId('btn-hangup').click();
    await erin.waitFor('body[data-screen="home"][data-call="idle"]');
    await Promise.all([frank.waitGone(frank.tile('erin')), grace.waitGone(grace.tile('erin'))]);
    await frank.waitFor('body[data-call="connected"]');
    await frank.waitForVideo('grace');
    await frank.shot('03-erin-left');

    // Frank hangs up: Grace is the last one left, so the call ends for her too.
    await frank.page.getByTestId('btn-hangup').click();
    await Promise.all([frank, grace].map((p) => p.waitFor('body[data-screen="home"][data-call="idle"]')));
    for (const p of all) assert.equal(await p.videoCount(), 0, `${p.userID}: videos left after the call`);
    await grace.shot('04-ended');
  });
});

test('busy, cancelled and kicked out: each is explained to the person it happens to', async () => {
  const people = [['hana', DESKTOP], ['ivan', PHONE], ['jack', DESKTOP]];
  await withPeople(browser, '4-busy-cancel-kick', people, async (hana, ivan, jack) => {
    await hana.page.getByTestId('callee-input').fill('ivan');
    await hana.page.getByTestId('call-audio').click();
    await ivan.waitFor('[data-testid="incoming"]');
    await ivan.page.getByTestId('accept').click();
    await Promise.all([hana.waitFor('body[data-call="connected"]'), ivan.waitFor('body[data-call="connected"]')]);
    await hana.shot('01-audio-call');

    // Jack calls Ivan, who is in a call: Jack is told, Ivan is not disturbed.
    await jack.page.getByTestId('callee-input').fill('ivan');
    await jack.page.getByTestId('call-video').click();
    await jack.waitFor('[data-testid="notice"][data-kind="busy"]');
    await jack.waitForText('last-event', 'ivan is busy');
    await jack.waitFor('body[data-screen="home"][data-call="idle"]');
    assert.equal(await ivan.page.getByTestId('incoming').isVisible(), false, 'ivan was disturbed');
    assert.equal(await ivan.page.evaluate(() => document.body.dataset.call), 'connected');
    await jack.shot('02-busy');

    // Ivan hangs up; Jack calls Hana and gives up before she answers.
    await ivan.page.getByTestId('btn-hangup').click();
    await hana.waitFor('body[data-screen="home"][data-call="idle"]');
    await jack.page.getByTestId('callee-input').fill('hana');
    await jack.page.getByTestId('call-video').click();
    await hana.waitFor('[data-testid="incoming"]');
    await jack.page.getByTestId('btn-hangup').click();
    await hana.waitGone('[data-testid="incoming"]');
    await hana.waitFor('[data-testid="notice"][data-kind="cancelled"]');
    await hana.waitForText('last-event', 'jack cancelled the call');
    assert.equal(await hana.page.evaluate(() => document.body.dataset.ringtone), undefined, 'ringtone stopped on cancel');
    await jack.waitFor('body[data-screen="home"][data-call="idle"]');
    await hana.shot('03-cancelled');

    // Ivan signs in again in another browser: this tab is signed out and says why.
    const ivan2 = new Person(browser, 'ivan', DESKTOP, '4-busy-cancel-kick-second');
    try {
      await ivan2.open();
      await ivan2.signIn();
      await ivan.waitFor('body[data-screen="login"]');
      await ivan.waitFor('[data-testid="notice"][data-kind="kicked"]');
      await ivan.shot('04-kicked');
    } finally {
      await ivan2.close();
    }
  });
});

test('in-call controls: camera off and on, device choice, switch to an audio call', async () => {
  await withPeople(browser, '5-controls', [['kim', DESKTOP], ['lee', PHONE]], async (kim, lee) => {
    await kim.page.getByTestId('callee-input').fill('lee');
    await kim.page.getByTestId('call-video').click();
    await lee.waitFor('[data-testid="incoming"]');
    await lee.page.getByTestId('accept').click();
    await Promise.all([kim.waitForVideo('lee'), lee.waitForVideo('kim')]);

    // Kim's camera off: Lee's tile of Kim falls back to the avatar; on again: video again.
    await kim.page.getByTestId('btn-camera').click();
    await kim.waitFor('[data-testid="btn-camera"][aria-pressed="true"]');
    await lee.waitFor(`${lee.tile('kim')}[data-video="off"]`);
    await lee.shot('01-kim-camera-off');
    await kim.page.getByTestId('btn-camera').click();
    await lee.waitFor(`${lee.tile('kim')}[data-video="on"]`);
    await lee.waitForVideo('kim');

    // The device lists show the fake devices; picking another microphone raises no error.
    await lee.page.getByTestId('btn-settings').click();
    await lee.waitFor('[data-testid="devices"]');
    const mics = await lee.page.locator('[data-testid="select-mic"] option').allTextContents();
    assert.ok(mics.length >= 2, `microphones listed: ${mics}`);
    const cameras = await lee.page.locator('[data-testid="select-camera"] option').allTextContents();
    assert.ok(cameras.length >= 1, `cameras listed: ${cameras}`);
    // The switch takes effect: the microphone live in Lee's page becomes the one picked.
    const micBefore = await lee.liveCapture('audio');
    const picked = lee.page.locator('[data-testid="select-mic"] option').nth(1);
    const [pickedId, pickedLabel] = [await picked.getAttribute('value'), await picked.textContent()];
    assert.notEqual(pickedId, micBefore?.deviceId, 'the option picked is the microphone already in use');
    await lee.page.getByTestId('select-mic').selectOption({ index: 1 });
    await lee.page.waitForFunction((id) => window.liveCapture('audio')?.deviceId === id, pickedId, { timeout: STATE_TIMEOUT })
      .catch(async (err) => {
        throw new Error(`lee's microphone did not become ${pickedLabel} (${pickedId}): was ${JSON.stringify(micBefore)}, `
          + `now ${JSON.stringify(await lee.liveCapture('audio'))}\n${err.message}`);
      });
    await lee.shot('02-devices');

    // Kim switches to audio: both sides follow, and no video tile is left on.
    await kim.page.getByTestId('btn-audio-only').click();
    await Promise.all([kim.waitForText('call-kind', 'Audio call'), lee.waitForText('call-kind', 'Audio call')]);
    await lee.waitFor(`${lee.tile('kim')}[data-video="off"]`);
    await kim.waitFor(`${kim.tile('lee')}[data-video="off"]`);
    assert.equal(await lee.page.locator('[data-testid="notice"][data-kind="error"]').count(), 0, 'lee: error shown');
    assert.equal(await kim.page.locator('[data-testid="notice"][data-kind="error"]').count(), 0, 'kim: error shown');
    await kim.shot('03-audio');
    await lee.shot('03-audio');

    await kim.page.getByTestId('btn-hangup').click();
    await Promise.all([kim, lee].map((p) => p.waitFor('body[data-screen="home"][data-call="idle"]')));
  });
});

test('a group call grows: one invitee declines, then a participant adds someone who joins', async () => {
  const people = [['pia', DESKTOP], ['quin', PHONE], ['rosa', DESKTOP], ['sam', PHONE]];
  await withPeople(browser, '6-group-add', people, async (pia, quin, rosa, sam) => {
    await pia.page.getByTestId('callee-input').fill('quin rosa');
    await pia.page.getByTestId('call-video').click();
    await Promise.all([quin.waitFor('[data-testid="incoming"]'), rosa.waitFor('[data-testid="incoming"]')]);
    await quin.page.getByTestId('accept').click();
    await rosa.page.getByTestId('reject').click();
    await pia.waitFor('[data-testid="notice"][data-kind="rejected"]');
    await pia.waitGone(pia.tile('rosa'));
    await pia.waitFor('body[data-call="connected"]');
    await pia.waitForVideo('quin');

    await pia.page.getByTestId('btn-add').click();
    await pia.page.getByTestId('invite-input').fill('sam');
    await pia.page.getByTestId('invite-submit').click();
    // Both members see the new invitee ringing.
    await pia.waitFor(`${pia.tile('sam')}[data-joined="false"]`);
    await quin.waitFor(`${quin.tile('sam')}[data-joined="false"]`);
    await pia.shot('01-adding-sam');

    await sam.waitFor('[data-testid="incoming"]');
    await sam.page.getByTestId('accept').click();
    await Promise.all([
      pia.waitForVideo('sam'), quin.waitForVideo('sam'), sam.waitForVideo('pia'), sam.waitForVideo('quin'),
    ]);
    assert.equal(await sam.page.getByTestId('call-title').textContent(), 'pia, quin');
    await pia.shot('02-three');
    await sam.shot('02-three');
  });
});

test('a plain-HTTP page: warned, still answers and receives video, publishing refused with 60007', async () => {
  // A real insecure origin on loopback: a name the browser maps to 127.0.0.1 (not localhost).
  // A page without camera/microphone permission gets its ICE host candidates as mDNS names
  // (`<uuid>.local`); on a LAN those resolve by multicast, but the loopback-only namespace has
  // no mDNS, so the test lets this browser show its (loopback) address instead. HTTPS-Upgrades
  // is off so the plain-HTTP address is loaded as typed.
  const insecureBrowser = await launchBrowser([
    '--host-resolver-rules=MAP insecure.test 127.0.0.1',
    '--disable-features=WebRtcHideLocalIpsWithMdns,HttpsUpgrades',
  ]);
  const insecureUrl = `${BASE_URL.replace('127.0.0.1', 'insecure.test')}/?debug`;
  try {
    const people = [['wendy', DESKTOP], ['xavi', PHONE, { browser: insecureBrowser, baseUrl: insecureUrl }]];
    await withPeople(browser, '7-insecure', people, async (wendy, xavi) => {
      assert.equal(await xavi.page.evaluate(() => window.isSecureContext), false, 'page should be insecure');
      // The sign-in card (now behind the home screen) carried the warning; Wendy's did not.
      const warned = (p) => p.page.getByTestId('insecure-warning').evaluate((el) => !el.hidden);
      assert.equal(await warned(xavi), true, 'xavi: insecure page not warned');
      assert.equal(await warned(wendy), false, 'wendy: secure page warned');
      await wendy.page.getByTestId('callee-input').fill('xavi');
      await wendy.page.getByTestId('call-video').click();
      await xavi.waitFor('[data-testid="incoming"]');
      await xavi.page.getByTestId('accept').click();
      await xavi.waitFor('[data-testid="notice"][data-kind="error"]');
      await xavi.waitForText('notices', '60007');
      // Receive-only: Xavi sees Wendy; his own publishing controls are disabled.
      await xavi.waitForVideo('wendy');
      assert.equal(await xavi.page.getByTestId('btn-mic').isDisabled(), true);
      assert.equal(await xavi.page.getByTestId('btn-camera').isDisabled(), true);
      await xavi.shot('01-receive-only');
      await wendy.page.getByTestId('btn-hangup').click();
      await xavi.waitFor('body[data-screen="home"][data-call="idle"]');
    });
  } finally {
    await insecureBrowser.close();
  }
});
