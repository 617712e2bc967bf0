//! Which simulcast layer of a sender's video each receiver gets, as pure rules.
//!
//! A sender publishes up to three layers of one track (low, medium, high resolution). Each
//! receiver gets one of them, chosen in two steps. Its rendered size caps the choice: of the
//! layers being sent, the candidates go up to the smallest whose frame fills the receiver's view
//! of that sender (all of them when none does, or before their sizes are known; only the lowest
//! when the view is hidden). Its bandwidth then picks the highest candidate whose measured
//! bitrate fits the receiver's share of what can be sent to it (its bandwidth estimate, capped
//! by what it asked for), or else the lowest layer being sent.
//!
//! Going down happens at once, since a receiver over its bandwidth loses packets now and one
//! whose view shrank has no use for more. Going up waits until the higher layer has fitted for
//! [`UP_AFTER`], so an estimate that wavers does not switch back and forth; but not when the
//! receiver's view just grew: that is the app's deliberate change, not a wavering estimate, so
//! the next decision after it moves up at once to what the new size and the current estimate
//! allow (any further rise of the estimate waits as usual). Either way the switch takes effect
//! at the new layer's next key frame (a decoder cannot start in the middle of a stream), which
//! the SFU asks the sender for when it decides.

use std::time::{Duration, Instant};

use str0m::media::Rid;

use crate::view::RenderedSize;

/// How long a higher layer must keep fitting before a receiver is moved up to it.
pub(crate) const UP_AFTER: Duration = Duration::from_secs(3);
/// The span over which a layer's bitrate is measured.
const RATE_WINDOW: Duration = Duration::from_secs(1);
/// How long a switch waits for the new layer's key frame before the sender is asked again. A
/// request or the key frame itself may be lost; until one arrives the receiver gets nothing of
/// the new layer, and, when the old one stalled, nothing at all (the receiver's own request
/// comes only after seconds).
pub(crate) const ASK_AGAIN_AFTER: Duration = Duration::from_millis(500);
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
    /// The frame size (width, height) of the layer's last key frame; unknown before the first.
    pub size: Option<(u32, u32)>,
}

impl LayerRate {
    pub fn new(rid: Rid) -> LayerRate {
        LayerRate {
            rid,
            window_start: None,
            window_bytes: 0,
            bps: 0,
            last_frame: None,
            size: None,
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

/// Of the layers being sent (`layers` lowest first), the index of the highest that a receiver
/// rendering the sender at `view` may get (`None`: no size limit): the lowest whose frame fills
/// the view, or the highest being sent when none does or the sizes are not known yet; the
/// lowest when the view is hidden. None while no layer is being sent.
pub(crate) fn size_cap(
    layers: &[LayerRate],
    view: Option<RenderedSize>,
    now: Instant,
) -> Option<usize> {
    let live = layers
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_live(now))
        .map(|(i, l)| (i, l.size));
    let lowest = live.clone().next()?.0;
    let highest = live.clone().next_back()?.0;
    let Some(view) = view else {
        return Some(highest);
    };
    if view.is_hidden() {
        return Some(lowest);
    }
    Some(
        live.clone()
            .find(|(_, size)| size.is_some_and(|s| view.is_filled_by(s)))
            .map_or(highest, |(i, _)| i),
    )
}

/// The layer a receiver should get: of the layers being sent (`layers` lowest first) up to
/// `cap` (its [`size_cap`]), the highest whose bitrate fits `budget_bps`, or the lowest being
/// sent when none does: a receiver always gets some video, as the mesh would give it. None while
/// no layer is being sent.
pub(crate) fn choose(
    layers: &[LayerRate],
    cap: usize,
    budget_bps: u64,
    now: Instant,
) -> Option<Rid> {
    let candidates = layers.get(..=cap)?.iter().filter(|l| l.is_live(now));
    let lowest = candidates.clone().next();
    candidates
        .rev()
        .find(|l| l.bps <= budget_bps)
        .or(lowest)
        .map(|l| l.rid)
}

/// The bitrate a receiver wants of these layers: that of the layer its size caps it to (`cap`,
/// its [`size_cap`]); 0 while none is being sent.
pub(crate) fn wanted_bps(layers: &[LayerRate], cap: Option<usize>) -> u64 {
    cap.and_then(|i| layers.get(i)).map_or(0, |l| l.bps)
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
    /// The receiver's view of the sender grew since the last decision: the next one moves up
    /// without the hold.
    view_grew: bool,
    /// When the target layer's key frame was last asked for.
    asked_at: Option<Instant>,
}

impl LayerChoice {
    /// Decides again, given the layer that fits now (`layers` lowest first, for the order).
    /// Returns the layer whose key frame the sender must be asked for when a switch starts.
    /// `stalled`: the layer forwarded now is no longer being sent, so waiting to move up would
    /// leave the receiver with nothing. `all_sent`: every layer the sender announced is being
    /// sent, so no more are still to come.
    ///
    /// `fits` is the layer [`choose`] picks now.
    ///
    /// While a switch waits for its key frame, the layer is returned again every
    /// [`ASK_AGAIN_AFTER`], to ask again.
    pub fn decide<'r>(
        &mut self,
        now: Instant,
        layers: impl IntoIterator<Item = &'r Rid> + Clone,
        fits: Rid,
        stalled: bool,
        all_sent: bool,
    ) -> Option<Rid> {
        if let Some(to) = self.switch(now, layers, fits, stalled, all_sent) {
            self.asked_at = Some(now);
            return Some(to);
        }
        let target = self.target?;
        let due = self
            .asked_at
            .is_none_or(|at| now.saturating_duration_since(at) >= ASK_AGAIN_AFTER);
        if !due {
            return None;
        }
        self.asked_at = Some(now);
        Some(target)
    }

    /// The decision proper: the layer to switch to when a switch starts.
    fn switch<'r>(
        &mut self,
        now: Instant,
        layers: impl IntoIterator<Item = &'r Rid> + Clone,
        fits: Rid,
        stalled: bool,
        all_sent: bool,
    ) -> Option<Rid> {
        let rank = |rid: Rid| layers.clone().into_iter().position(|l| *l == rid);
        let view_grew = std::mem::take(&mut self.view_grew);
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
        if stalled || starting || view_grew {
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

    /// The receiver now renders the sender larger than before (see [`crate::view::grew`]).
    pub fn view_grew(&mut self) {
        self.view_grew = true;
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
mod tests;
