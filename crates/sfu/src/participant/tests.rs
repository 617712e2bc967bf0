use std::sync::Arc;

use str0m::RtcConfig;

use super::*;
use crate::layers::UP_AFTER;

fn receiver() -> Participant {
    let rtc = RtcConfig::new()
        .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
        .build(Instant::now());
    Participant::new(
        ParticipantId("cat".into()),
        RoomId("room".into()),
        "cat".into(),
        rtc,
        Duration::from_secs(20),
    )
}

/// `sender`'s track of this kind, forwarded to the receiver on m-line `mid` (open unless
/// `mid` is `None`).
fn track(sender: &str, kind: MediaKind, simulcast: bool, mid: Option<&str>) -> TrackOut {
    let mut track = TrackOut::new(TrackSource {
        origin: ParticipantId(sender.into()),
        stream: sender.into(),
        mid: Mid::from(if kind == MediaKind::Audio { "0" } else { "1" }),
        kind,
        simulcast,
    });
    if let Some(mid) = mid {
        track.state = TrackOutState::Open(Mid::from(mid));
    }
    track
}

fn budgets(receiver: &Participant) -> Vec<(String, u64)> {
    receiver
        .tracks_out
        .iter()
        .filter(|t| t.source.kind == MediaKind::Video)
        .map(|t| (t.source.stream.clone(), t.budget_bps))
        .collect()
}

#[test]
fn the_bandwidth_a_small_view_leaves_goes_to_the_other_videos() {
    let mut cat = receiver();
    cat.tracks_out = vec![
        track("ann", MediaKind::Audio, false, Some("a0")),
        track("ann", MediaKind::Video, true, Some("a1")),
        track("bob", MediaKind::Audio, false, Some("a2")),
        track("bob", MediaKind::Video, true, Some("a3")),
    ];
    // ann in a small tile wants her low layer; bob full screen his top one.
    cat.tracks_out[1].wanted_bps = 100_000;
    cat.tracks_out[3].wanted_bps = 2_000_000;
    cat.estimate_bps = Some(1_250_000);
    cat.share_bandwidth();
    // 1.25 Mbit/s less two audios: 1.15 for video, of which ann's tile needs 100 kbit/s.
    assert_eq!(
        budgets(&cat),
        [("ann".into(), 100_000), ("bob".into(), 1_050_000)]
    );

    // A cap counts as the estimate does.
    cat.set_max_bitrate(Some(600_000));
    assert_eq!(
        budgets(&cat),
        [("ann".into(), 100_000), ("bob".into(), 400_000)]
    );
}

#[test]
fn a_video_without_simulcast_or_not_open_yet_is_shared_with_as_it_comes() {
    let mut cat = receiver();
    cat.tracks_out = vec![
        track("ann", MediaKind::Video, true, Some("a1")),
        track("bob", MediaKind::Video, false, Some("a3")),
        track("dan", MediaKind::Video, true, None),
    ];
    cat.tracks_out[0].wanted_bps = 100_000;
    cat.tracks_out[2].wanted_bps = 100_000;
    cat.set_max_bitrate(Some(1_000_000));
    let open: Vec<_> = budgets(&cat).into_iter().take(2).collect();
    assert_eq!(
        open,
        [("ann".into(), 100_000), ("bob".into(), 900_000)],
        "bob's bitrate is not measured: he takes what ann leaves; dan is not open"
    );
}

#[test]
fn rendered_sizes_hold_for_the_videos_forwarded_now_and_later() {
    let mut cat = receiver();
    cat.tracks_out = vec![
        track("ann", MediaKind::Audio, false, Some("a0")),
        track("ann", MediaKind::Video, true, Some("a1")),
        track("bob", MediaKind::Video, true, Some("a3")),
    ];
    let small = RenderedSize::new(320, 180);
    let views = |list: &[(&str, RenderedSize)]| {
        list.iter()
            .map(|(stream, size)| (stream.to_string(), *size))
            .collect::<HashMap<_, _>>()
    };
    cat.set_rendered_sizes(views(&[("ann", small), ("dan", RenderedSize::new(0, 0))]));
    let seen = |cat: &Participant| {
        cat.tracks_out
            .iter()
            .map(|t| (t.source.stream.clone(), t.source.kind, t.view))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        seen(&cat),
        [
            ("ann".into(), MediaKind::Audio, None),
            ("ann".into(), MediaKind::Video, Some(small)),
            ("bob".into(), MediaKind::Video, None),
        ]
    );
    // dan joins later: his video comes with the view given before.
    cat.add_track_out(track("dan", MediaKind::Video, true, None).source);
    assert_eq!(cat.tracks_out[3].view, Some(RenderedSize::new(0, 0)));

    cat.set_rendered_sizes(views(&[("bob", small)]));
    let videos: Vec<_> = seen(&cat)
        .into_iter()
        .map(|(s, _, v)| (s, v))
        .skip(1)
        .collect();
    assert_eq!(
        videos,
        [
            ("ann".into(), None),
            ("bob".into(), Some(small)),
            ("dan".into(), None)
        ],
        "each message replaces the last"
    );
}

