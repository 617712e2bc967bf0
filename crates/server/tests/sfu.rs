//! Group calls through the embedded SFU (`--sfu-udp`), end to end: the real `calling-server`
//! binary, users who call, accept and hang up over its WebSocket as the SDK does, and media
//! peers (str0m, over 127.0.0.1) that join the SFU with `sfu` offers on those WebSockets and
//! answer the server's `sfu` offers; a member's `sfuViews` choosing the layers it gets. Also
//! the refusals of `sfu` and `sfuViews` messages, and of the flag at startup.

mod process;
mod sfu_support;

use std::process::Stdio;
use std::sync::atomic::Ordering;

use calling_protocol::{
    CallType, ClientMessage, ErrorCode, IceCandidate, Invited, RelayedSignal, RenderedView, RoomId,
    ServerMessage, Signal, MAX_SFU_VIEWS,
};
use process::ServerProcess;
use sfu_support::peer::Peer;
use sfu_support::{an_offer, group_call, metric, pairs, Observer, User};
use str0m::change::SdpAnswer;
use str0m::media::MediaKind;

/// Frames a receiver must get from a sender to count as receiving it (a second of video).
const ENOUGH: usize = 30;
const SFU_FLAGS: [&str; 2] = ["--sfu-udp", "127.0.0.1:0"];

