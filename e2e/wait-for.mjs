// Waits until an HTTP URL answers 200, or exits 1 after a deadline.
// Usage: node e2e/wait-for.mjs URL [SECONDS] [PID]; with PID, also fails at once if that
// process exits first (a server that crashed at start-up should not cost the whole deadline).
const [url, seconds = '30', pid] = process.argv.slice(2);
const deadline = Date.now() + Number(seconds) * 1000;

function alive(p) {
  try {
    process.kill(Number(p), 0);
    return true;
  } catch {
    return false;
  }
}

while (Date.now() < deadline) {
  if (pid && !alive(pid)) {
    console.error(`process ${pid} exited before ${url} answered`);
    process.exit(1);
  }
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    if (res.ok) process.exit(0);
  } catch {
    // not listening yet
  }
  await new Promise((r) => setTimeout(r, 100));
}
console.error(`${url} did not answer within ${seconds} s`);
process.exit(1);
