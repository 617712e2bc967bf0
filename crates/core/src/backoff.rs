//! How long to wait between attempts to get a lost signaling connection back, and when to stop.
//!
//! The first attempt is made at once (most losses are blips: a Wi-Fi handover, a proxy that
//! recycled the connection). After each failed attempt the wait doubles from
//! [`FIRST_RETRY_MS`] up to [`MAX_RETRY_MS`], each wait moved by up to ±25 %, so that the
//! clients of a server that restarted do not all come back in the same instant. The core has no
//! randomness of its own: `Jitter` is a small deterministic generator seeded by the glue
//! (`Session::with_seed`), so tests replay exact delays.

/// The wait after the first failed attempt.
pub const FIRST_RETRY_MS: u32 = 500;

/// The longest wait between two attempts, before jitter.
pub const MAX_RETRY_MS: u32 = 10_000;

/// Each wait is moved by up to this share of itself, either way (in percent).
pub const JITTER_PERCENT: u32 = 25;

/// How long after the connection was lost the SDK stops trying: the first attempt that fails
/// after this gives up (`ERROR` 60008). Far beyond the server's resume grace (30 s by
/// default), so a network that comes back late still gets a fresh login, and short enough
/// that an app is not left waiting on a session that will not come back.
pub const GIVE_UP_AFTER_MS: u64 = 120_000;

/// A SplitMix64 generator: tiny, fast, and good enough to spread retries. Not for secrets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Jitter {
    state: u64,
}

impl Jitter {
    pub fn new(seed: u64) -> Self {
        Jitter { state: seed }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..=max`, uniformly (near enough: the bias of a 64-bit modulo).
    pub fn up_to(&mut self, max: u32) -> u32 {
        let n = self.next() % (u64::from(max) + 1);
        u32::try_from(n).unwrap_or(max)
    }

    /// The wait after `failures` failed attempts in a row (at least one).
    pub fn retry_delay_ms(&mut self, failures: u32) -> u32 {
        let nominal = nominal_delay_ms(failures);
        let spread = nominal / 100 * JITTER_PERCENT;
        let offset = self.next() % (u64::from(spread) * 2 + 1);
        // offset is at most 2 * spread, which fits in u32 since spread < nominal.
        nominal - spread + u32::try_from(offset).unwrap_or(0)
    }
}

/// The wait before jitter: [`FIRST_RETRY_MS`] doubled per further failure, capped.
pub fn nominal_delay_ms(failures: u32) -> u32 {
    // Past 2^5 the cap has long been reached; the shift stays far from overflowing.
    let doublings = failures.saturating_sub(1).min(16);
    let delay = u64::from(FIRST_RETRY_MS) << doublings;
    u32::try_from(delay.min(u64::from(MAX_RETRY_MS))).unwrap_or(MAX_RETRY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_half_a_second_up_to_ten() {
        let nominal: Vec<u32> = (1..=9).map(nominal_delay_ms).collect();
        assert_eq!(
            nominal,
            [500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000, 10_000]
        );
        assert_eq!(nominal_delay_ms(u32::MAX), MAX_RETRY_MS);
        assert_eq!(nominal_delay_ms(0), FIRST_RETRY_MS);
    }

    #[test]
    fn each_wait_is_within_a_quarter_of_its_nominal_value_and_they_vary() {
        let mut jitter = Jitter::new(7);
        for failures in 1..=40 {
            let nominal = nominal_delay_ms(failures);
            let delay = jitter.retry_delay_ms(failures);
            assert!(
                delay >= nominal * 3 / 4 && delay <= nominal * 5 / 4,
                "{failures}: {delay} vs {nominal}"
            );
        }
        let capped: Vec<u32> = (0..8).map(|_| jitter.retry_delay_ms(20)).collect();
        let first = capped[0];
        assert!(capped.iter().any(|d| *d != first), "no jitter: {capped:?}");
    }

    #[test]
    fn the_same_seed_gives_the_same_waits_and_another_seed_others() {
        let waits = |seed| {
            let mut jitter = Jitter::new(seed);
            (1..=6)
                .map(|f| jitter.retry_delay_ms(f))
                .collect::<Vec<_>>()
        };
        assert_eq!(waits(42), waits(42));
        assert_ne!(waits(42), waits(43));
    }
}
