// Writes a WAV file of a steady 440 Hz tone (1 s, 16 kHz, 16-bit mono) to the path given: the
// sound of the browser tests' fake microphones.
import { writeFileSync } from 'node:fs';

const rate = 16000;
const samples = rate;
const data = Buffer.alloc(samples * 2);
for (let i = 0; i < samples; i += 1) {
  data.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate)), i * 2);
}
const header = Buffer.alloc(44);
header.write('RIFF', 0);
header.writeUInt32LE(36 + data.length, 4);
header.write('WAVEfmt ', 8);
header.writeUInt32LE(16, 16); // fmt chunk size
header.writeUInt16LE(1, 20); // PCM
header.writeUInt16LE(1, 22); // mono
header.writeUInt32LE(rate, 24);
header.writeUInt32LE(rate * 2, 28); // bytes per second
header.writeUInt16LE(2, 32); // bytes per frame
header.writeUInt16LE(16, 34); // bits per sample
header.write('data', 36);
header.writeUInt32LE(data.length, 40);
writeFileSync(process.argv[2], Buffer.concat([header, data]));
