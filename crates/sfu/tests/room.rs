//! The SFU forwarding real WebRTC between in-process str0m peers over 127.0.0.1: each
//! participant receives every other's audio and video, a late joiner receives and is received,
//! a participant who leaves stops reaching the others, and of a simulcast sender each receiver
//! gets one layer: the one that fits its bandwidth and the size at which it renders the sender.

mod peer;

use std::collections::HashMap;
use std::time::Duration;

use calling_sfu::runtime::{self, SfuConfig, SfuHandle};
use calling_sfu::{ParticipantId, RenderedSize};
use peer::{Peer, Seen};
use str0m::media::MediaKind;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Generous: ICE and DTLS of debug builds on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(60);
/// Frames a receiver must get from a sender to count as receiving it (a second of video).
const ENOUGH: usize = 30;

/// What the peers of one test have seen so far.
struct Observer {
    seen: mpsc::UnboundedReceiver<Seen>,
    /// Video frames per (receiver, origin).
    frames: HashMap<(String, String), usize>,
    /// Audio frames per (receiver, origin).
    audio: HashMap<(String, String), usize>,
    /// Video frames per (receiver, origin, layer tag).
    layer_frames: HashMap<(String, String, u8), usize>,
    keyframe_requests: HashMap<String, usize>,
    ended: Vec<(String, String)>,
    /// Participants the SFU told it removed them.
    gone: Vec<String>,
    /// Per (receiver, origin): the media time of the last video frame, in µs, and the largest
    /// step between two consecutive ones, either way.
    video_clock: HashMap<(String, String), (i128, i128)>,
}

impl Observer {
    fn new() -> (Observer, mpsc::UnboundedSender<Seen>) {
        let (tx, seen) = mpsc::unbounded_channel();
        let observer = Observer {
            seen,
            frames: HashMap::new(),
            audio: HashMap::new(),
            layer_frames: HashMap::new(),
            keyframe_requests: HashMap::new(),
            video_clock: HashMap::new(),
            ended: Vec::new(),
            gone: Vec::new(),
        };
        (observer, tx)
    }

    fn frames(&self, receiver: &str, origin: &str) -> usize {
        self.frames
            .get(&(receiver.to_string(), origin.to_string()))
            .copied()
            .unwrap_or(0)
    }

    fn audio(&self, receiver: &str, origin: &str) -> usize {
        self.audio
            .get(&(receiver.to_string(), origin.to_string()))
            .copied()
            .unwrap_or(0)
    }

    fn layer_frames(&self, receiver: &str, origin: &str, layer: &str) -> usize {
        let key = (
            receiver.to_string(),
            origin.to_string(),
            layer.as_bytes()[0],
        );
        self.layer_frames.get(&key).copied().unwrap_or(0)
    }

    /// The largest step between the media times of two consecutive video frames `receiver` got
    /// of `origin`, forward or back.
    fn largest_clock_step(&self, receiver: &str, origin: &str) -> Duration {
        let key = (receiver.to_string(), origin.to_string());
        let step = self.video_clock.get(&key).map_or(0, |(_, step)| *step);
        Duration::from_micros(u64::try_from(step).unwrap_or(u64::MAX))
    }

    fn keyframe_requests(&self, sender: &str) -> usize {
        self.keyframe_requests.get(sender).copied().unwrap_or(0)
    }

    /// Whether both of `origin`'s tracks (audio and video) were stopped at `receiver`.
    fn has_ended(&self, receiver: &str, origin: &str) -> bool {
        self.ended
            .iter()
            .filter(|(r, o)| r == receiver && o == origin)
            .count()
            == 2
    }

    /// Takes what the peers report until `done` holds; panics naming `what` at the deadline.
    async fn wait_until(&mut self, what: &str, done: impl Fn(&Observer) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        while !done(self) {
            match tokio::time::timeout_at(deadline, self.seen.recv()).await {
                Ok(Some(seen)) => self.record(seen),
                Ok(None) => panic!("every peer stopped before {what}"),
                Err(_) => panic!(
                    "timed out waiting for {what}; frames (receiver, origin): video {:?}, \
                     audio {:?}",
                    self.frames, self.audio
                ),
            }
        }
    }