#[test]
fn a_view_that_grows_lets_its_video_move_up_without_the_hold() {
    let (l, h) = (Rid::from("l"), Rid::from("h"));
    let order = [l, Rid::from("m"), h];
    let mut cat = receiver();
    cat.tracks_out = vec![track("ann", MediaKind::Video, true, Some("a1"))];
    let size = |w, h| HashMap::from([("ann".to_string(), RenderedSize::new(w, h))]);
    cat.set_rendered_sizes(size(640, 360));
    let start = Instant::now();
    let choice = &mut cat.tracks_out[0].layer;
    choice.decide(start, &order, l, false, true);
    assert!(choice.admit(l, true));
    let later = start + UP_AFTER * 2;

    cat.set_rendered_sizes(size(320, 180));
    let choice = &mut cat.tracks_out[0].layer;
    assert_eq!(choice.decide(later, &order, h, false, true), None, "shrank");

    cat.set_rendered_sizes(size(1280, 720));
    let choice = &mut cat.tracks_out[0].layer;
    assert_eq!(
        choice.decide(later, &order, h, false, true),
        Some(h),
        "grew"
    );
}

/// A key frame of `rid` of the sender's video (mid "1").
fn frame(rid: Rid) -> MediaData {
    use str0m::format::{Codec, CodecExtra, CodecSpec, FormatParams, PayloadParams, Vp8CodecExtra};
    use str0m::media::{ExtensionValues, Frequency, MediaTime, Pt};
    use str0m::rtp::SeqNo;
    let spec = CodecSpec {
        codec: Codec::Vp8,
        clock_rate: Frequency::NINETY_KHZ,
        channels: None,
        format: FormatParams::default(),
    };
    MediaData {
        mid: Mid::from("1"),
        pt: Pt::from(96),
        rid: Some(rid),
        params: PayloadParams::new(Pt::from(96), None, spec),
        time: MediaTime::from_90khz(0),
        network_time: Instant::now(),
        seq_range: SeqNo::from(1)..=SeqNo::from(1),
        contiguous: true,
        data: vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0, 0, 0, 0].into(),
        ext_vals: ExtensionValues::default(),
        codec_extra: CodecExtra::Vp8(Vp8CodecExtra {
            discardable: false,
            sync: true,
            layer_index: 0,
            picture_id: None,
            tl0_picture_id: None,
            is_keyframe: true,
        }),
        last_sender_info: None,
        audio_start_of_talk_spurt: false,
    }
}

/// A sender's three layers being sent at `now`: 320×180 at 100 kbit/s, 640×360 at 300 and
/// 1280×720 at 900.
fn layers(now: Instant) -> Vec<LayerRate> {
    let sizes = [(320, 180), (640, 360), (1280, 720)];
    let mut layers = Vec::new();
    for ((rid, size), bps) in ["l", "m", "h"]
        .into_iter()
        .zip(sizes)
        .zip([100_000, 300_000, 900_000])
    {
        let mut layer = LayerRate::new(Rid::from(rid));
        // Two frames a window apart: the rate is measured, and the layer is being sent.
        layer.record(now - Duration::from_secs(1), 0);
        layer.record(now, usize::try_from(bps / 8).expect("small"));
        layer.bps = bps;
        layer.size = Some(size);
        layers.push(layer);
    }
    layers
}

/// The layer a forwarded video is on or switching to.
fn chosen(track: &TrackOut) -> Option<Rid> {
    track.layer.target.or(track.layer.current)
}

#[test]
fn what_a_video_wants_is_taken_up_at_its_next_frame_and_the_bandwidth_shared_anew() {
    let mut cat = receiver();
    cat.tracks_out = vec![
        track("ann", MediaKind::Video, true, Some("a1")),
        track("bob", MediaKind::Video, true, Some("a3")),
    ];
    cat.set_rendered_sizes(HashMap::from([(
        "ann".to_string(),
        RenderedSize::new(320, 180),
    )]));
    // 1.1 Mbit/s: split evenly, bob's 900 kbit/s top layer would not fit.
    cat.set_max_bitrate(Some(1_100_000));
    let now = Instant::now();
    let h = Rid::from("h");
    cat.forward(now, &ParticipantId("ann".into()), &frame(h), &layers(now));
    assert_eq!(
        chosen(&cat.tracks_out[0]),
        Some(Rid::from("l")),
        "ann's small tile"
    );
    cat.forward(now, &ParticipantId("bob".into()), &frame(h), &layers(now));
    assert_eq!(
        chosen(&cat.tracks_out[1]),
        Some(h),
        "bob gets what ann's tile leaves: {:?}",
        budgets(&cat)
    );
}
