use super::*;

/// The layer bandwidth alone picks.
fn fitting(layers: &[LayerRate], budget_bps: u64, now: Instant) -> Option<Rid> {
    choose_at(layers, None, budget_bps, now)
}

/// The layer [`choose`] picks for a receiver rendering the sender at `view`.
fn choose_at(
    layers: &[LayerRate],
    view: Option<RenderedSize>,
    budget_bps: u64,
    now: Instant,
) -> Option<Rid> {
    choose(layers, size_cap(layers, view, now)?, budget_bps, now)
}

/// What a receiver rendering the sender at `view` wants ([`wanted_bps`]).
fn wanted_at(layers: &[LayerRate], view: Option<RenderedSize>, now: Instant) -> u64 {
    wanted_bps(layers, size_cap(layers, view, now))
}

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

/// Layers being sent at `now` at these bitrates, of a 16:9 camera: 320×180, 640×360, 1280×720.
fn sized(now: Instant, bps: [u64; 3]) -> Vec<LayerRate> {
    let mut layers = rates(now, bps);
    for (layer, size) in layers.iter_mut().zip([(320, 180), (640, 360), (1280, 720)]) {
        layer.size = Some(size);
    }
    layers
}

fn view(width: u32, height: u32) -> Option<RenderedSize> {
    Some(RenderedSize::new(width, height))
}

#[test]
fn the_size_caps_the_choice_at_the_smallest_layer_that_fills_the_view() {
    let [l, m, h] = rids();
    let now = Instant::now();
    let layers = sized(now, [100_000, 300_000, 900_000]);
    let plenty = 10_000_000;
    assert_eq!(choose_at(&layers, view(320, 180), plenty, now), Some(l));
    assert_eq!(
        choose_at(&layers, view(200, 200), plenty, now),
        Some(m),
        "too high for l"
    );
    assert_eq!(
        choose_at(&layers, view(321, 100), plenty, now),
        Some(m),
        "too wide for l"
    );
    assert_eq!(choose_at(&layers, view(640, 360), plenty, now), Some(m));
    assert_eq!(choose_at(&layers, view(641, 360), plenty, now), Some(h));
    assert_eq!(
        choose_at(&layers, view(1920, 1080), plenty, now),
        Some(h),
        "none fills: the largest"
    );
    assert_eq!(choose_at(&layers, None, plenty, now), Some(h), "no limit");
}

#[test]
fn below_the_size_cap_bandwidth_picks() {
    let [l, m, _] = rids();
    let now = Instant::now();
    let layers = sized(now, [100_000, 300_000, 900_000]);
    assert_eq!(choose_at(&layers, view(1280, 720), 400_000, now), Some(m));
    assert_eq!(choose_at(&layers, view(640, 360), 200_000, now), Some(l));
    assert_eq!(
        choose_at(&layers, view(640, 360), 50_000, now),
        Some(l),
        "nothing fits: the lowest"
    );
}

#[test]
fn a_hidden_view_gets_the_lowest_layer_being_sent() {
    let [l, m, _] = rids();
    let start = Instant::now();
    let mut layers = sized(start, [100_000, 300_000, 900_000]);
    assert_eq!(choose_at(&layers, view(0, 0), 10_000_000, start), Some(l));
    assert_eq!(choose_at(&layers, view(0, 720), 10_000_000, start), Some(l));
    // The sender stopped sending l.
    let later = start + LIVE_WITHIN * 2;
    layers[1].record(later, 100);
    layers[2].record(later, 100);
    assert_eq!(choose_at(&layers, view(0, 0), 10_000_000, later), Some(m));
}

#[test]
fn before_the_layers_sizes_are_known_the_size_does_not_cap() {
    let [_, _, h] = rids();
    let now = Instant::now();
    let mut layers = rates(now, [100_000, 300_000, 900_000]);
    assert_eq!(choose_at(&layers, view(320, 180), 10_000_000, now), Some(h));
    // Only the lowest known, and too small.
    layers[0].size = Some((320, 180));
    assert_eq!(choose_at(&layers, view(640, 360), 10_000_000, now), Some(h));
}

