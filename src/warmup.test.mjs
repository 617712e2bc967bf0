// Unit tests of warmup.js's description edit (node --test; the rest of warmup.js needs a
// browser and is covered by tests/preconnect.rs).
import test from 'node:test';
import assert from 'node:assert/strict';
import { withStartBitrate } from './warmup.js';

const OFFER = [
  'v=0',
  'o=- 1 2 IN IP4 127.0.0.1',
  's=-',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111',
  'a=rtpmap:111 opus/48000/2',
  'a=fmtp:111 minptime=10;useinbandfec=1',
  'm=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 45',
  'a=rtpmap:96 VP8/90000',
  'a=rtcp-fb:96 nack pli',
  'a=rtpmap:97 rtx/90000',
  'a=fmtp:97 apt=96',
  'a=rtpmap:98 H264/90000',
  'a=fmtp:98 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
  'a=rtpmap:99 red/90000',
  'a=rtpmap:45 AV1/90000',
  'a=fmtp:45 level-idx=5;profile=0;tier=0',
  '',
].join('\r\n');

test('every video codec gets the start bitrate, and nothing else changes', () => {
  const expected = `${OFFER}a=fmtp:96 x-google-start-bitrate=1000\r\n`
    .replace('profile-level-id=42e01f\r\n', 'profile-level-id=42e01f;x-google-start-bitrate=1000\r\n')
    .replace('tier=0\r\n', 'tier=0;x-google-start-bitrate=1000\r\n');
  assert.equal(withStartBitrate(OFFER), expected);
});

test('audio and protection codecs are left alone', () => {
  const out = withStartBitrate(OFFER);
  assert.ok(out.includes('a=fmtp:111 minptime=10;useinbandfec=1\r\n'));
  assert.ok(out.includes('a=fmtp:97 apt=96\r\n'));
  assert.ok(!out.includes('a=fmtp:99'));
});

test('a start bitrate already named is kept, and editing twice changes nothing', () => {
  const once = withStartBitrate(OFFER);
  assert.equal(withStartBitrate(once), once);
  const named = 'm=video 9 RTP/SAVPF 96\na=rtpmap:96 VP8/90000\na=fmtp:96 x-google-start-bitrate=2500\n';
  assert.equal(withStartBitrate(named), named);
});

test('a description without video is returned unchanged', () => {
  const audioOnly = 'v=0\nm=audio 9 UDP/TLS/RTP/SAVPF 111\na=rtpmap:111 opus/48000/2\n';
  assert.equal(withStartBitrate(audioOnly), audioOnly);
});

test('payload types are per section: 96 in audio is not the video codec 96', () => {
  const sdp = 'm=audio 9 RTP/SAVPF 96\na=rtpmap:96 telephone-event/8000\na=fmtp:96 0-15\n'
    + 'm=video 9 RTP/SAVPF 96\na=rtpmap:96 VP8/90000\n';
  const out = withStartBitrate(sdp);
  assert.ok(out.includes('a=fmtp:96 0-15\n'), out);
  assert.ok(out.endsWith('a=rtpmap:96 VP8/90000\na=fmtp:96 x-google-start-bitrate=1000\n'), out);
});

test('a video section followed by another gets its line before the next', () => {
  const sdp = 'm=video 9 RTP/SAVPF 96\na=rtpmap:96 VP8/90000\nm=audio 9 RTP/SAVPF 111\na=rtpmap:111 opus/48000/2';
  assert.equal(
    withStartBitrate(sdp),
    'm=video 9 RTP/SAVPF 96\na=rtpmap:96 VP8/90000\na=fmtp:96 x-google-start-bitrate=1000\n'
      + 'm=audio 9 RTP/SAVPF 111\na=rtpmap:111 opus/48000/2',
  );
});

test('a last video section without a final line ending keeps none', () => {
  const sdp = 'v=0\r\nm=video 9 RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000';
  assert.equal(withStartBitrate(sdp), `${sdp}\r\na=fmtp:96 x-google-start-bitrate=1000`);
});
