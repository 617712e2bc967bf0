// Measurement helpers shared by both call-setup pages: one clock for every page on the machine,
// a first-presented-frame probe, and a count of camera/microphone openings.

/** Milliseconds on a clock shared by all pages of this machine. */
export const now = () => performance.timeOrigin + performance.now();

/** Every getUserMedia call, with when it started: proves when a side opened its devices. */
export const mediaOpenings = [];
/** When each getUserMedia call resolved (its devices open). */
export const mediaReady = [];
const realGetUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = (constraints) => {
  mediaOpenings.push(now());
  return realGetUserMedia(constraints).then((stream) => {
    mediaReady.push(now());
    return stream;
  });
};


/**
 * Every signaling frame sent or received on any WebSocket of the page, with its JSON `type`
 * (and for a relayed WebRTC signal, its `kind`: offer, answer, candidate):
 * splits a latency into the sender's own delay, the trip through the server, and the
 * receiver's delay before its event. The listener is added before the page's own, so it
 * stamps arrival before any handling.
 */
export const wire = [];
const parse = (data) => {
  try {
    return JSON.parse(data);
  } catch {
    return {};
  }
};
const typeOf = (data) => parse(data).type ?? '?';
const kindOf = (data) => parse(data).signal?.kind;
const RealWebSocket = window.WebSocket;
const timedListeners = new WeakMap();
window.WebSocket = class extends RealWebSocket {
  constructor(...args) {
    super(...args);
    // Past the override below: this stamp is not one of the page's own (timed) listeners.
    super.addEventListener('message', (e) => {
      const t = now();
      wire.push({ t, dir: 'in', type: typeOf(e.data), kind: kindOf(e.data) });
    });
  }

  send(data) {
    wire.push({ t: now(), dir: 'out', type: typeOf(data) });
    return super.send(data);
  }

  // The page's own message listeners are timed: how long its main thread spent on each frame
  // (which delays every frame behind it).
  addEventListener(type, listener, options) {
    if (type !== 'message' || typeof listener !== 'function') return super.addEventListener(type, listener, options);
    let timed = timedListeners.get(listener);
    if (!timed) {
      timed = function (e) {
        const start = now();
        try {
          return listener.call(this, e);
        } finally {
          wire.push({ t: start, dir: 'handled', type: typeOf(e.data), ms: now() - start });
        }
      };
      timedListeners.set(listener, timed);
    }
    return super.addEventListener(type, timed, options);
  }

  removeEventListener(type, listener, options) {
    return super.removeEventListener(type, timedListeners.get(listener) ?? listener, options);
  }
};


/**
 * When each remote video track first carried media: its `unmute` (the browser's first RTP
 * packet of it), or its `track` event if it came unmuted. Splits a first frame into the time
 * until the other side's packets arrive and the time to decode and present them.
 */
export const videoUnmutes = [];
const RealPeerConnection = window.RTCPeerConnection;
window.RTCPeerConnection = class extends RealPeerConnection {
  constructor(...args) {
    super(...args);
    super.addEventListener('track', ({ track }) => {
      if (track.kind !== 'video') return;
      if (!track.muted) videoUnmutes.push(now());
      else track.addEventListener('unmute', () => videoUnmutes.push(now()), { once: true });
    });
  }

  // close() runs on the main thread too; its duration is recorded with the frames.
  close() {
    const start = now();
    try {
      return super.close();
    } finally {
      wire.push({ t: start, dir: 'pcClose', type: 'close', ms: now() - start });
    }
  }
};

/**
 * Resolves with the shared-clock time at which the first frame of the first <video> that
 * appears inside `container` (or is already there) was presented for composition.
 */
export function firstFrameIn(container) {
  return new Promise((resolve) => {
    const watch = (video) => {
      video.requestVideoFrameCallback((_, meta) => resolve(performance.timeOrigin + meta.presentationTime));
    };
    const existing = container.querySelector('video');
    if (existing) return watch(existing);
    const observer = new MutationObserver(() => {
      const video = container.querySelector('video');
      if (video) {
        observer.disconnect();
        watch(video);
      }
    });
    observer.observe(container, { childList: true, subtree: true });
  });
}

/** A fresh record of one call's timestamps on this page. */
export function freshMarks() {
  return { call: null, invited: null, accept: null, answer: null, firstFrame: null, hangup: null, end: null };
}
