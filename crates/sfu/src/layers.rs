//! Which simulcast layer of a sender's video each receiver gets, as pure rules.
//!
//! A sender publishes up to three layers of one track (low, medium, high resolution). Each
//! receiver gets one of them: the highest whose measured bitrate fits the receiver's share of
//! what can be sent to it (its bandwidth estimate, capped by what it asked for). Going down
//! happens at once, since a receiver over its bandwidth loses packets now; going up waits until
//! the higher layer has fitted for [`UP_AFTER`], so an estimate that wavers does not switch back
//! and forth. Either way the switch takes effect at the new layer's next key frame (a decoder
//! cannot start in the middle of a stream), which the SFU asks the sender for when it decides.

use std::time::{Duration, Instant};

use str0m::media::Rid;

/// How long a higher layer must keep fitting before a receiver is moved up to it.
pub(crate) const UP_AFTER: Duration = Duration::from_secs(3);
/// The span over which a layer's bitrate is measured.
const RATE_WINDOW: Duration = Duration::from_secs(1);

/// The bitrate one layer of a track arrives at, measured over whole windows.
#[derive(Debug, Clone)]
pub(crate) struct LayerRate {
    pub rid: Rid,
    window_start: Option<Instant>,
    window_bytes: u64,
    /// Bits per second over the last whole window; 0 until one has passed.
    pub bps: u64,
}

impl LayerRate {
    pub fn new(rid: Rid) -> LayerRate {
        LayerRate {
            rid,
            window_start: None,
            window_bytes: 0,
            bps: 0,
        }
    }

    /// `bytes` of this layer arrived at `now`.
    pub fn record(&mut self, now: Instant, bytes: usize) {
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= RATE_WINDOW {
            let micros = u64::try_from(elapsed.as_micros())
                .unwrap_or(u64::MAX)
                .max(1);
            self.bps = self.window_bytes.saturating_mul(8_000_000) / micros;
            self.window_start = Some(now);
            self.window_bytes = 0;
        }
        self.window_bytes = self
            .window_bytes
            .saturating_add(u64::try_from(bytes).unwrap_or(u64::MAX));
    }
}

/// The highest layer (of `layers`, lowest first) whose bitrate fits `budget_bps`, or the lowest
/// when none does: a receiver always gets some video, as the mesh would give it.
pub(crate) fn fitting(layers: &[LayerRate], budget_bps: u64) -> Option<Rid> {
    layers
        .iter()
        .rev()
        .find(|l| l.bps <= budget_bps)
        .or(layers.first())
        .map(|l| l.rid)
}

/// One receiver's choice of layer for one forwarded track.
#[derive(Debug, Default, Clone)]
pub(crate) struct LayerChoice {
    /// The layer forwarded now; none before the first key frame of the first choice.
    pub current: Option<Rid>,
    /// The layer being switched to, forwarded from its next key frame on.
    pub target: Option<Rid>,
    /// Since when a layer above the current one has fitted.
    higher_fits_since: Option<Instant>,
}

impl LayerChoice {
    /// Decides again, given the layer that fits now (`layers` lowest first, for the order).
    /// Returns the layer whose key frame the sender must be asked for when a switch starts.
    pub fn decide(&mut self, now: Instant, layers: &[Rid], fits: Rid) -> Option<Rid> {
        let rank = |rid: Rid| layers.iter().position(|l| *l == rid);
        let Some(current) = self.current.or(self.target) else {
            // The first choice: no reason to wait.
            self.target = Some(fits);
            return Some(fits);
        };
        let aim = self.target.unwrap_or(current);
        if rank(fits) < rank(aim) {
            self.higher_fits_since = None;
            return self.switch_to(fits);
        }
        if rank(fits) == rank(aim) {
            self.higher_fits_since = None;
            return None;
        }
        let since = *self.higher_fits_since.get_or_insert(now);
        if now.saturating_duration_since(since) >= UP_AFTER {
            self.higher_fits_since = None;
            return self.switch_to(fits);
        }
        None
    }

    fn switch_to(&mut self, rid: Rid) -> Option<Rid> {
        if self.current == Some(rid) {
            // Back to the layer still forwarded: the pending switch is called off.
            self.target = None;
            return None;
        }
        if self.target == Some(rid) {
            return None;
        }
        self.target = Some(rid);
        Some(rid)
    }

