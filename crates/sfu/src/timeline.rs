//! One continuous media timeline for a forwarded simulcast video, whichever layer it carries.
//!
//! Each simulcast layer of a sender is its own RTP stream with its own clock: the browser draws
//! every stream's timestamp offset at random, so two layers of the same frame are minutes apart
//! (seen from Chromium: 1,684 s). Forwarded as they come, a layer switch moves the receiver's
//! timeline by that much, and its jitter buffer holds the video until it gives up waiting
//! (about 3 s) and starts over: every switch froze the picture. So the receiver's stream keeps
//! its own clock: on a switch, the new layer's times are shifted to follow on from the last
//! frame written, by the wall-clock time that passed between the two frames' arrivals.

use std::time::Instant;

use str0m::media::{MediaTime, Rid};

#[derive(Debug, Default, Clone)]
pub(crate) struct Timeline {
    /// The layer whose frames were written last, and the shift (in its clock's ticks, modulo
    /// 2^64) that maps its times to the receiver's.
    layer: Option<(Rid, u64)>,
    /// The last frame written: its time at the receiver and when it arrived.
    last: Option<(u64, Instant)>,
}

impl Timeline {
    /// The time at which the receiver gets a frame of `layer` that the sender stamped `time`
    /// and that arrived at `arrived`.
    pub fn map(&mut self, layer: Rid, time: MediaTime, arrived: Instant) -> MediaTime {
        let shift = match self.layer {
            Some((current, shift)) if current == layer => shift,
            _ => {
                // The first frame keeps its time; the first of another layer follows on from
                // the last one written.
                let shift = self.last.map_or(0, |(last_time, last_arrived)| {
                    let elapsed = arrived.saturating_duration_since(last_arrived);
                    let ticks = elapsed.as_micros() * u128::from(time.denom()) / 1_000_000;
                    // Never the same time as the last frame: that would make it one frame.
                    let ticks = u64::try_from(ticks).unwrap_or(u64::MAX).max(1);
                    last_time.wrapping_add(ticks).wrapping_sub(time.numer())
                });
                self.layer = Some((layer, shift));
                shift
            }
        };
        let mapped = time.numer().wrapping_add(shift);
        self.last = Some((mapped, arrived));
        MediaTime::new(mapped, time.frequency())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use str0m::media::Frequency;

    use super::*;

    const VIDEO: Frequency = Frequency::NINETY_KHZ;

    fn at(ticks: u64) -> MediaTime {
        MediaTime::new(ticks, VIDEO)
    }

    #[test]
    fn one_layer_keeps_its_times() {
        let start = Instant::now();
        let mut timeline = Timeline::default();
        let h = Rid::from("h");
        assert_eq!(timeline.map(h, at(1_000), start).numer(), 1_000);
        let later = start + Duration::from_millis(33);
        assert_eq!(timeline.map(h, at(3_970), later).numer(), 3_970);
    }

    #[test]
    fn a_switch_follows_on_from_the_last_frame_by_the_time_between_arrivals() {
        let start = Instant::now();
        let mut timeline = Timeline::default();
        let (l, h) = (Rid::from("l"), Rid::from("h"));
        // Two layers of the same frames, on clocks 1,684 s apart.
        let (h_base, l_base) = (1_184_213_290, 1_032_605_000);
        timeline.map(h, at(h_base), start);
        let next = start + Duration::from_millis(100);
        let switched = timeline.map(l, at(l_base + 9_000), next);
        assert_eq!(
            switched.numer(),
            h_base + 9_000,
            "100 ms after the last frame"
        );
        let after = next + Duration::from_millis(33);
        assert_eq!(
            timeline.map(l, at(l_base + 11_970), after).numer(),
            h_base + 11_970,
            "then the new layer's own spacing"
        );
        // And back up, to a layer whose clock is behind the receiver's.
        let back = after + Duration::from_millis(50);
        assert_eq!(
            timeline.map(h, at(h_base + 16_470), back).numer(),
            h_base + 11_970 + 4_500
        );
    }

    #[test]
    fn a_switch_at_the_same_instant_still_moves_time_on() {
        let start = Instant::now();
        let mut timeline = Timeline::default();
        timeline.map(Rid::from("h"), at(500), start);
        assert_eq!(timeline.map(Rid::from("l"), at(10), start).numer(), 501);
    }

    #[test]
    fn a_shift_that_crosses_zero_wraps_like_the_rtp_clock() {
        let start = Instant::now();
        let mut timeline = Timeline::default();
        timeline.map(Rid::from("h"), at(100), start);
        let next = start + Duration::from_millis(10);
        let near_end = u64::MAX - 50;
        assert_eq!(
            timeline.map(Rid::from("l"), at(near_end), next).numer(),
            1_000
        );
        let wrapped = near_end.wrapping_add(3_000);
        assert_eq!(
            timeline.map(Rid::from("l"), at(wrapped), next).numer(),
            4_000
        );
    }
}
