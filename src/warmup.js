// Used by src/warmup.rs, which says why; kept short, as it ships as is.

const WIDTH = 64;
const HEIGHT = 48;

// Runs in a worker: drops every frame until opened; then drops warm-up frames still in flight
// and waits for the camera's key frame, or for 300 ms (the receiver then asks for a key frame).
const GATE = `onrtctransform = ({ transformer: t }) => {
  const { port, width } = t.options;
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

export function closeGate(sender) {
  if (typeof RTCRtpScriptTransform !== 'function') return undefined;
  try {
    worker ??= new Worker(URL.createObjectURL(new Blob([GATE], { type: 'text/javascript' })));
    const { port1, port2 } = new MessageChannel();
    sender.transform = new RTCRtpScriptTransform(worker, { port: port2, width: WIDTH }, [port2]);
    return port1;
  } catch {
    return undefined;
  }
}

export function openGate(port) {
  port.postMessage(0);
}

export function warmupTrack() {
  const canvas = document.createElement('canvas');
  canvas.width = WIDTH;
  canvas.height = HEIGHT;
  const context = canvas.getContext('2d');
  const track = canvas.captureStream().getVideoTracks()[0];
  let n = 0;
  const paint = () => {
    context.fillStyle = n++ % 2 ? '#000' : '#111';
    context.fillRect(0, 0, WIDTH, HEIGHT);
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
