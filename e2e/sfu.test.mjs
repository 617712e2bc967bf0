// The SFU with real Chromium on the other end: three pages speak calling-server's protocol
// directly (no SDK), make a group call, and each connects once to the SFU (trickling its ICE
// candidates), sending its camera as three simulcast encodings. Each must render the other two, know whose video is whose by
// the stream id (the user id), and send exactly one video stream; a member who hangs up has
// its tracks stopped at the others. This pins what the SDK's group calls will build on: that
// Chromium's offers and answers and str0m's work together, simulcast included.
//
// Run through e2e/run.sh, whose calling-server runs the SFU (`--sfu-udp`).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { BASE_URL, STATE_TIMEOUT, launchBrowser } from './harness.mjs';

/** Frames each page must render of each other participant. */
const ENOUGH_FRAMES = 30;
/** Media through the SFU on a loaded machine: ICE, DTLS and the first key frames. */
const MEDIA_TIMEOUT = 45_000;

// Everything below `inPage` runs in the page: a participant speaking the server's protocol.
function inPage() {
  const me = {
    ws: null,
    inbox: [],
    waiters: [],
    pc: null,
    roomId: null,
    nextRequest: 1,
    /** Rendered frames per stream id (the sender's user id). */
    frames: {},
    /** Our transceivers' mids per stream id, to see them stopped. */
    mids: {},
    errors: [],
  };
  window.me = me;

  function deliver(message) {
    const i = me.waiters.findIndex((w) => w.match(message));
    if (i >= 0) me.waiters.splice(i, 1)[0].resolve(message);
    else me.inbox.push(message);
  }
  me.next = (match, what) => {
    const i = me.inbox.findIndex(match);
    if (i >= 0) return Promise.resolve(me.inbox.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      me.waiters.push({ match, resolve });
      setTimeout(() => reject(new Error(`no ${what} in time`)), 20_000);
    });
  };
  me.send = (message) => me.ws.send(JSON.stringify(message));

  me.login = async (userID) => {
    const { sdkAppID } = await (await fetch('/dev/config')).json();
    const { userSig } = await (await fetch(`/dev/usersig?userID=${userID}`)).json();
    me.ws = new WebSocket(`ws://${location.host}/ws`);
    me.ws.onmessage = (e) => deliver(JSON.parse(e.data));
    await new Promise((resolve, reject) => {
      me.ws.onopen = resolve;
      me.ws.onerror = () => reject(new Error('the socket did not open'));
    });
    me.send({ type: 'login', sdkAppId: sdkAppID, userId: userID, userSig, protocolVersion: 1 });
    const ok = await me.next((m) => m.type === 'loginOk' || m.type === 'error', 'loginOk');
    if (ok.type !== 'loginOk') throw new Error(`login refused: ${ok.message}`);
    // The SFU's offers arrive whenever a member's tracks come or go: answer each.
    me.onSfuOffer();
    return ok;
  };

  me.invite = async (userIds) => {
    const requestId = me.nextRequest++;
    me.send({ type: 'invite', requestId, userIds, callType: 'video', isGroup: true });
    const sent = await me.next((m) => m.type === 'inviteSent' && m.requestId === requestId, 'inviteSent');
    me.roomId = sent.roomId;
    return sent.roomId;
  };

  me.acceptInvitation = async () => {
    const invited = await me.next((m) => m.type === 'invited', 'an invitation');
    const requestId = me.nextRequest++;
    me.send({ type: 'accept', requestId, inviteId: invited.inviteId });
    const joined = await me.next((m) => m.type === 'joined' && m.requestId === requestId, 'joined');
    me.roomId = joined.roomId;
    return joined.roomId;
  };

  function render(track, stream) {
    const who = stream.id;
    if (track.kind !== 'video') return;
    const video = document.createElement('video');
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    video.srcObject = new MediaStream([track]);
    document.body.append(video);
    me.frames[who] = me.frames[who] || 0;
    const count = () => {
      me.frames[who] += 1;
      video.requestVideoFrameCallback(count);
    };
    video.requestVideoFrameCallback(count);
    video.play().catch((e) => me.errors.push(`play: ${e.message}`));
  }

  me.joinSfu = async () => {
    const media = await navigator.mediaDevices.getUserMedia({
      audio: true,
      video: { width: 1280, height: 720 },
    });
    const pc = new RTCPeerConnection();
    me.pc = pc;
    pc.ontrack = (e) => {
      const stream = e.streams[0];
      if (!stream) return;
      (me.mids[stream.id] = me.mids[stream.id] || []).push(e.transceiver.mid);
      render(e.track, stream);
    };
    pc.addTransceiver(media.getAudioTracks()[0], { direction: 'sendonly' });
    pc.addTransceiver(media.getVideoTracks()[0], {
      direction: 'sendonly',
      sendEncodings: [
        { rid: 'l', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
        { rid: 'm', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
        { rid: 'h', maxBitrate: 1_500_000 },
      ],
    });
    // Candidates trickle, as the SDK sends them: each after the offer, as it is gathered.
    pc.onicecandidate = (e) => {
      if (!e.candidate) return;
      const { candidate, sdpMid, sdpMLineIndex } = e.candidate;
      me.send({ type: 'sfu', roomId: me.roomId, signal: { kind: 'candidate', candidate, sdpMid, sdpMLineIndex } });
    };
    await pc.setLocalDescription(await pc.createOffer());
    // A new connection's first offer joins.
    me.send({ type: 'sfu', roomId: me.roomId, signal: { kind: 'offer', sdp: pc.localDescription.sdp }, join: true });
    const reply = await me.next(
      (m) => m.type === 'error' || (m.type === 'sfu' && m.signal.kind === 'answer'),
      "the SFU's answer",
    );
    if (reply.type === 'error') throw new Error(`sfu offer refused: ${reply.code} ${reply.message}`);
    await pc.setRemoteDescription({ type: 'answer', sdp: reply.signal.sdp });
  };

  me.onSfuOffer = async () => {
    for (;;) {
      const offer = await me
        .next((m) => m.type === 'sfu' && m.signal.kind === 'offer', 'an SFU offer')
        .catch(() => null);
      if (!offer) continue;
      try {
        await me.pc.setRemoteDescription({ type: 'offer', sdp: offer.signal.sdp });
        await me.pc.setLocalDescription(await me.pc.createAnswer());
        me.send({
          type: 'sfu',
          roomId: me.roomId,
          signal: { kind: 'answer', sdp: me.pc.localDescription.sdp },
        });
      } catch (e) {
        me.errors.push(`renegotiation: ${e.message}`);
      }
    }
  };

  /** What arrives per stream id (for a failure's message): packets and frames decoded. */
  me.inbound = async () => {
    const stats = await me.pc.getStats();
    const byMid = Object.fromEntries(
      Object.entries(me.mids).flatMap(([user, mids]) => mids.map((mid) => [mid, user])),
    );
    return [...stats.values()]
      .filter((s) => s.type === 'inbound-rtp')
      .map((s) => `${byMid[s.mid]}/${s.kind}: ${s.packetsReceived} packets, ${s.framesDecoded ?? '-'} frames`);
  };

  /** Our outbound video streams, as getStats reports them. */
  me.outboundVideo = async () => {
    const stats = await me.pc.getStats();
    return [...stats.values()]
      .filter((s) => s.type === 'outbound-rtp' && s.kind === 'video')
      .map((s) => ({ rid: s.rid, mid: s.mid, bytesSent: s.bytesSent, active: s.active }));
  };

  /** Whether every transceiver that carried `user`'s media is stopped (Chromium also drops
   * stopped transceivers once the negotiation that stopped them completes). */
  me.stoppedFrom = (user) => {
    const mids = me.mids[user] || [];
    const live = me.pc
      .getTransceivers()
      .filter((t) => mids.includes(t.mid) && t.currentDirection !== 'stopped');
    return mids.length > 0 && live.length === 0;
  };
}

async function openParticipant(browser, userID) {
  const context = await browser.newContext();
  await context.grantPermissions(['camera', 'microphone'], { origin: BASE_URL });
  const page = await context.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
  await page.goto(`${BASE_URL}/healthz`);
  await page.evaluate(inPage);
  const ok = await page.evaluate((id) => window.me.login(id), userID);
  return { userID, context, page, logs, loginOk: ok };
}

/** Waits until every page has rendered ENOUGH_FRAMES of each of `others`. */
async function waitForVideo(people, others) {
  for (const p of people) {
    const from = others.filter((o) => o !== p.userID);
    try {
      await p.page.waitForFunction(
        ({ from, enough }) => from.every((u) => (window.me.frames[u] || 0) >= enough),
        { from, enough: ENOUGH_FRAMES },
        { timeout: MEDIA_TIMEOUT, polling: 200 },
      );
    } catch (e) {
      const seen = [];
      for (const q of people) {
        seen.push(await q.page.evaluate(async () => ({
          frames: window.me.frames,
          inbound: await window.me.inbound(),
          outbound: await window.me.outboundVideo(),
          errors: window.me.errors,
        })));
      }
      throw new Error(`${p.userID} did not render ${from.join(', ')}: ${JSON.stringify(seen, null, 1)}`);
    }
  }
}

test('group call through the SFU: each sends one simulcast video and renders the others; a leaver is stopped', async () => {
  const browser = await launchBrowser();
  try {
    const names = ['ann', 'bob', 'cat'];
    const people = [];
    for (const name of names) people.push(await openParticipant(browser, name));
    for (const p of people) assert.equal(p.loginOk.sfu, true, `${p.userID}: the server says it runs an SFU`);
    const [ann, bob, cat] = people;

    const room = await ann.page.evaluate(() => window.me.invite(['bob', 'cat']));
    assert.equal(await bob.page.evaluate(() => window.me.acceptInvitation()), room);
    assert.equal(await cat.page.evaluate(() => window.me.acceptInvitation()), room);
    for (const p of people) await p.page.evaluate(() => window.me.joinSfu());

    await waitForVideo(people, names);

    // One video stream per sender: one m-line, its three encodings, each one sending.
    for (const p of people) {
      const outbound = await p.page.evaluate(() => window.me.outboundVideo());
      assert.deepEqual(
        outbound.map((o) => o.rid).sort(),
        ['h', 'l', 'm'],
        `${p.userID} sends three encodings: ${JSON.stringify(outbound)}`,
      );
      assert.equal(new Set(outbound.map((o) => o.mid)).size, 1, `${p.userID}: all on one m-line`);
    }

    // cat hangs up: the SFU stops her tracks at ann and bob, who go on seeing each other.
    await cat.page.evaluate(() => window.me.send({ type: 'hangup', roomId: window.me.roomId }));
    for (const p of [ann, bob]) {
      await p.page.waitForFunction(() => window.me.stoppedFrom('cat'), null, { timeout: STATE_TIMEOUT, polling: 200 });
    }
    const before = await Promise.all([ann, bob].map((p) => p.page.evaluate(() => ({ ...window.me.frames }))));
    for (const [i, p] of [ann, bob].entries()) {
      const other = p === ann ? 'bob' : 'ann';
      await p.page.waitForFunction(
        ({ other, base, enough }) => (window.me.frames[other] || 0) >= base + enough,
        { other, base: before[i][other], enough: ENOUGH_FRAMES },
        { timeout: MEDIA_TIMEOUT, polling: 200 },
      );
    }
    for (const p of people) {
      const errors = await p.page.evaluate(() => window.me.errors);
      assert.deepEqual(errors, [], `${p.userID}: no renegotiation failed`);
    }
  } finally {
    await browser.close();
  }
});
