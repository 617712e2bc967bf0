//! A page whose Content-Security-Policy forbids workers (`worker-src 'none'`), so the SDK's
//! encoded-frame worker cannot start: no sender is gated or warmed, and calls connect and carry
//! video exactly as without the warm-up.
//!
//! The SDK starts its worker once per page, so the policy needs a page of its own: an iframe
//! whose document carries the CSP and loads the built npm package (its own module instance).
//! The iframe records every policy violation and every worker its code constructs, so the test
//! proves the worker was refused, not only that the policy was written.

use crate::common::*;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, deadlineMs, cond) {
  const end = Date.now() + deadlineMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${deadlineMs} ms`);
    await sleep(20);
  }
}

// A same-origin iframe whose own CSP forbids workers, with recorders installed before any
// of the package's code runs in it.
async function blockedPage() {
  const frame = document.createElement('iframe');
  frame.srcdoc = `<!doctype html><meta http-equiv="Content-Security-Policy" content="worker-src 'none'"><body></body>`;
  const loaded = new Promise((r) => frame.addEventListener('load', r, { once: true }));
  document.body.appendChild(frame);
  await loaded;
  const w = frame.contentWindow;
  const seen = { violations: [], workers: 0, workerThrew: 0, workerErrors: 0, workerMessages: 0, peers: [] };
  w.document.addEventListener('securitypolicyviolation', (e) => seen.violations.push(e.effectiveDirective));
  const RealWorker = w.Worker;
  w.Worker = class extends RealWorker {
    constructor(...args) {
      seen.workers += 1;
      try {
        super(...args);
      } catch (e) {
        seen.workerThrew += 1;
        throw e;
      }
      this.addEventListener('error', () => { seen.workerErrors += 1; });
      this.addEventListener('message', () => { seen.workerMessages += 1; });
    }
  };
  const RealPeer = w.RTCPeerConnection;
  w.RTCPeerConnection = class extends RealPeer {
    constructor(...args) { super(...args); seen.peers.push(this); }
  };
  return { frame, w, seen };
}

async function decodedFrames(pc) {
  let n = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') n += r.framesDecoded || 0;
  });
  return n;
}

// Runs a 1:1 video call between two instances of the package inside the blocked page and
// reports what happened; any step that does not happen by the deadline rejects.
export async function callInBlockedPage(pkgUrl, server, appId, deadlineMs) {
  const { frame, w, seen } = await blockedPage();
  try {
    const module = await new w.Function('url', 'return import(url)')(`${pkgUrl}/index.js`);
    const TRTCCalling = module.default;
    const stamp = Math.floor(Math.random() * 1e9);
    const make = async (name) => {
      const userID = `${name}_${stamp}`;
      const sdk = new TRTCCalling({ SDKAppID: appId, signalingUrl: `ws://${server}/ws` });
      const events = [];
      for (const e of new Set(Object.values(TRTCCalling.EVENT))) sdk.on(e, () => events.push(e));
      const sig = await (await fetch(`http://${server}/dev/usersig?sdkAppID=${appId}&userID=${userID}`)).json();
      await sdk.login({ userID, userSig: sig.userSig });
      return { userID, sdk, events };
    };
    const a = await make('alice');
    const b = await make('bob');
    const open = () => seen.peers.filter((pc) => pc.signalingState !== 'closed');
    const senders = () => open().flatMap((pc) => pc.getSenders());

    await a.sdk.call({ userID: b.userID, type: 2 });
    await until('INVITED in the blocked page', deadlineMs, () => b.events.includes('onInvited'));
    await until('both connections up while ringing', deadlineMs,
      () => open().filter((pc) => pc.connectionState === 'connected').length === 2);
    await until("the caller's camera and microphone", deadlineMs, () => a.sdk.__localTracks().length === 2);
    const sendersWithTrackWhileRinging = senders().filter((s) => s.track !== null).length;

    await b.sdk.accept();
    await until('video frames decoded both ways', deadlineMs,
      async () => (await Promise.all(open().map(decodedFrames))).every((n) => n > 0) && open().length === 2);
    const sendersWithDevice = senders().filter((s) => s.track
      && !(s.track instanceof w.CanvasCaptureMediaStreamTrack)).length;

    await a.sdk.hangup();
    await until('CALL_END at the callee', deadlineMs, () => b.events.includes('onCallEnd'));
    await until('both connections closed', deadlineMs, () => open().length === 0);
    await a.sdk.logout();
    await b.sdk.logout();
    return {
      violations: seen.violations,
      workers: seen.workers,
      workerThrew: seen.workerThrew,
      workerErrors: seen.workerErrors,
      workerMessages: seen.workerMessages,
      sendersWithTrackWhileRinging,
      sendersWithDevice,
    };
  } finally {
    frame.remove();
  }
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = callInBlockedPage)]
    fn call_in_blocked_page(
        pkg_url: &str,
        server: &str,
        app_id: u32,
        deadline_ms: u32,
    ) -> js_sys::Promise;
}

#[wasm_bindgen_test::wasm_bindgen_test]
async fn with_workers_forbidden_nothing_is_gated_and_calls_still_carry_video() {
    let report = ok(
        call_in_blocked_page(PKG_URL, SERVER, SDK_APP_ID, DEADLINE_MS),
        "a call in a page that forbids workers",
    )
    .await;
    let n = |key: &str| get_num(&report, key);
    let what = canonical(&report);
    // The SDK tried to start its worker and the page's policy refused it: it never ran.
    assert!(
        n("workers") >= 1.0,
        "the SDK never constructed a worker: {what}"
    );
    assert!(
        js_sys::Array::from(&get(&report, "violations"))
            .iter()
            .any(|d| d.as_string().as_deref() == Some("worker-src")),
        "no worker-src violation: {what}"
    );
    assert!(
        n("workerThrew") + n("workerErrors") >= 1.0,
        "the worker did not fail: {what}"
    );
    assert_eq!(n("workerMessages"), 0.0, "the worker ran: {what}");
    // Without a running gate nothing is warmed: no canvas on any sender while it rings.
    assert_eq!(
        n("sendersWithTrackWhileRinging"),
        0.0,
        "a sender carried a track while ringing: {what}"
    );
    assert_eq!(
        n("sendersWithDevice"),
        4.0,
        "microphone and camera on both connections: {what}"
    );
}
