// Measurement helpers shared by both call-setup pages: one clock for every page on the machine,
// a first-presented-frame probe, and a count of camera/microphone openings.

/** Milliseconds on a clock shared by all pages of this machine. */
export const now = () => performance.timeOrigin + performance.now();

/** Every getUserMedia call, with when it started: proves when a side opened its devices. */
export const mediaOpenings = [];
const realGetUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = (constraints) => {
  mediaOpenings.push(now());
  return realGetUserMedia(constraints);
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