    fn record(&mut self, seen: Seen) {
        match seen {
            Seen::Frame {
                receiver,
                origin,
                kind: MediaKind::Audio,
                ..
            } => *self.audio.entry((receiver, origin)).or_default() += 1,
            Seen::Frame {
                receiver,
                origin,
                layer,
                time,
                ..
            } => {
                let micros = i128::from(time.numer()) * 1_000_000 / i128::from(time.denom());
                let clock = self
                    .video_clock
                    .entry((receiver.clone(), origin.clone()))
                    .or_insert((micros, 0));
                clock.1 = clock.1.max((micros - clock.0).abs());
                clock.0 = micros;
                *self
                    .layer_frames
                    .entry((receiver.clone(), origin.clone(), layer))
                    .or_default() += 1;
                let key = (receiver, origin);
                *self.frames.entry(key).or_default() += 1;
            }
            Seen::KeyframeRequested { sender } => {
                *self.keyframe_requests.entry(sender).or_default() += 1
            }
            Seen::TrackEnded { receiver, origin } => self.ended.push((receiver, origin)),
            Seen::Gone { name } => self.gone.push(name),
        }
    }

    /// Whether each of `receivers` has `more` video and audio frames beyond `base` from each
    /// other of them.
    fn all_receive(&self, receivers: &[&str], base: &Counts, more: usize) -> bool {
        receivers.iter().all(|r| {
            receivers.iter().filter(|o| o != &r).all(|o| {
                self.frames(r, o) >= base.video(r, o) + more
                    && self.audio(r, o) >= base.audio(r, o) + more
            })
        })
    }

    fn counts(&self) -> Counts {
        Counts {
            video: self.frames.clone(),
            audio: self.audio.clone(),
        }
    }
}

/// A snapshot of the frame counts.
#[derive(Default)]
struct Counts {
    video: HashMap<(String, String), usize>,
    audio: HashMap<(String, String), usize>,
}

impl Counts {
    fn video(&self, receiver: &str, origin: &str) -> usize {
        let key = (receiver.to_string(), origin.to_string());
        self.video.get(&key).copied().unwrap_or(0)
    }

    fn audio(&self, receiver: &str, origin: &str) -> usize {
        let key = (receiver.to_string(), origin.to_string());
        self.audio.get(&key).copied().unwrap_or(0)
    }
}

/// An SFU whose layer choice only a receiver's cap drives: the bandwidth estimate of a debug
/// build on a loaded test machine swings with scheduling delays, which it reads as congestion.
async fn start_sfu_capped_only() -> SfuHandle {
    start_sfu_with(|config| config.estimate_bandwidth = false).await
}

async fn start_sfu() -> SfuHandle {
    start_sfu_with(|_| {}).await
}

