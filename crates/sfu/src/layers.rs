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
/// A layer with no frame for this long is not being sent: a browser pauses the layers its
/// uplink or CPU cannot carry, and a receiver switched to one would get nothing.
const LIVE_WITHIN: Duration = Duration::from_secs(1);

/// The bitrate one layer of a track arrives at, measured over whole windows.
#[derive(Debug, Clone)]
pub(crate) struct LayerRate {
    pub rid: Rid,
    window_start: Option<Instant>,
    window_bytes: u64,
    /// Bits per second over the last whole window; 0 until one has passed.
    pub bps: u64,
    last_frame: Option<Instant>,
}

impl LayerRate {
    pub fn new(rid: Rid) -> LayerRate {
        LayerRate {
            rid,
            window_start: None,
            window_bytes: 0,
            bps: 0,
            last_frame: None,
        }
    }

    /// Whether the sender is sending this layer now.
    pub fn is_live(&self, now: Instant) -> bool {
        self.last_frame
            .is_some_and(|at| now.saturating_duration_since(at) <= LIVE_WITHIN)
    }

    /// `bytes` of this layer arrived at `now`.
    pub fn record(&mut self, now: Instant, bytes: usize) {
        self.last_frame = Some(now);
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

/// Of the layers being sent (`layers` lowest first), the highest whose bitrate fits
/// `budget_bps`, or the lowest when none does: a receiver always gets some video, as the mesh
/// would give it. None while no layer is being sent.
pub(crate) fn fitting(layers: &[LayerRate], budget_bps: u64, now: Instant) -> Option<Rid> {
    let live = layers.iter().filter(|l| l.is_live(now));
    let lowest = live.clone().next();
    live.rev()
        .find(|l| l.bps <= budget_bps)
        .or(lowest)
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
    /// When the first layer was chosen. For [`UP_AFTER`] after it, while some of the sender's
    /// layers are not sent yet, moving up needs no hold: a browser starts its higher layers one
    /// after the other as its own bandwidth estimate grows, and a receiver should not wait out a
    /// hold for each.
    first_choice: Option<Instant>,
}

impl LayerChoice {
    /// Decides again, given the layer that fits now (`layers` lowest first, for the order).
    /// Returns the layer whose key frame the sender must be asked for when a switch starts.
    /// `stalled`: the layer forwarded now is no longer being sent, so waiting to move up would
    /// leave the receiver with nothing. `all_sent`: every layer the sender announced is being
    /// sent, so no more are still to come.
    pub fn decide(
        &mut self,
        now: Instant,
        layers: &[Rid],
        fits: Rid,
        stalled: bool,
        all_sent: bool,
    ) -> Option<Rid> {
        let rank = |rid: Rid| layers.iter().position(|l| *l == rid);
        let Some(current) = self.current.or(self.target) else {
            // The first choice: no reason to wait.
            self.first_choice = Some(now);
            self.target = Some(fits);
            return Some(fits);
        };
        let starting = !all_sent
            && self
                .first_choice
                .is_some_and(|at| now.saturating_duration_since(at) < UP_AFTER);
        if stalled || starting {
            self.higher_fits_since = None;
            return self.switch_to(fits);
        }
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

    /// Layers being sent at `now`, at these bitrates.
    fn rates(now: Instant, bps: [u64; 3]) -> Vec<LayerRate> {
        rids()
            .iter()
            .zip(bps)
            .map(|(rid, bps)| LayerRate {
                bps,
                last_frame: Some(now),
                ..LayerRate::new(*rid)
            })
            .collect()
    }

    #[test]
    fn the_highest_layer_that_fits_else_the_lowest() {
        let [l, m, h] = rids();
        let now = Instant::now();
        let layers = rates(now, [100_000, 300_000, 900_000]);
        assert_eq!(fitting(&layers, 2_000_000, now), Some(h));
        assert_eq!(fitting(&layers, 400_000, now), Some(m));
        assert_eq!(fitting(&layers, 50_000, now), Some(l));
        assert_eq!(fitting(&[], 50_000, now), None);
    }

    #[test]
    fn a_layer_the_sender_stopped_sending_is_not_chosen() {
        let [l, m, _] = rids();
        let start = Instant::now();
        let mut layers = rates(start, [100_000, 300_000, 900_000]);
        let later = start + LIVE_WITHIN * 2;
        // The sender's uplink carries its two lowest layers only.
        layers[0].record(later, 100);
        layers[1].record(later, 100);
        assert_eq!(fitting(&layers, 2_000_000, later), Some(m));
        layers[1].last_frame = Some(start);
        assert_eq!(fitting(&layers, 2_000_000, later), Some(l));
        assert_eq!(
            fitting(&layers, 10_000, later),
            Some(l),
            "the lowest being sent"
        );
        layers[0].last_frame = Some(start);
        assert_eq!(
            fitting(&layers, 2_000_000, later),
            None,
            "nothing is being sent"
        );
    }

    #[test]
    fn while_starting_a_receiver_moves_up_at_once_as_the_senders_layers_come() {
        let [l, m, h] = rids();
        let layers = rids();
        let start = Instant::now();
        let mut choice = LayerChoice::default();
        assert_eq!(
            choice.decide(start, &layers, l, false, false),
            Some(l),
            "the one being sent"
        );
        assert!(choice.admit(l, true));
        let soon = start + UP_AFTER / 3;
        assert_eq!(
            choice.decide(soon, &layers, m, false, false),
            Some(m),
            "m came: no hold"
        );
        assert!(choice.admit(m, true));
        let settled = start + UP_AFTER;
        assert_eq!(
            choice.decide(settled, &layers, h, false, false),
            None,
            "then the hold applies"
        );

        // Once every layer is sent, the hold applies from the start.
        let mut choice = LayerChoice::default();
        choice.decide(start, &layers, l, false, true);
        assert!(choice.admit(l, true));
        assert_eq!(choice.decide(soon, &layers, m, false, true), None);
    }

    #[test]
    fn a_receiver_whose_layer_stalls_moves_at_once_even_up() {
        let [_, m, h] = rids();
        let layers = rids();
        let start = Instant::now();
        let mut choice = LayerChoice::default();
        choice.decide(start, &layers, m, false, true);
        assert!(choice.admit(m, true));
        assert_eq!(
            choice.decide(start, &layers, h, true, true),
            Some(h),
            "no hold: m stalled"
        );
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
            choice.decide(start, &layers, h, false, true),
            Some(h),
            "first choice at once"
        );
        assert!(!choice.admit(h, false), "not before a key frame");
        assert!(choice.admit(h, true));
        assert!(!choice.admit(m, true), "one layer at a time");

        assert_eq!(
            choice.decide(start, &layers, m, false, true),
            Some(m),
            "down at once"
        );
        assert!(
            choice.admit(h, false),
            "the old layer until the new one's key frame"
        );
        assert!(choice.admit(m, true));
        assert!(!choice.admit(h, true));

        // Past the start, when the sender's layers have all come.
        let later = |secs| start + UP_AFTER + Duration::from_secs(secs);
        assert_eq!(
            choice.decide(later(1), &layers, h, false, true),
            None,
            "up waits"
        );
        assert_eq!(
            choice.decide(later(2), &layers, m, false, true),
            None,
            "the wait starts over"
        );
        assert_eq!(choice.decide(later(3), &layers, h, false, true), None);
        assert_eq!(choice.decide(later(5), &layers, h, false, true), None);
        assert_eq!(
            choice.decide(later(6), &layers, h, false, true),
            Some(h),
            "fitted for UP_AFTER"
        );
        assert!(choice.admit(h, true));

        assert_eq!(choice.decide(later(7), &layers, l, false, true), Some(l));
        assert_eq!(
            choice.decide(later(7), &layers, h, false, true),
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
        choice.decide(start, &layers, h, false, true);
        assert!(choice.admit(h, true));
        assert_eq!(choice.decide(start, &layers, m, false, true), Some(m));
        let after = start + UP_AFTER;
        assert_eq!(choice.decide(start, &layers, h, false, true), None);
        assert_eq!(
            choice.decide(after, &layers, h, false, true),
            None,
            "h is still forwarded"
        );
        assert_eq!(choice.target, None);
        assert!(!choice.admit(m, true), "the switch to m was called off");
        assert!(choice.admit(h, false));
    }
}
