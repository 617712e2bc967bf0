// The in-call controls in a group call through the SFU, driven through the demo page, as
// e2e/calls.test.mjs drives them in a 1:1 call: everything a participant changes reaches the
// others through the SFU's forwarding (a camera track replaced, a microphone switched) or the
// relayed media state, with the same events as in a mesh.
//
// - Camera off: the others' tiles of that person fall back to the avatar; on again: its video
//   plays again at every other page (the new camera track goes up the same SFU sender).
// - Microphone off and on: the others' tiles show it; its voice level (USER_VOICE_VOLUME, read
//   from the SFU connection's received tracks) reaches them while it is on.
// - Another microphone picked mid-call becomes the live one, and the others keep hearing it.
// (Switching to an audio call is for 1:1 calls only, which never use the SFU.)
// Screenshots go to test-output/e2e/<scenario>-<step>-<user>.png.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, withPeople, PHONE, STATE_TIMEOUT } from './harness.mjs';
import { MEDIA_TIMEOUT, onEveryPage, everyoneSeesEveryone, groupCall } from './sfu-calls.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

/** Waits until `viewer`'s tile of `userID` shows a voice level above 0 (the fake microphone beeps). */
async function waitForVoice(viewer, userID) {
  const bar = `${viewer.tile(userID)} [data-testid="tile-level"] > span`;
  try {
    await viewer.page.waitForFunction(
      (sel) => parseFloat(document.querySelector(sel)?.style.width || '0') > 0,
      bar,
      { timeout: MEDIA_TIMEOUT, polling: 100 },
    );
  } catch (err) {
    throw new Error(`${viewer.userID} never saw a voice level of ${userID}\n${err.message}`);
  }
}

test('in a group call through the SFU: camera off and on, microphone off and on with voice levels, '
  + 'another microphone', async () => {
  await withPeople(browser, 'sfu-4-controls', ['ada', 'bo', 'cy'].map((n) => [n, PHONE]), async (ada, bo, cy) => {
    const people = [ada, bo, cy];
    const watchers = [bo, cy];
    await groupCall(ada, watchers);
    await everyoneSeesEveryone(people);

    // Ada's camera off: the others fall back to her avatar; on again: her video plays again.
    await ada.page.getByTestId('btn-camera').click();
    await ada.waitFor('[data-testid="btn-camera"][aria-pressed="true"]');
    await onEveryPage(watchers, (p) => p.waitFor(`${p.tile('ada')}[data-video="off"]`));
    await bo.shot('01-ada-camera-off');
    await ada.page.getByTestId('btn-camera').click();
    await onEveryPage(watchers, async (p) => {
      await p.waitFor(`${p.tile('ada')}[data-video="on"]`);
      await p.waitForVideo('ada', MEDIA_TIMEOUT);
    });

    // Ada's microphone: her voice level reaches the others; muted, they see it off.
    await onEveryPage(watchers, (p) => waitForVoice(p, 'ada'));
    await ada.page.getByTestId('btn-mic').click();
    await ada.waitFor('[data-testid="btn-mic"][aria-pressed="true"]');
    await onEveryPage(watchers, (p) => p.waitFor(`${p.tile('ada')}[data-audio="off"]`));
    await cy.shot('02-ada-muted');
    await ada.page.getByTestId('btn-mic').click();
    await onEveryPage(watchers, (p) => p.waitFor(`${p.tile('ada')}[data-audio="on"]`));

    // Bo picks another microphone: it becomes his live one, and the others still hear him.
    await bo.page.getByTestId('btn-settings').click();
    await bo.waitFor('[data-testid="devices"]');
    const micBefore = await bo.liveCapture('audio');
    const picked = bo.page.locator('[data-testid="select-mic"] option').nth(1);
    const pickedId = await picked.getAttribute('value');
    assert.notEqual(pickedId, micBefore?.deviceId, 'the option picked is the microphone already in use');
    await bo.page.getByTestId('select-mic').selectOption({ index: 1 });
    await bo.page.waitForFunction((id) => window.liveCapture('audio')?.deviceId === id, pickedId, { timeout: STATE_TIMEOUT })
      .catch(async (err) => {
        throw new Error(`bo's microphone did not become ${pickedId}: now ${JSON.stringify(await bo.liveCapture('audio'))}\n${err.message}`);
      });
    // A level read after the switch: the bar is reset first, so an old reading does not count.
    await onEveryPage([ada, cy], async (p) => {
      await p.page.evaluate((sel) => { document.querySelector(sel).style.width = '0%'; },
        `${p.tile('bo')} [data-testid="tile-level"] > span`);
      await waitForVoice(p, 'bo');
    });

    for (const p of people) {
      assert.equal(await p.page.locator('[data-testid="notice"][data-kind="error"]').count(), 0, `${p.userID}: error shown`);
    }
    await Promise.all(people.map((p) => p.shot('03-after')));
  });
});
