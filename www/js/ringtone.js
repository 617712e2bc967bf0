// Ringtone: synthesised with WebAudio oscillators, so the demo ships no audio files.
//
// Two patterns: `incoming` (a bright double chirp, repeated) for the callee and `outgoing`
// (the classic ring-back tone, quieter) for the caller while the invitation rings.
// Browsers only let an AudioContext make sound after a user gesture, so `unlock()` is called
// from the sign-in click; a ring that arrives later can then play without another gesture.

const PATTERNS = {
  // [frequencies in Hz, on seconds, gain] bursts, then the cycle length in seconds.
  incoming: { bursts: [[[880, 1320], 0, 0.35], [[880, 1320], 0.45, 0.35]], cycle: 2.0, gain: 0.18 },
  outgoing: { bursts: [[[440, 480], 0, 1.5]], cycle: 4.0, gain: 0.06 },
};

export class Ringtone {
  constructor() {
    this.ctx = null;
    this.timer = null;
    this.nodes = [];
    this.kind = '';
  }

  /** Creates/resumes the AudioContext; call from a user gesture. */
  unlock() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    if (!this.ctx) this.ctx = new Ctx();
    if (this.ctx.state === 'suspended') this.ctx.resume().catch(() => {});
  }

  /** Starts ringing with the named pattern, replacing any ring already playing. */
  start(kind) {
    this.stop();
    this.kind = kind;
    document.body.dataset.ringtone = kind;
    const pattern = PATTERNS[kind];
    if (!pattern) return;
    this.unlock();
    if (!this.ctx) return;
    const ring = () => this.scheduleCycle(pattern);
    ring();
    this.timer = setInterval(ring, pattern.cycle * 1000);
  }

  /** Silences the ring at once (on answer, decline, cancel, time-out or hang-up). */
  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const node of this.nodes) {
      try { node.stop(); } catch { /* already stopped */ }
    }
    this.nodes = [];
    this.kind = '';
    delete document.body.dataset.ringtone;
  }

  scheduleCycle(pattern) {
    const ctx = this.ctx;
    const t0 = ctx.currentTime + 0.02;
    // Forget oscillators that have finished so the list does not grow during a long ring.
    this.nodes = this.nodes.filter((n) => !n.done);
    for (const [freqs, at, length] of pattern.bursts) {
      const gain = ctx.createGain();
      gain.connect(ctx.destination);
      // Short ramps avoid the click a hard on/off makes.
      gain.gain.setValueAtTime(0, t0 + at);
      gain.gain.linearRampToValueAtTime(pattern.gain, t0 + at + 0.02);
      gain.gain.setValueAtTime(pattern.gain, t0 + at + length - 0.03);
      gain.gain.linearRampToValueAtTime(0, t0 + at + length);
      for (const f of freqs) {
        const osc = ctx.createOscillator();
        osc.type = 'sine';
        osc.frequency.value = f;
        osc.connect(gain);
        osc.onended = () => { osc.done = true; gain.disconnect(); };
        osc.start(t0 + at);
        osc.stop(t0 + at + length);
        this.nodes.push(osc);
      }
    }
  }
}