/// Three users in one call, each with a media peer on the SFU; cat's session is resumable if
/// `cat_resumable`.
async fn three_in_the_sfu(
    server: &ServerProcess,
    cat_resumable: bool,
) -> (Vec<User>, Vec<Peer>, Observer, RoomId) {
    let mut alice = User::login(server.addr, "alice").await;
    let mut bob = User::login(server.addr, "bob").await;
    let mut cat = User::connect(server.addr, "cat", cat_resumable).await;
    assert!(alice.sfu_offered, "loginOk says the server runs an SFU");
    let room = group_call(&mut alice, &mut [&mut bob, &mut cat]).await;
    let mut observer = Observer::new();
    let mut peers = Vec::new();
    for user in [&mut alice, &mut bob, &mut cat] {
        // As the SDK may, before joining the SFU: the join then applies them first, which
        // gives the SFU's first offer time to be ready before its answer is sent.
        user.send(views(
            room,
            &[("alice", 640, 360), ("bob", 640, 360), ("cat", 640, 360)],
        ));
        peers.push(user.start_media(room, observer.sender()).await);
    }
    let names = ["alice", "bob", "cat"];
    observer
        .until("everyone receives both others", |o| {
            o.all_receive(&pairs(&names), ENOUGH)
        })
        .await;
    for user in [&alice, &bob, &cat] {
        assert_eq!(
            user.offers_before_answer.load(Ordering::Relaxed),
            0,
            "{}: an offer of the SFU arrived before the answer to its own offer, which an SDK \
             ignores",
            user.name
        );
    }
    (vec![alice, bob, cat], peers, observer, room)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_of_a_group_call_each_receive_both_others_through_the_sfu() {
    let server = ServerProcess::start(&SFU_FLAGS).await;
    let (_users, peers, observer, _room) = three_in_the_sfu(&server, false).await;
    // The origins are the msid stream ids of the tracks: the senders' user ids.
    let origins: std::collections::BTreeSet<&str> =
        observer.frames.keys().map(|(_, o, _)| o.as_str()).collect();
    assert_eq!(origins, ["alice", "bob", "cat"].into());
    assert_eq!(
        metric(server.addr, "calling_sfu_participants").await,
        Some(3.0)
    );
    assert_eq!(
        metric(server.addr, "calling_sfu_joins_total").await,
        Some(3.0)
    );
    for peer in peers {
        peer.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_who_hangs_up_stops_reaching_the_others() {
    let server = ServerProcess::start(&SFU_FLAGS).await;
    let (mut users, peers, mut observer, room) = three_in_the_sfu(&server, false).await;
    // cat hangs up; its peer goes on sending.
    users[2].send(ClientMessage::Hangup { room_id: room });
    observer
        .until("cat's audio and video stopped at alice and bob", |o| {
            o.ended("alice", "cat") == 2 && o.ended("bob", "cat") == 2
        })
        .await;
    let from_cat = |o: &Observer, r: &str| {
        o.frames(r, "cat", MediaKind::Audio) + o.frames(r, "cat", MediaKind::Video)
    };
    let before = [from_cat(&observer, "alice"), from_cat(&observer, "bob")];
    observer.go_on_receiving("alice", "bob", ENOUGH).await;
    let after = [from_cat(&observer, "alice"), from_cat(&observer, "bob")];
    assert_eq!(before, after, "nothing of cat after its tracks stopped");
    assert_eq!(
        metric(server.addr, "calling_sfu_participants").await,
        Some(2.0)
    );
    // alice hangs up too, which ends the call: bob, its last member, leaves the SFU with it
    // (by the time bob hears of the end, the SFU room is empty).
    users[0].send(ClientMessage::Hangup { room_id: room });
    users[1]
        .until(|m| matches!(m, ServerMessage::CallEnded(_)))
        .await;
    assert_eq!(
        metric(server.addr, "calling_sfu_participants").await,
        Some(0.0)
    );
    for peer in peers {
        peer.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_socket_is_gone_for_good_leaves_the_sfu() {
    let server = ServerProcess::start(&SFU_FLAGS).await;
    let (users, peers, mut observer, _room) = three_in_the_sfu(&server, false).await;
    // Not resumable: the session ends with its socket, and with it cat's membership.
    users[2].vanish();
    observer
        .until("cat's audio and video stopped at alice and bob", |o| {
            o.ended("alice", "cat") == 2 && o.ended("bob", "cat") == 2
        })
        .await;
    assert_eq!(
        metric(server.addr, "calling_sfu_participants").await,
        Some(2.0)
    );
    for peer in peers {
        peer.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_session_resumes_keeps_its_place_in_the_sfu() {
    let server = ServerProcess::start(&SFU_FLAGS).await;
    let (mut users, mut peers, mut observer, room) = three_in_the_sfu(&server, true).await;
    users[2].reconnect().await;
    // dan joins: the SFU's offer of dan's tracks reaches cat on its new socket, and cat's
    // tracks reach dan, since cat is still in the SFU.
    let mut dan = User::login(server.addr, "dan").await;
    users[0].send(ClientMessage::Invite {
        request_id: 3,
        user_ids: vec!["dan".into()],
        call_type: CallType::Video,
        is_group: true,
        group_id: None,
        room_id: Some(room),
    });
    let invite_id = match dan.next().await {
        ServerMessage::Invited(Invited { invite_id, .. }) => invite_id,
        other => panic!("dan: expected invited, got {other:?}"),
    };
    dan.send(ClientMessage::Accept {
        request_id: 4,
        invite_id,
    });
    dan.until(|m| matches!(m, ServerMessage::Joined(_))).await;
    peers.push(dan.start_media(room, observer.sender()).await);
    observer
        .until("cat and dan receive each other", |o| {
            o.all_receive(&[("cat", "dan"), ("dan", "cat")], ENOUGH)
        })
        .await;
    assert_eq!(
        observer.ended("alice", "cat") + observer.ended("bob", "cat"),
        0
    );
    assert_eq!(
        metric(server.addr, "calling_sfu_participants").await,
        Some(4.0)
    );
    for peer in peers {
        peer.stop().await;
    }
}

/// A trickled ICE candidate, as the browser gives it.
fn candidate(line: &str) -> Signal {
    Signal::Candidate(IceCandidate {
        candidate: line.into(),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
    })
}

/// After a refusal the socket and the call still work: alice's relay reaches bob.
async fn still_usable(alice: &User, bob: &mut User, room: RoomId) {
    let media = Signal::Media {
        audio: true,
        video: false,
    };
    alice.send(ClientMessage::Relay {
        room_id: room,
        to: "bob".into(),
        signal: media.clone(),
    });
    let is_signal = |m: &ServerMessage| matches!(m, ServerMessage::Signal(_));
    match bob.until(is_signal).await {
        ServerMessage::Signal(RelayedSignal { from, signal, .. }) => {
            assert_eq!((from.as_str(), signal), ("alice", media));
        }
        other => unreachable!("{other:?}"),
    }
}

#[tokio::test]
async fn sfu_messages_are_refused_with_a_clear_error_and_cost_nothing() {
    let server = ServerProcess::start(&SFU_FLAGS).await;
    let mut alice = User::login(server.addr, "alice").await;
    let mut bob = User::login(server.addr, "bob").await;
    let mut dave = User::login(server.addr, "dave").await;
    let room = group_call(&mut alice, &mut [&mut bob]).await;
    let offer = || Signal::Offer { sdp: an_offer() };

    // Not a member of that call.
    dave.signal_sfu(room, offer());
    assert_eq!(dave.error().await, ErrorCode::NotInCall);
    // Not a member of any call with that number either.
    alice.signal_sfu(room + 1, offer());
    assert_eq!(alice.error().await, ErrorCode::NotInCall);
    // An SDP that does not parse.
    alice.signal_sfu(
        room,
        Signal::Offer {
            sdp: "v=0\r\nnonsense".into(),
        },
    );
    assert_eq!(alice.error().await, ErrorCode::InvalidParam);
    // An answer when the SFU offered nothing: before joining, and after.
    alice.signal_sfu(room, Signal::Answer { sdp: an_offer() });
    assert_eq!(alice.error().await, ErrorCode::InvalidParam);
    // A renegotiating offer for a connection the SFU does not have.
    alice.renegotiate_sfu(room, an_offer());
    assert_eq!(alice.error().await, ErrorCode::SfuRejoin);
    // A candidate before joining.
    alice.signal_sfu(
        room,
        candidate("candidate:1 1 udp 2130706431 127.0.0.1 9 typ host"),
    );
    assert_eq!(alice.error().await, ErrorCode::InvalidParam);
    // Neither an offer, an answer nor a candidate.
    alice.signal_sfu(
        room,
        Signal::Media {
            audio: true,
            video: true,
        },
    );
    assert_eq!(alice.error().await, ErrorCode::InvalidParam);
    still_usable(&alice, &mut bob, room).await;

    // A member joins (alone in the SFU, so the SFU offers it nothing), then answers anyway.
    let mut signalling = alice.sfu.take().expect("alice's signalling");
    alice.signal_sfu(room, offer());
    let answer = tokio::time::timeout(process::DEADLINE, signalling.answers.recv())
        .await
        .expect("the SFU answers in time")
        .expect("socket open");
    assert!(SdpAnswer::from_sdp_string(&answer).is_ok(), "{answer}");
    alice.signal_sfu(room, Signal::Answer { sdp: answer });
    assert_eq!(alice.error().await, ErrorCode::InvalidParam);
    // A candidate that is not one; then a trickled one, which is taken (no refusal counted).
    alice.signal_sfu(room, candidate("candidate:nonsense"));
    assert_eq!(alice.error().await, ErrorCode::InvalidParam);
    alice.signal_sfu(
        room,
        candidate("candidate:2 1 udp 2130706431 127.0.0.1 10 typ host"),
    );
    still_usable(&alice, &mut bob, room).await;
    assert_eq!(
        metric(server.addr, "calling_sfu_refusals_total").await,
        Some(9.0)
    );
}

#[tokio::test]
async fn without_the_flag_sfu_messages_are_refused_and_login_says_no_sfu() {
    let server = ServerProcess::start(&[]).await;
    let mut alice = User::login(server.addr, "alice").await;
    let mut bob = User::login(server.addr, "bob").await;
    assert!(!alice.sfu_offered);
    let room = group_call(&mut alice, &mut [&mut bob]).await;
    alice.signal_sfu(room, Signal::Offer { sdp: an_offer() });
    assert_eq!(alice.error().await, ErrorCode::NoSfu);
    alice.send(views(room, &[("bob", 640, 360)]));
    assert_eq!(alice.error().await, ErrorCode::NoSfu);
    still_usable(&alice, &mut bob, room).await;
    assert_eq!(metric(server.addr, "calling_sfu_participants").await, None);
}

/// Runs the binary with `flags`; returns its exit code and what it wrote to stderr.
async fn refused_start(flags: &[&str]) -> (Option<i32>, String) {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_calling-server"))
        .args(["--listen", "127.0.0.1:0"])
        .args(flags)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(process::DEADLINE, run)
        .await
        .expect("calling-server exits at once")
        .expect("calling-server runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn an_unusable_sfu_address_stops_the_server_at_startup() {
    let (code, stderr) = refused_start(&["--sfu-udp", "0.0.0.0:0"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--sfu-udp 0.0.0.0:0") && stderr.contains("specific IP"),
        "{stderr}"
    );
    let flags = ["--sfu-udp", "127.0.0.1:0", "--sfu-tcp", "0.0.0.0:0"];
    let (code, stderr) = refused_start(&flags).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--sfu-tcp 0.0.0.0:0") && stderr.contains("specific IP"),
        "{stderr}"
    );
    let (code, stderr) = refused_start(&["--sfu-tcp", "127.0.0.1:0"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--sfu-udp"),
        "ICE-TCP needs the SFU: {stderr}"
    );
    let flags = ["--sfu-udp", "127.0.0.1:0", "--sfu-announce", "0.0.0.0"];
    let (code, stderr) = refused_start(&flags).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--sfu-announce"), "{stderr}");
    let (code, stderr) = refused_start(&["--sfu-announce", "192.0.2.10"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--sfu-udp"),
        "an announced IP needs the SFU: {stderr}"
    );
}

/// The candidates of the answer alice gets to her first `sfu` offer, from a server run with
/// `flags`.
async fn answer_candidates(flags: &[&str]) -> Vec<String> {
    let server = ServerProcess::start(flags).await;
    let mut alice = User::login(server.addr, "alice").await;
    let mut bob = User::login(server.addr, "bob").await;
    let room = group_call(&mut alice, &mut [&mut bob]).await;
    let mut signalling = alice.sfu.take().expect("alice's signalling");
    alice.signal_sfu(room, Signal::Offer { sdp: an_offer() });
    let answer = tokio::time::timeout(process::DEADLINE, signalling.answers.recv())
        .await
        .expect("the SFU answers in time")
        .expect("socket open");
    answer
        .lines()
        .filter(|l| l.contains("candidate:"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn an_announced_ip_is_the_one_in_the_sfus_candidates() {
    // A documentation address: nothing is ever sent to it, it only appears in the SDP.
    let flags = [
        "--sfu-udp",
        "127.0.0.1:0",
        "--sfu-tcp",
        "127.0.0.1:0",
        "--sfu-announce",
        "192.0.2.10",
    ];
    let candidates = answer_candidates(&flags).await;
    assert_eq!(candidates.len(), 2, "{candidates:?}");
    assert!(
        candidates.iter().all(|c| c.contains(" 192.0.2.10 ")),
        "{candidates:?}"
    );
}

#[tokio::test]
async fn with_ice_tcp_the_sfus_answer_offers_a_tcp_candidate_too() {
    let flags = ["--sfu-udp", "127.0.0.1:0", "--sfu-tcp", "127.0.0.1:0"];
    let candidates = answer_candidates(&flags).await;
    assert!(
        candidates.iter().any(|c| c.contains(" udp ")),
        "{candidates:?}"
    );
    assert!(
        candidates
            .iter()
            .any(|c| c.contains(" tcp ") && c.contains("tcptype passive")),
        "{candidates:?}"
    );
}

/// An `sfuViews` message of call `room`: (user, width, height) for each view.
fn views(room: RoomId, list: &[(&str, u32, u32)]) -> ClientMessage {
    ClientMessage::SfuViews {
        room_id: room,
        views: list
            .iter()
            .map(|(user, width, height)| RenderedView {
                user_id: user.to_string(),
                width: *width,
                height: *height,
            })
            .collect(),
    }
}

#[tokio::test]
async fn sfu_views_are_refused_like_sfu_messages_and_else_not_answered() {
    let server = ServerProcess::start(&SFU_FLAGS).await;
    let mut alice = User::login(server.addr, "alice").await;
    let mut bob = User::login(server.addr, "bob").await;
    let mut dave = User::login(server.addr, "dave").await;
    let room = group_call(&mut alice, &mut [&mut bob]).await;

    dave.send(views(room, &[("alice", 640, 360)]));
    assert_eq!(dave.error().await, ErrorCode::NotInCall);
    let too_many: Vec<(String, u32, u32)> = (0..=MAX_SFU_VIEWS)
        .map(|i| (format!("user{i}"), 320, 180))
        .collect();
    let too_many: Vec<(&str, u32, u32)> = too_many
        .iter()
        .map(|(u, w, h)| (u.as_str(), *w, *h))
        .collect();
    alice.send(views(room, &too_many));
    assert_eq!(alice.error().await, ErrorCode::InvalidParam);
    // As many as allowed, before joining the SFU: taken, and not answered, so the next reply
    // alice gets is the refusal of a call she is not in.
    alice.send(views(room, &too_many[..MAX_SFU_VIEWS]));
    alice.send(views(room + 1, &[("bob", 640, 360)]));
    assert_eq!(alice.error().await, ErrorCode::NotInCall);
    still_usable(&alice, &mut bob, room).await;
    assert_eq!(
        metric(server.addr, "calling_sfu_refusals_total").await,
        Some(3.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_sent_before_joining_the_sfu_choose_the_layers_once_joined() {
    let server = ServerProcess::start(&SFU_FLAGS).await;
    let mut alice = User::login(server.addr, "alice").await;
    let mut bob = User::login(server.addr, "bob").await;
    let room = group_call(&mut alice, &mut [&mut bob]).await;
    // bob's app shows alice in a small tile before bob's media joins the SFU. Her layers come
    // 320×180, 640×360 and 1280×720: the lowest fills the tile.
    bob.send(views(room, &[("alice", 320, 180)]));
    let mut observer = Observer::new();
    let peers = vec![
        alice.start_media_with(room, observer.sender(), true).await,
        bob.start_media(room, observer.sender()).await,
    ];
    observer
        .until("bob to receive alice's video", |o| {
            o.frames("bob", "alice", MediaKind::Video) >= 2 * ENOUGH
        })
        .await;
    let larger = |o: &Observer| {
        (
            o.layer_frames("bob", "alice", "m"),
            o.layer_frames("bob", "alice", "h"),
        )
    };
    // Bandwidth alone would give bob her top layer from the start (it fits the estimate the
    // SFU starts from); a frame or two of another may pass while her layers start.
    let before = larger(&observer);
    assert!(
        before.0 + before.1 <= 4,
        "the lowest layer from the start, not {before:?} frames of larger ones"
    );

    // Full screen: no longer the lowest layer.
    bob.send(views(room, &[("alice", 1280, 720)]));
    let (medium, top) = before;
    observer
        .until("bob to receive a larger layer of alice", |o| {
            o.layer_frames("bob", "alice", "m") + o.layer_frames("bob", "alice", "h")
                >= medium + top + ENOUGH
        })
        .await;
    for peer in peers {
        peer.stop().await;
    }
}