#[test]
fn of_the_layers_that_fill_a_view_the_smallest_being_sent() {
    let [_, _, h] = rids();
    let start = Instant::now();
    let mut layers = sized(start, [100_000, 300_000, 900_000]);
    let later = start + LIVE_WITHIN * 2;
    // The sender paused m, which would have filled the view.
    layers[0].record(later, 100);
    layers[2].record(later, 100);
    assert_eq!(
        choose_at(&layers, view(640, 360), 10_000_000, later),
        Some(h)
    );
    assert_eq!(wanted_at(&layers, view(640, 360), later), 900_000);
}

#[test]
fn a_receiver_wants_the_bitrate_of_the_layer_its_size_caps_it_to() {
    let start = Instant::now();
    let layers = sized(start, [100_000, 300_000, 900_000]);
    assert_eq!(wanted_at(&layers, view(320, 180), start), 100_000);
    assert_eq!(wanted_at(&layers, view(640, 360), start), 300_000);
    assert_eq!(wanted_at(&layers, view(0, 0), start), 100_000, "hidden");
    assert_eq!(wanted_at(&layers, None, start), 900_000, "no limit");
    let later = start + LIVE_WITHIN * 2;
    assert_eq!(wanted_at(&layers, None, later), 0, "nothing is being sent");
}

#[test]
fn a_view_that_grew_moves_up_at_once_and_the_hold_applies_after() {
    let [l, m, h] = rids();
    let layers = rids();
    let start = Instant::now();
    let mut choice = LayerChoice::default();
    choice.decide(start, &layers, l, false, true);
    assert!(choice.admit(l, true));
    let later = |secs| start + UP_AFTER + Duration::from_secs(secs);
    assert_eq!(
        choice.decide(later(1), &layers, m, false, true),
        None,
        "a rise of the estimate waits"
    );
    choice.view_grew();
    assert_eq!(
        choice.decide(later(1), &layers, h, false, true),
        Some(h),
        "the view grew: no hold"
    );
    assert!(choice.admit(h, true));
    assert_eq!(choice.decide(later(2), &layers, l, false, true), Some(l));
    assert!(choice.admit(l, true));
    assert_eq!(
        choice.decide(later(2), &layers, m, false, true),
        None,
        "the growth was used up: the hold applies again"
    );
}

#[test]
fn a_view_that_grew_moves_only_as_far_as_the_estimate_allows() {
    let [l, m, _] = rids();
    let layers = rids();
    let start = Instant::now();
    let mut choice = LayerChoice::default();
    choice.decide(start, &layers, l, false, true);
    assert!(choice.admit(l, true));
    let later = start + UP_AFTER * 2;
    choice.view_grew();
    // The estimate allows no more than l yet.
    assert_eq!(choice.decide(later, &layers, l, false, true), None);
    assert_eq!(
        choice.decide(later, &layers, m, false, true),
        None,
        "a later rise of the estimate waits"
    );
}

#[test]
fn a_switch_whose_key_frame_does_not_come_asks_again() {
    let [l, _, h] = rids();
    let layers = rids();
    let start = Instant::now();
    let mut choice = LayerChoice::default();
    choice.decide(start, &layers, h, false, true);
    assert!(choice.admit(h, true));
    // h stalls: down to l, whose key frame is asked for.
    assert_eq!(choice.decide(start, &layers, l, true, false), Some(l));
    let soon = start + ASK_AGAIN_AFTER / 2;
    assert_eq!(
        choice.decide(soon, &layers, l, true, false),
        None,
        "asked just now"
    );
    // The request or the key frame was lost.
    let later = start + ASK_AGAIN_AFTER;
    assert_eq!(
        choice.decide(later, &layers, l, true, false),
        Some(l),
        "asked again"
    );
    assert_eq!(choice.decide(later, &layers, l, true, false), None);
    assert!(choice.admit(l, true), "the key frame came");
    assert_eq!(
        choice.decide(later + ASK_AGAIN_AFTER * 2, &layers, l, false, false),
        None,
        "nothing is waited for"
    );
}
