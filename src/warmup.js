// Used by src/warmup.rs, which says why; kept short, as it ships as is. ES2019 syntax (no `?.`,
// no `??=`): the package's legacy entry carries it to bundlers that parse nothing newer.

// The canvas's width; the gate recognises its frames still in flight after opening.
const WIDTH = 64;

// Runs in a worker: drops every frame until opened; then drops warm-up frames still in flight
// and waits for the camera's key frame, or for 300 ms (the receiver then asks for a key frame).
// A receiver's transform (receive: true) passes every frame; a message asks for a key frame.
const GATE = `postMessage(0);
onrtctransform = ({ transformer: t }) => {
  const { port, width, receive } = t.options;
  if (receive) {
    port.onmessage = () => { if (t.sendKeyFrameRequest) t.sendKeyFrameRequest().catch(() => {}); };
    t.readable.pipeTo(t.writable);
    return;
  }
  let opened = 0, passing = false;
  port.onmessage = () => { opened = performance.now(); };
  t.readable.pipeThrough(new TransformStream({
    transform(frame, out) {
      if (!passing) {
        if (!opened || frame.getMetadata().width === width) return;
        if (frame.type !== 'key' && performance.now() - opened < 300) return;
        passing = true;
      }
      out.enqueue(frame);
    },
  })).pipeTo(t.writable);
};`;

let worker;
let started;
let ready = false;

// Gates are used only once the worker said it runs: one blocked by a CSP fails silently, and a
// gate whose worker never runs would never let a frame through. Resolves when it runs, failed,
// or after a second.
export function startGates() {
  if (typeof RTCRtpScriptTransform !== 'function') return Promise.resolve();
  if (started) return started;
  started = new Promise((resolve) => {
    setTimeout(resolve, 1000);
    try {
      worker = new Worker(URL.createObjectURL(new Blob([GATE], { type: 'text/javascript' })));
      worker.onmessage = () => resolve((ready = true));
      worker.onerror = resolve;
    } catch {
      resolve();
    }
  });
  return started;
}

// The canvas track shared by the senders whose gate is closed, stopped with the last of them.
let warm;
const closed = new Set();

export function closeGate(sender) {
  if (!ready || typeof RTCRtpScriptTransform !== 'function') return undefined;
  try {
    const { port1, port2 } = new MessageChannel();
    sender.transform = new RTCRtpScriptTransform(worker, { port: port2, width: WIDTH }, [port2]);
    closed.add(port1);
    if (!warm || warm.readyState !== 'live') warm = warmupTrack();
    sender.replaceTrack(warm).catch(() => {});
    return port1;
  } catch {
    return undefined;
  }
}

// Opens the gate (`open`: frames of the sender's next track go out) or gives it up (the
// connection closes); either way the sender no longer needs the canvas.
export function endGate(port, open) {
  if (open) port.postMessage(0);
  closed.delete(port);
  if (!closed.size && warm) warm.stop();
}

// A pass-through transform on a receiver, set when first needed (a live receiver takes one);
// its port asks the remote sender for a key frame.
export function keyFrameRequester(receiver) {
  if (!ready) return undefined;
  try {
    const { port1, port2 } = new MessageChannel();
    receiver.transform = new RTCRtpScriptTransform(worker, { port: port2, receive: true }, [port2]);
    return port1;
  } catch {
    return undefined;
  }
}

export function requestKeyFrame(port) {
  port.postMessage(0);
}

// Repainted 5 times a second until stopped: an encoder given no frame for 2 s gives its bitrate
// back, which would bring back the dropped first frame.
function warmupTrack() {
  const canvas = Object.assign(document.createElement('canvas'), { width: WIDTH, height: 48 });
  const context = canvas.getContext('2d');
  const track = canvas.captureStream().getVideoTracks()[0];
  let n = 0;
  const paint = () => {
    context.fillStyle = n++ % 2 ? '#000' : '#111';
    context.fillRect(0, 0, WIDTH, 48);
  };
  paint();
  const timer = setInterval(() => (track.readyState === 'live' ? paint() : clearInterval(timer)), 200);
  return track;
}

// x-google-start-bitrate on every video codec of every video section of a remote description:
// appended to the codec's a=fmtp line, or as a new one at the end of the section. A codec that
// already names one keeps it; line endings are kept.
const START = 'x-google-start-bitrate=1000';
export function withStartBitrate(sdp) {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  return sdp
    .split(/(?=^m=)/m)
    .map((section) => {
      if (!section.startsWith('m=video')) return section;
      const codecs = [...section.matchAll(/^a=rtpmap:(\d+) (?:VP8|VP9|H264|H265|AV1)\//gim)].map((m) => m[1]);
      const bare = codecs.filter((pt) => !section.includes(`${eol}a=fmtp:${pt} `));
      const out = section.replace(/^a=fmtp:(\d+) (.*?)(?=\r?$)/gm, (line, pt, params) =>
        codecs.includes(pt) && !params.includes('x-google-start-bitrate=') ? `${line};${START}` : line,
      );
      const added = bare.map((pt) => `a=fmtp:${pt} ${START}${eol}`).join('');
      return out.endsWith('\n') || !added ? out + added : out + eol + added.slice(0, -eol.length);
    })
    .join('');
}