    /// Whether a frame of layer `rid` goes to this receiver; a key frame of the target layer
    /// completes the switch.
    pub fn admit(&mut self, rid: Rid, keyframe: bool) -> bool {
        if self.target == Some(rid) && keyframe {
            self.current = Some(rid);
            self.target = None;
        }
        self.current == Some(rid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rids() -> [Rid; 3] {
        [Rid::from("l"), Rid::from("m"), Rid::from("h")]
    }

    fn rates(bps: [u64; 3]) -> Vec<LayerRate> {
        rids()
            .iter()
            .zip(bps)
            .map(|(rid, bps)| LayerRate {
                bps,
                ..LayerRate::new(*rid)
            })
            .collect()
    }

    #[test]
    fn the_highest_layer_that_fits_else_the_lowest() {
        let [l, m, h] = rids();
        let layers = rates([100_000, 300_000, 900_000]);
        assert_eq!(fitting(&layers, 2_000_000), Some(h));
        assert_eq!(fitting(&layers, 400_000), Some(m));
        assert_eq!(fitting(&layers, 50_000), Some(l));
        assert_eq!(fitting(&[], 50_000), None);
    }

    #[test]
    fn a_layer_rate_is_measured_over_whole_windows() {
        let start = Instant::now();
        let mut rate = LayerRate::new(Rid::from("h"));
        for i in 0..=30 {
            rate.record(start + Duration::from_millis(i * 33), 1_000);
        }
        assert_eq!(rate.bps, 0, "no whole window yet");
        rate.record(start + RATE_WINDOW, 1_000);
        // 31 frames of 1,000 bytes in one second.
        assert_eq!(rate.bps, 248_000);
    }

    #[test]
    fn down_at_once_up_only_after_the_higher_layer_kept_fitting() {
        let [l, m, h] = rids();
        let layers = rids();
        let start = Instant::now();
        let mut choice = LayerChoice::default();
        assert_eq!(
            choice.decide(start, &layers, h),
            Some(h),
            "first choice at once"
        );
        assert!(!choice.admit(h, false), "not before a key frame");
        assert!(choice.admit(h, true));
        assert!(!choice.admit(m, true), "one layer at a time");

        assert_eq!(choice.decide(start, &layers, m), Some(m), "down at once");
        assert!(
            choice.admit(h, false),
            "the old layer until the new one's key frame"
        );
        assert!(choice.admit(m, true));
        assert!(!choice.admit(h, true));

        let later = |secs| start + Duration::from_secs(secs);
        assert_eq!(choice.decide(later(1), &layers, h), None, "up waits");
        assert_eq!(
            choice.decide(later(2), &layers, m),
            None,
            "the wait starts over"
        );
        assert_eq!(choice.decide(later(3), &layers, h), None);
        assert_eq!(choice.decide(later(5), &layers, h), None);
        assert_eq!(
            choice.decide(later(6), &layers, h),
            Some(h),
            "fitted for UP_AFTER"
        );
        assert!(choice.admit(h, true));

        assert_eq!(choice.decide(later(7), &layers, l), Some(l));
        assert_eq!(
            choice.decide(later(7), &layers, h),
            None,
            "a pending switch down is not undone by a momentary rise"
        );
        assert_eq!(choice.target, Some(l));
    }

    #[test]
    fn falling_back_to_the_forwarded_layer_calls_a_pending_switch_off() {
        let [_, m, h] = rids();
        let layers = rids();
        let start = Instant::now();
        let mut choice = LayerChoice::default();
        choice.decide(start, &layers, h);
        assert!(choice.admit(h, true));
        assert_eq!(choice.decide(start, &layers, m), Some(m));
        let after = start + UP_AFTER;
        assert_eq!(choice.decide(start, &layers, h), None);
        assert_eq!(
            choice.decide(after, &layers, h),
            None,
            "h is still forwarded"
        );
        assert_eq!(choice.target, None);
        assert!(!choice.admit(m, true), "the switch to m was called off");
        assert!(choice.admit(h, false));
    }
}