/// An SFU on a loopback port, configured by `configure`.
async fn start_sfu_with(configure: impl FnOnce(&mut SfuConfig)) -> SfuHandle {
    let mut config = SfuConfig::new("127.0.0.1:0".parse().expect("an address"));
    configure(&mut config);
    let (sfu, _task) = runtime::start(config)
        .await
        .expect("the SFU binds loopback ports");
    sfu
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_participant_receives_every_other_of_its_room_including_a_late_joiner() {
    let sfu = start_sfu().await;
    let (mut observer, seen) = Observer::new();
    let mut peers = Vec::new();
    for name in ["ann", "bob", "cat"] {
        peers.push(Peer::join(sfu.clone(), "room-1", name, false, seen.clone()).await);
    }
    // Another call on the same SFU, whose media must stay in its own room.
    for name in ["eve", "fay"] {
        peers.push(Peer::join(sfu.clone(), "room-x", name, false, seen.clone()).await);
    }
    observer
        .wait_until("both rooms' participants to receive each other", |o| {
            o.all_receive(&["ann", "bob", "cat"], &Counts::default(), ENOUGH)
                && o.all_receive(&["eve", "fay"], &Counts::default(), ENOUGH)
        })
        .await;

    // A new receiver needs a key frame of each sender's track: the SFU asks for one.
    let requests_before: Vec<usize> = ["ann", "bob", "cat"]
        .iter()
        .map(|s| observer.keyframe_requests(s))
        .collect();
    peers.push(Peer::join(sfu.clone(), "room-1", "dan", false, seen.clone()).await);
    let base = observer.counts();
    observer
        .wait_until("the late joiner to receive and be received", |o| {
            o.all_receive(&["ann", "bob", "cat", "dan"], &base, ENOUGH)
        })
        .await;
    for (receiver, origin) in observer.frames.keys().chain(observer.audio.keys()) {
        let room = |name: &str| ["eve", "fay"].contains(&name);
        assert_eq!(
            room(receiver),
            room(origin),
            "{receiver} received {origin}'s video from another room"
        );
    }
    for (sender, before) in ["ann", "bob", "cat"].iter().zip(requests_before) {
        assert!(
            observer.keyframe_requests(sender) > before,
            "{sender} was not asked for a key frame when dan started receiving it"
        );
    }
    for peer in peers {
        peer.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_who_leaves_stops_reaching_the_others() {
    let sfu = start_sfu().await;
    let (mut observer, seen) = Observer::new();
    let mut peers = Vec::new();
    for name in ["ann", "bob", "cat"] {
        peers.push(Peer::join(sfu.clone(), "room-2", name, false, seen.clone()).await);
    }
    observer
        .wait_until("three participants to receive each other", |o| {
            o.all_receive(&["ann", "bob", "cat"], &Counts::default(), ENOUGH)
        })
        .await;

    // cat leaves through signalling, but its peer goes on sending to the SFU's port.
    sfu.leave(ParticipantId("cat".into()))
        .await
        .expect("cat was in the room");
    observer
        .wait_until("the others' m-lines of cat's track to be stopped", |o| {
            o.has_ended("ann", "cat") && o.has_ended("bob", "cat")
        })
        .await;
    let base = observer.counts();
    observer
        .wait_until("ann and bob to go on receiving each other", |o| {
            o.all_receive(&["ann", "bob"], &base, ENOUGH)
        })
        .await;
    for receiver in ["ann", "bob"] {
        assert_eq!(
            (
                observer.frames(receiver, "cat"),
                observer.audio(receiver, "cat")
            ),
            (base.video(receiver, "cat"), base.audio(receiver, "cat")),
            "{receiver} still receives cat's media after cat left"
        );
    }
    assert!(
        sfu.leave(ParticipantId("cat".into())).await.is_err(),
        "leaving twice is refused"
    );
    for peer in peers {
        peer.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_a_simulcast_sender_each_receiver_gets_one_layer() {
    let sfu = start_sfu_capped_only().await;
    let (mut observer, seen) = Observer::new();
    let mut peers = vec![Peer::join(sfu.clone(), "room-3", "ann", true, seen.clone()).await];
    for name in ["bob", "cat"] {
        peers.push(Peer::join(sfu.clone(), "room-3", name, false, seen.clone()).await);
    }
    observer
        .wait_until("bob and cat to receive ann's video", |o| {
            o.frames("bob", "ann") >= ENOUGH && o.frames("cat", "ann") >= ENOUGH
        })
        .await;
    // Nothing limits them: they end on the top layer, and then get it alone.
    observer
        .wait_until("bob and cat to be on ann's top layer", |o| {
            o.layer_frames("bob", "ann", "h") >= ENOUGH
                && o.layer_frames("cat", "ann", "h") >= ENOUGH
        })
        .await;
    let lower = |o: &Observer, receiver: &str| {
        o.layer_frames(receiver, "ann", "l") + o.layer_frames(receiver, "ann", "m")
    };
    let before = [lower(&observer, "bob"), lower(&observer, "cat")];
    observer
        .wait_until("more of the top layer", |o| {
            o.layer_frames("bob", "ann", "h") >= 2 * ENOUGH
                && o.layer_frames("cat", "ann", "h") >= 2 * ENOUGH
        })
        .await;
    assert_eq!(
        [lower(&observer, "bob"), lower(&observer, "cat")],
        before,
        "one layer at a time: nothing but the top layer once on it"
    );
    for peer in peers {
        peer.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_over_ice_tcp_receives_and_is_received_like_the_others() {
    let sfu = start_sfu_with(|config| {
        config.tcp = Some("127.0.0.1:0".parse().expect("an address"));
    })
    .await;
    // A stray client: a junk frame, then half a frame, then silence. It costs the others nothing.
    let mut stray = tokio::net::TcpStream::connect(sfu.tcp_addr().expect("a TCP listener"))
        .await
        .expect("connect to the SFU's TCP listener");
    tokio::io::AsyncWriteExt::write_all(&mut stray, &[0, 3, 1, 2, 3, 0, 200, 9])
        .await
        .expect("write junk");
    let (mut observer, seen) = Observer::new();
    let peers = vec![
        Peer::join(sfu.clone(), "room-1", "ann", false, seen.clone()).await,
        // Its only candidate is TCP: without the SFU's listener and framing nothing connects.
        Peer::join_over_tcp(sfu.clone(), "room-1", "tom", seen.clone()).await,
    ];
    observer
        .wait_until(
            "the UDP and the TCP participant to receive each other",
            |o| o.all_receive(&["ann", "tom"], &Counts::default(), ENOUGH),
        )
        .await;
    for peer in peers {
        peer.stop().await;
    }
}

/// ann and bob join one room and receive each other.
async fn ann_and_bob_receiving_each_other(
    sfu: &SfuHandle,
    observer: &mut Observer,
    seen: &mpsc::UnboundedSender<Seen>,
) -> Vec<Peer> {
    let mut peers = Vec::new();
    for name in ["ann", "bob"] {
        peers.push(Peer::join(sfu.clone(), "room-1", name, false, seen.clone()).await);
    }
    observer
        .wait_until("ann and bob to receive each other", |o| {
            o.all_receive(&["ann", "bob"], &Counts::default(), ENOUGH)
        })
        .await;
    peers
}

/// Waits until the SFU has noticed that `name`'s connection is interrupted.
async fn wait_interrupted(sfu: &SfuHandle, name: &str) {
    let deadline = Instant::now() + DEADLINE;
    let id = ParticipantId(name.to_string());
    while !sfu
        .is_interrupted(id.clone())
        .await
        .expect("still a participant")
    {
        assert!(
            Instant::now() < deadline,
            "the SFU never noticed {name} was gone"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_whose_network_changes_resumes_by_ice_restart_and_the_others_see_nothing() {
    let sfu = start_sfu().await;
    let (mut observer, seen) = Observer::new();
    let peers = ann_and_bob_receiving_each_other(&sfu, &mut observer, &seen).await;

    // Long enough for ICE at the SFU to give ann up: a blip an SDK sees as a network change.
    peers[0].lose_network();
    wait_interrupted(&sfu, "ann").await;
    peers[0].change_network();
    let base = observer.counts();
    observer
        .wait_until(
            "ann and bob to receive each other again after the restart",
            |o| o.all_receive(&["ann", "bob"], &base, ENOUGH),
        )
        .await;
    assert!(
        !sfu.is_interrupted(ParticipantId("ann".into()))
            .await
            .expect("ann is still a participant"),
        "ann's connection is back"
    );
    assert!(
        observer.ended.is_empty(),
        "tracks were stopped: {:?}",
        observer.ended
    );
    assert!(observer.gone.is_empty(), "removed: {:?}", observer.gone);
    for peer in peers {
        peer.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_not_back_within_the_reconnect_grace_is_removed() {
    let sfu = start_sfu_with(|config| config.reconnect_grace = Duration::from_secs(2)).await;
    let (mut observer, seen) = Observer::new();
    let peers = ann_and_bob_receiving_each_other(&sfu, &mut observer, &seen).await;
    peers[0].lose_network();
    observer
        .wait_until("ann removed and her tracks stopped at bob", |o| {
            o.gone == ["ann"] && o.has_ended("bob", "ann")
        })
        .await;
    for peer in peers {
        peer.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_whose_bitrate_is_capped_moves_down_a_layer_at_once_and_back_up_later() {
    let sfu = start_sfu_capped_only().await;
    let (mut observer, seen) = Observer::new();
    let peers = vec![
        Peer::join(sfu.clone(), "room-4", "ann", true, seen.clone()).await,
        Peer::join(sfu.clone(), "room-4", "bob", false, seen.clone()).await,
    ];
    observer
        .wait_until("bob to receive ann's top layer", |o| {
            o.layer_frames("bob", "ann", "h") >= ENOUGH
        })
        .await;

    // 250 kbit/s: ann's audio and her medium layer (about 120 kbit/s) fit, her top one does not.
    let requests = observer.keyframe_requests("ann");
    let lowest_frames = observer.layer_frames("bob", "ann", "l");
    let bob = ParticipantId("bob".into());
    sfu.set_max_bitrate(bob.clone(), Some(250_000))
        .await
        .expect("bob is a participant");
    observer
        .wait_until("bob to move to ann's medium layer", |o| {
            o.layer_frames("bob", "ann", "m") >= ENOUGH
        })
        .await;
    observer
        .wait_until("the switch to ask ann for a key frame", |o| {
            o.keyframe_requests("ann") > requests
        })
        .await;
    let top_frames = observer.layer_frames("bob", "ann", "h");
    observer
        .wait_until("more of the medium layer", |o| {
            o.layer_frames("bob", "ann", "m") >= 2 * ENOUGH
        })
        .await;
    assert_eq!(
        observer.layer_frames("bob", "ann", "h"),
        top_frames,
        "no top-layer frame after the switch"
    );
    assert_eq!(
        observer.layer_frames("bob", "ann", "l"),
        lowest_frames,
        "never lower than fits"
    );

    // Uncapped, the top layer fits again: bob moves back up, after the hold.
    let uncapped_at = Instant::now();
    sfu.set_max_bitrate(bob, None)
        .await
        .expect("bob is a participant");
    let medium_frames = observer.layer_frames("bob", "ann", "m");
    observer
        .wait_until("bob to move back to ann's top layer", |o| {
            o.layer_frames("bob", "ann", "h") >= top_frames + ENOUGH
        })
        .await;
    assert!(
        uncapped_at.elapsed() >= Duration::from_secs(3),
        "up only after the higher layer kept fitting"
    );
    assert!(
        observer.layer_frames("bob", "ann", "m") > medium_frames,
        "the medium layer went on while the top one proved it fits"
    );
    for peer in peers {
        peer.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_gets_the_smallest_layer_that_fills_its_view_and_moves_up_at_once_when_it_grows()
{
    let sfu = start_sfu_capped_only().await;
    let (mut observer, seen) = Observer::new();
    let bob = ParticipantId("bob".into());
    let views = |list: &[(&str, u32, u32)]| {
        list.iter()
            .map(|(user, w, h)| (user.to_string(), RenderedSize::new(*w, *h)))
            .collect::<HashMap<_, _>>()
    };
    let mut peers = vec![Peer::join(sfu.clone(), "room-5", "bob", false, seen.clone()).await];
    // bob renders ann in a small tile before she joins: her layers come 320×180, 640×360 and
    // 1280×720.
    sfu.set_rendered_sizes(bob.clone(), views(&[("ann", 320, 180)]))
        .await
        .expect("bob is a participant");
    peers.push(Peer::join(sfu.clone(), "room-5", "ann", true, seen.clone()).await);
    observer
        .wait_until("bob to receive ann's lowest layer", |o| {
            o.layer_frames("bob", "ann", "l") >= ENOUGH
        })
        .await;
    let higher = |o: &Observer| {
        (
            o.layer_frames("bob", "ann", "m"),
            o.layer_frames("bob", "ann", "h"),
        )
    };
    let before = higher(&observer);
    observer
        .wait_until("more of ann's lowest layer", |o| {
            o.layer_frames("bob", "ann", "l") >= 2 * ENOUGH
        })
        .await;
    assert_eq!(
        higher(&observer),
        before,
        "nothing larger than the tile needs"
    );

    // The tile grows to 640×360: the medium layer fills it, without waiting out the hold a
    // rise of the bandwidth estimate waits.
    let requests = observer.keyframe_requests("ann");
    let (medium, top) = higher(&observer);
    let grown_at = Instant::now();
    sfu.set_rendered_sizes(bob.clone(), views(&[("ann", 640, 360)]))
        .await
        .expect("bob is a participant");
    observer
        .wait_until("bob to move to ann's medium layer", |o| {
            o.layer_frames("bob", "ann", "m") > medium
        })
        .await;
    assert!(
        grown_at.elapsed() < Duration::from_secs(3),
        "moved up at once, not after a hold: {:?}",
        grown_at.elapsed()
    );
    observer
        .wait_until("more of the medium layer, asked for by a key frame", |o| {
            o.layer_frames("bob", "ann", "m") >= medium + ENOUGH
                && o.keyframe_requests("ann") > requests
        })
        .await;
    assert_eq!(
        observer.layer_frames("bob", "ann", "h"),
        top,
        "the top layer is more than the tile needs"
    );

    // Hidden: the lowest layer.
    let lowest = observer.layer_frames("bob", "ann", "l");
    sfu.set_rendered_sizes(bob.clone(), views(&[("ann", 0, 0)]))
        .await
        .expect("bob is a participant");
    observer
        .wait_until("bob to move back to ann's lowest layer", |o| {
            o.layer_frames("bob", "ann", "l") >= lowest + ENOUGH
        })
        .await;

    // ann no longer listed: no size limit, the top layer.
    sfu.set_rendered_sizes(bob.clone(), views(&[("dan", 320, 180)]))
        .await
        .expect("bob is a participant");
    observer
        .wait_until("bob to move to ann's top layer", |o| {
            o.layer_frames("bob", "ann", "h") >= top + ENOUGH
        })
        .await;
    assert!(
        sfu.set_rendered_sizes(ParticipantId("nobody".into()), HashMap::new())
            .await
            .is_err(),
        "sizes for no participant are refused"
    );
    for peer in peers {
        peer.stop().await;
    }
}

#[tokio::test]
async fn a_layer_switch_keeps_the_receivers_media_clock_running_on() {
    let sfu = start_sfu_capped_only().await;
    let (mut observer, seen) = Observer::new();
    let bob = ParticipantId("bob".into());
    let view = |w, h| HashMap::from([("ann".to_string(), RenderedSize::new(w, h))]);
    let mut peers = vec![Peer::join(sfu.clone(), "room-6", "bob", false, seen.clone()).await];
    sfu.set_rendered_sizes(bob.clone(), view(320, 180))
        .await
        .expect("bob is a participant");
    peers.push(Peer::join(sfu.clone(), "room-6", "ann", true, seen.clone()).await);
    observer
        .wait_until("bob to receive ann's lowest layer", |o| {
            o.layer_frames("bob", "ann", "l") >= ENOUGH
        })
        .await;
    // Ann's layers run on clocks 1,000 s apart; bob's view of her grows, then shrinks again.
    for (size, layer) in [((640, 360), "m"), ((320, 180), "l")] {
        let before = observer.layer_frames("bob", "ann", layer);
        sfu.set_rendered_sizes(bob.clone(), view(size.0, size.1))
            .await
            .expect("bob is a participant");
        observer
            .wait_until(&format!("bob to move to ann's layer {layer}"), |o| {
                o.layer_frames("bob", "ann", layer) >= before + ENOUGH
            })
            .await;
    }
    let step = observer.largest_clock_step("bob", "ann");
    assert!(
        step < Duration::from_secs(1),
        "bob's clock of ann's video jumped {step:?} between two frames"
    );
    for peer in peers {
        peer.stop().await;
    }
}
