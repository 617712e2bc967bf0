// What the tests of group calls through the SFU share: placing a group call through the demo,
// waiting for every page at once (failing with every page's state, not the first's), and
// describing a page's recorded RTCPeerConnections (the harness's window.rtcStats) for a failure.

/** Media through the SFU with nine pages on two cores: ICE, DTLS, the first key frames. */
export const MEDIA_TIMEOUT = 60_000;

/** A sample, short enough for a failure message: each open connection's video streams. */
export function describe(sample) {
  const pcs = sample.open.map((pc, i) => {
    const out = pc.outboundVideo.map((o) => `${o.rid ?? '-'}@${o.mid}:${o.framesEncoded}f`).join(' ');
    const inb = pc.inboundVideo
      .map((x) => `${x.stream ?? '?'}@${x.mid}:${x.framesDecoded}f${x.receiving ? '' : '(not received)'}`)
      .join(' ');
    return `  pc${i} ${pc.connectionState}: out [${out}] in [${inb}]`;
  });
  return [`${sample.open.length} open of ${sample.created} created`, ...pcs].join('\n');
}

/** The page's call state and its last SDK events (the demo keeps them), for a failure's message. */
export function pageState(person) {
  return person.page.evaluate(() => {
    const events = (window.demoEvents || []).slice(-6).map((e) => `${e.name}${e.userID ? ` ${e.userID}` : ''}${e.code ? ` (${e.code})` : ''}`);
    return `screen ${document.body.dataset.screen}, call ${document.body.dataset.call}; last events: ${events.join(', ')}`;
  }).catch(() => 'page gone');
}

/** Runs `check` on every person at once; fails with every page's failure, not the first. */
export async function onEveryPage(people, check) {
  const results = await Promise.allSettled(people.map(check));
  const failed = results.filter((r) => r.status === 'rejected').map((r) => r.reason.message);
  if (failed.length) throw new Error(`${failed.length} of ${people.length} pages:\n${failed.join('\n\n')}`);
}

/** Each of `people` renders each other one with advancing frames (every video at once). */
export function everyoneSeesEveryone(people) {
  return onEveryPage(people, async (p) => {
    try {
      await Promise.all(others(people, p).map((id) => p.waitForVideo(id, MEDIA_TIMEOUT)));
    } catch (err) {
      const sample = await p.rtcStats().catch(() => null);
      err.message += `\n${p.userID}'s page: ${await pageState(p)}; connections: ${sample ? describe(sample) : '?'}`;
      throw err;
    }
  });
}

/** `caller` places a video call to `callees` through the demo, and they all accept. */
export async function groupCall(caller, callees) {
  await caller.page.getByTestId('callee-input').fill(callees.map((p) => p.userID).join(', '));
  await caller.page.getByTestId('call-video').click();
  await caller.waitFor('body[data-call="outgoing"]');
  await onEveryPage(callees, async (p) => {
    await p.waitFor('[data-testid="incoming"]');
    await p.page.getByTestId('accept').click();
  });
  await onEveryPage([caller, ...callees], waitConnected);
}

/** Waits until `person`'s call screen says connected; fails with the page's state. */
export async function waitConnected(person) {
  try {
    await person.waitFor('body[data-call="connected"]', MEDIA_TIMEOUT);
  } catch (err) {
    const sample = await person.rtcStats().catch(() => null);
    err.message += `\n${person.userID}'s page: ${await pageState(person)}; connections: ${sample ? describe(sample) : '?'}`;
    throw err;
  }
}

/** The user ids of `people` other than `p`. */
export const others = (people, p) => people.filter((o) => o !== p).map((o) => o.userID);
