//! Per-connection rate limit: a token bucket checked on every received frame.

use std::time::Instant;

/// Sustained messages per second a connection may send.
pub const RATE_PER_SEC: f64 = 50.0;
/// Messages a connection may send at once (an ICE trickle burst is ~20–40).
pub const BURST: f64 = 200.0;
/// Consecutive refused messages after which the connection is closed with 1008.
pub const FLOOD_CLOSE_AFTER: u32 = 100;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
    /// Refused messages since the last accepted one.
    strikes: u32,
}

/// What to do with one received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Drop it and say so.
    Refuse,
    /// The connection keeps flooding: close it.
    Close,
}

impl TokenBucket {
    pub fn new(now: Instant) -> Self {
        TokenBucket {
            tokens: BURST,
            last: now,
            strikes: 0,
        }
    }

    pub fn check(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * RATE_PER_SEC).min(BURST);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.strikes = 0;
            return Verdict::Allow;
        }
        self.strikes += 1;
        if self.strikes >= FLOOD_CLOSE_AFTER {
            Verdict::Close
        } else {
            Verdict::Refuse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refuse_then_refill() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(t0);
        for _ in 0..BURST as usize {
            assert_eq!(bucket.check(t0), Verdict::Allow);
        }
        assert_eq!(bucket.check(t0), Verdict::Refuse);
        // 100 ms at 50/s refills five messages.
        let t1 = t0 + Duration::from_millis(100);
        for _ in 0..5 {
            assert_eq!(bucket.check(t1), Verdict::Allow);
        }
        assert_eq!(bucket.check(t1), Verdict::Refuse);
    }

    #[test]
    fn steady_rate_is_never_refused() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(t0);
        for i in 0..10_000u64 {
            let at = t0 + Duration::from_millis(i * 20);
            assert_eq!(bucket.check(at), Verdict::Allow, "message {i}");
        }
    }

    #[test]
    fn sustained_flood_closes() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(t0);
        for _ in 0..BURST as usize {
            bucket.check(t0);
        }
        for _ in 1..FLOOD_CLOSE_AFTER {
            assert_eq!(bucket.check(t0), Verdict::Refuse);
        }
        assert_eq!(bucket.check(t0), Verdict::Close);
    }
}
