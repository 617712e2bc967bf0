use calling_protocol::{
    Accepted, CallType, ClientMessage, InviteSent, Invited, Joined, MemberLeft, RenderedView,
    ServerMessage, SfuSignal, Signal,
};

use super::*;
use crate::health::GIVE_UP_MS;
use crate::{Command, Input, MediaKind, MediaOutcome, SdpKind, SessionDescription, Timer};

const ROOM: u32 = 3;

/// Logged in as `me` to a server that runs an SFU (or not).
fn session(me: &str, sfu: bool) -> Session {
    let mut s = Session::logged_in_as(me);
    s.sfu_available = sfu;
    s
}

fn command(command: Command) -> Input {
    Input::Command {
        request: 1,
        command,
    }
}

fn server(message: ServerMessage) -> Input {
    Input::Server(message)
}

fn peer(user: &str, event: PeerEvent) -> Input {
    Input::Peer {
        user_id: user.into(),
        event,
    }
}

fn state(user: &str, state: PeerState) -> Input {
    peer(user, PeerEvent::ConnectionState(state))
}

fn from_sfu(signal: Signal) -> Input {
    server(ServerMessage::Sfu(SfuSignal {
        room_id: ROOM,
        signal,
    }))
}

fn to_sfu(signal: Signal) -> Effect {
    Effect::Send(ClientMessage::Sfu {
        room_id: ROOM,
        signal,
        join: false,
    })
}

/// The first offer of a new connection to the SFU, which joins it.
fn join_sfu(sdp: &str) -> Effect {
    Effect::Send(ClientMessage::Sfu {
        room_id: ROOM,
        signal: Signal::Offer { sdp: sdp.into() },
        join: true,
    })
}

fn our_offer(sdp: &str) -> Input {
    peer(
        SFU_LINK,
        PeerEvent::LocalDescription(SessionDescription {
            kind: SdpKind::Offer,
            sdp: sdp.into(),
        }),
    )
}

/// The participants `effects` tell the app of with `event` (`PeerMediaInterrupted` or
/// `PeerMediaRestored`).
fn told(effects: &[Effect], restored: bool) -> Vec<&str> {
    emitted(effects)
        .into_iter()
        .filter_map(|e| match (e, restored) {
            (AppEvent::PeerMediaInterrupted { user_id }, false)
            | (AppEvent::PeerMediaRestored { user_id }, true) => Some(user_id.as_str()),
            _ => None,
        })
        .collect()
}

fn created(effects: &[Effect]) -> Vec<&str> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::CreatePeer { user_id, .. } => Some(user_id.as_str()),
            _ => None,
        })
        .collect()
}

fn emitted(effects: &[Effect]) -> Vec<&AppEvent> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Emit(event) => Some(event),
            _ => None,
        })
        .collect()
}

/// The capture asked for in `effects` succeeded.
fn media_opened(s: &mut Session, effects: &[Effect]) {
    let token = effects
        .iter()
        .find_map(|e| match e {
            Effect::OpenMedia { token, .. } => Some(*token),
            _ => None,
        })
        .expect("a capture was asked for");
    s.ok(Input::Media {
        token,
        outcome: MediaOutcome::Opened {
            audio: true,
            video: true,
        },
    });
}

/// alice group-calls bob and carol on `sfu`; the invitation is confirmed, her camera is open.
fn inviter(sfu: bool) -> (Session, Vec<Effect>) {
    let mut s = session("alice", sfu);
    let started = s.ok(command(Command::GroupCall {
        user_ids: vec!["bob".into(), "carol".into()],
        call_type: CallType::Video,
        group_id: None,
    }));
    media_opened(&mut s, &started);
    let sent = s.ok(server(ServerMessage::InviteSent(InviteSent {
        request_id: 1,
        invite_id: "i".into(),
        room_id: ROOM,
        user_ids: vec!["bob".into(), "carol".into()],
    })));
    (s, sent)
}

fn accepted(user: &str) -> Input {
    server(ServerMessage::Accepted(Accepted {
        room_id: ROOM,
        invite_id: "i".into(),
        user_id: user.into(),
    }))
}

fn sfu_answers(s: &mut Session) {
    s.ok(our_offer("ours"));
    s.ok(from_sfu(Signal::Answer { sdp: "sfu".into() }));
    s.ok(peer(SFU_LINK, PeerEvent::RemoteDescriptionApplied));
}

fn media_state_for(user: &str) -> Effect {
    Effect::Send(ClientMessage::Relay {
        room_id: ROOM,
        to: user.into(),
        signal: Signal::Media {
            audio: true,
            video: true,
        },
    })
}

#[test]
fn a_group_call_on_a_server_with_an_sfu_makes_one_connection_to_it_and_none_per_invitee() {
    let (_, sent) = inviter(true);
    assert_eq!(created(&sent), [SFU_LINK]);
    let sfu = sent
        .iter()
        .find(|e| matches!(e, Effect::CreatePeer { .. }))
        .cloned();
    assert!(
        matches!(
            sfu,
            Some(Effect::CreatePeer {
                initiator: true,
                polite: false,
                ..
            })
        ),
        "we offer to the SFU, which yields on glare: {sfu:?}"
    );
    assert_connects_to_sfu(&sent);
}

/// `effects` start a connection to the SFU: our offer, with our media on it.
fn assert_connects_to_sfu(effects: &[Effect]) {
    for wanted in [
        Effect::CreateOffer {
            user_id: SFU_LINK.into(),
        },
        Effect::AttachMedia {
            user_id: SFU_LINK.into(),
        },
    ] {
        assert!(
            effects.contains(&wanted),
            "{wanted:?} missing from {effects:?}"
        );
    }
}

#[test]
fn without_an_sfu_and_for_one_to_one_calls_each_participant_gets_its_own_connection() {
    let (_, sent) = inviter(false);
    assert_eq!(created(&sent), ["bob", "carol"]);

    let mut s = session("alice", true);
    s.ok(command(Command::Call {
        user_id: "bob".into(),
        call_type: CallType::Video,
    }));
    let sent = s.ok(server(ServerMessage::InviteSent(InviteSent {
        request_id: 1,
        invite_id: "i".into(),
        room_id: ROOM,
        user_ids: vec!["bob".into()],
    })));
    assert_eq!(created(&sent), ["bob"], "a 1:1 call stays peer to peer");
}

#[test]
fn the_sfu_connection_negotiates_through_sfu_messages() {
    let (mut s, _) = inviter(true);
    let offer = s.ok(our_offer("ours"));
    assert_eq!(offer, [join_sfu("ours")], "the first offer joins");
    let candidate = calling_protocol::IceCandidate {
        candidate: "candidate:1".into(),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
    };
    let trickled = s.ok(peer(SFU_LINK, PeerEvent::LocalCandidate(candidate.clone())));
    assert_eq!(trickled, [to_sfu(Signal::Candidate(candidate))]);

    let applied = s.ok(from_sfu(Signal::Answer { sdp: "sfu".into() }));
    assert_eq!(
        applied,
        [Effect::ApplyRemoteDescription {
            user_id: SFU_LINK.into(),
            description: SessionDescription {
                kind: SdpKind::Answer,
                sdp: "sfu".into()
            }
        }]
    );
    s.ok(peer(SFU_LINK, PeerEvent::RemoteDescriptionApplied));

    // The SFU offers when another participant's tracks come or go; we answer it.
    let renegotiated = s.ok(from_sfu(Signal::Offer { sdp: "more".into() }));
    assert!(matches!(
        renegotiated.as_slice(),
        [Effect::ApplyRemoteDescription { user_id, description }]
            if user_id == SFU_LINK && description.kind == SdpKind::Offer
    ));
    s.ok(peer(SFU_LINK, PeerEvent::RemoteDescriptionApplied));
    let answer = s.ok(peer(
        SFU_LINK,
        PeerEvent::LocalDescription(SessionDescription {
            kind: SdpKind::Answer,
            sdp: "ok".into(),
        }),
    ));
    assert_eq!(answer, [to_sfu(Signal::Answer { sdp: "ok".into() })]);

    // Our own later offer (an ICE restart, our tracks changed) renegotiates.
    s.ok(peer(SFU_LINK, PeerEvent::NegotiationNeeded));
    let again = s.ok(our_offer("restart"));
    assert_eq!(
        again,
        [to_sfu(Signal::Offer {
            sdp: "restart".into()
        })]
    );

    // A signal for another room finds nothing.
    let stray = s.ok(server(ServerMessage::Sfu(SfuSignal {
        room_id: ROOM + 1,
        signal: Signal::Offer { sdp: "x".into() },
    })));
    assert!(stray.is_empty());
}

#[test]
fn participants_reached_through_the_sfu_enter_when_their_media_arrives_on_it() {
    let (mut s, _) = inviter(true);
    sfu_answers(&mut s);
    let accept = s.ok(accepted("bob"));
    assert!(
        created(&accept).is_empty(),
        "no connection to bob: {accept:?}"
    );
    assert!(
        !accept
            .iter()
            .any(|e| matches!(e, Effect::AttachMedia { .. })),
        "bob has no connection to attach to: {accept:?}"
    );
    assert!(
        !accept.contains(&media_state_for("bob")),
        "the SFU link is not up yet"
    );

    // The SFU connection comes up: bob hears our media state (through the server, not the
    // SFU), as over a connection of his own.
    let up = s.ok(state(SFU_LINK, PeerState::Connected));
    assert_eq!(up, [media_state_for("bob")]);

    // A newcomer once the SFU link is up hears it at once.
    let carol = s.ok(accepted("carol"));
    assert!(carol.contains(&media_state_for("carol")), "{carol:?}");

    // The glue reports bob's media by the stream id the SFU gives his tracks.
    let arrived = s.ok(forwarded("bob", MediaKind::Audio));
    assert_eq!(
        emitted(&arrived),
        [&AppEvent::UserEnter {
            user_id: "bob".into()
        }]
    );
}

#[test]
fn an_invitee_joins_the_sfu_on_accept_and_connects_to_nobody_while_it_rings() {
    let mut s = session("bob", true);
    let rings = s.ok(server(ServerMessage::Invited(Invited {
        invite_id: "i".into(),
        room_id: ROOM,
        sponsor: "alice".into(),
        user_ids: vec!["bob".into(), "carol".into()],
        call_type: CallType::Video,
        is_group: true,
        group_id: None,
    })));
    assert!(created(&rings).is_empty(), "{rings:?}");
    s.ok(command(Command::Accept));
    let joined = s.ok(server(ServerMessage::Joined(Joined {
        request_id: 1,
        room_id: ROOM,
        call_type: CallType::Video,
        members: vec!["alice".into(), "carol".into()],
        pending: vec![],
    })));
    assert_eq!(created(&joined), [SFU_LINK]);
    assert!(reaches_via_sfu(&s, "alice") && reaches_via_sfu(&s, "carol"));
}

fn reaches_via_sfu(s: &Session, user: &str) -> bool {
    let call = s.call.as_ref().expect("in a call");
    call.peers.get(user).is_some_and(|p| p.role == Role::ViaSfu)
}

fn relayed(from: &str, signal: Signal) -> Input {
    server(ServerMessage::Signal(calling_protocol::RelayedSignal {
        room_id: ROOM,
        from: from.into(),
        signal,
    }))
}

/// alice called bob 1:1 on a server with an SFU; he accepted, their connection is up and his
/// media arrived.
fn one_to_one() -> Session {
    let mut s = session("alice", true);
    let started = s.ok(command(Command::Call {
        user_id: "bob".into(),
        call_type: CallType::Video,
    }));
    media_opened(&mut s, &started);
    s.ok(server(ServerMessage::InviteSent(InviteSent {
        request_id: 1,
        invite_id: "i".into(),
        room_id: ROOM,
        user_ids: vec!["bob".into()],
    })));
    s.ok(accepted("bob"));
    s.ok(state("bob", PeerState::Connected));
    s.ok(peer("bob", PeerEvent::RemoteMedia));
    s.ok(relayed(
        "bob",
        Signal::Media {
            audio: true,
            video: true,
        },
    ));
    s
}

fn forwarded(user: &str, kind: MediaKind) -> Input {
    peer(
        SFU_LINK,
        PeerEvent::ForwardedMedia {
            user_id: user.into(),
            kind,
        },
    )
}

/// [`one_to_one`], then alice invites carol: the call moves to the SFU.
fn grown() -> (Session, Vec<Effect>) {
    let mut s = one_to_one();
    let grew = s.ok(command(Command::GroupCall {
        user_ids: vec!["carol".into()],
        call_type: CallType::Video,
        group_id: None,
    }));
    (s, grew)
}

#[test]
fn a_one_to_one_call_that_grows_connects_to_the_sfu_and_keeps_its_connection_meanwhile() {
    let (s, grew) = grown();
    assert_eq!(created(&grew), [SFU_LINK], "{grew:?}");
    assert!(
        !grew
            .iter()
            .any(|e| matches!(e, Effect::ClosePeer { .. } | Effect::RetirePeer { .. })),
        "bob's media keeps flowing on his own connection until it flows through the SFU"
    );
    assert!(!reaches_via_sfu(&s, "bob"));
}

#[test]
fn a_member_moves_to_the_sfu_when_all_its_media_arrives_there_and_the_app_sees_nothing_of_it() {
    let (mut s, _) = grown();
    sfu_answers(&mut s);
    s.ok(state(SFU_LINK, PeerState::Connected));
    let audio = s.ok(forwarded("bob", MediaKind::Audio));
    assert!(
        audio.is_empty(),
        "bob's video still comes over his own connection only: {audio:?}"
    );
    assert!(!reaches_via_sfu(&s, "bob"));
    let moved = s.ok(forwarded("bob", MediaKind::Video));
    assert_eq!(
        moved,
        [Effect::RetirePeer {
            user_id: "bob".into()
        }],
        "bob already entered: no event, and his elements stay"
    );
    assert!(reaches_via_sfu(&s, "bob"));

    // The newcomer is reached through the SFU from the start.
    let carol = s.ok(accepted("carol"));
    assert!(created(&carol).is_empty(), "{carol:?}");
    assert!(reaches_via_sfu(&s, "carol"));
}

#[test]
fn a_member_connection_dropping_after_the_move_is_no_interruption() {
    let (mut s, _) = grown();
    sfu_answers(&mut s);
    s.ok(state(SFU_LINK, PeerState::Connected));
    // bob moved first and closed his side.
    let dropped = s
        .handle(1_000, state("bob", PeerState::Failed))
        .expect("ok");
    assert_eq!(
        dropped,
        [Effect::RetirePeer {
            user_id: "bob".into()
        }]
    );
    let later = s
        .handle(40_000, Input::Timer(Timer::PeerHealth))
        .expect("ok");
    assert!(
        !later.iter().any(|e| matches!(e, Effect::Emit(_))),
        "bob is not given up: {later:?}"
    );
}

#[test]
fn before_the_sfu_connection_is_up_a_dropped_member_connection_is_an_interruption() {
    let (mut s, _) = grown();
    let dropped = s
        .handle(1_000, state("bob", PeerState::Failed))
        .expect("ok");
    assert!(
        dropped.contains(&Effect::Emit(AppEvent::PeerMediaInterrupted {
            user_id: "bob".into()
        }))
    );
    assert!(dropped.contains(&Effect::RestartIce {
        user_id: "bob".into()
    }));
}

#[test]
fn the_other_member_of_a_growing_call_moves_too_when_it_hears_of_the_invitation() {
    let mut s = session("bob", true);
    s.ok(server(ServerMessage::Invited(Invited {
        invite_id: "i".into(),
        room_id: ROOM,
        sponsor: "alice".into(),
        user_ids: vec!["bob".into()],
        call_type: CallType::Video,
        is_group: false,
        group_id: None,
    })));
    s.ok(command(Command::Accept));
    s.ok(server(ServerMessage::Joined(Joined {
        request_id: 1,
        room_id: ROOM,
        call_type: CallType::Video,
        members: vec!["alice".into()],
        pending: vec![],
    })));
    let told = s.ok(server(ServerMessage::InviteeList(
        calling_protocol::InviteeList {
            room_id: ROOM,
            user_ids: vec!["carol".into()],
        },
    )));
    assert_eq!(created(&told), [SFU_LINK], "{told:?}");
}

#[test]
fn what_a_member_reached_through_the_sfu_sends_for_a_connection_of_its_own_finds_nothing() {
    let (mut s, _) = inviter(true);
    s.ok(accepted("bob"));
    for signal in [
        Signal::Offer { sdp: "p2p".into() },
        Signal::Answer { sdp: "p2p".into() },
    ] {
        let effects = s.ok(relayed("bob", signal));
        assert!(effects.is_empty(), "{effects:?}");
    }
    assert!(reaches_via_sfu(&s, "bob"));
}

/// alice in an SFU call with bob and carol, whose connection to the SFU was up and failed at
/// 1 s; what that failure did.
fn sfu_connection_lost() -> (Session, Vec<Effect>) {
    let (mut s, _) = inviter(true);
    sfu_answers(&mut s);
    s.ok(accepted("bob"));
    s.ok(accepted("carol"));
    s.ok(state(SFU_LINK, PeerState::Connected));
    let lost = s
        .handle(1_000, state(SFU_LINK, PeerState::Failed))
        .expect("ok");
    (s, lost)
}

/// The server's word that the SFU no longer has our connection.
fn sfu_rejoin() -> Input {
    server(ServerMessage::Error(calling_protocol::ErrorReply {
        request_id: None,
        code: calling_protocol::ErrorCode::SfuRejoin,
        message: "join with a new one".into(),
    }))
}

#[test]
fn an_interrupted_sfu_connection_is_told_of_every_participant_and_restarted() {
    let (mut s, lost) = sfu_connection_lost();
    assert_eq!(told(&lost, false), ["bob", "carol"]);
    assert!(lost.contains(&Effect::RestartIce {
        user_id: SFU_LINK.into()
    }));

    let back = s
        .handle(2_000, state(SFU_LINK, PeerState::Connected))
        .expect("ok");
    assert_eq!(told(&back, true), ["bob", "carol"]);
}

#[test]
fn a_connection_the_sfu_no_longer_has_is_replaced_by_a_new_one_that_joins() {
    let (mut s, lost) = sfu_connection_lost();
    assert_eq!(told(&lost, false), ["bob", "carol"]);
    // The restart's offer reaches an SFU that does not have this connection.
    s.ok(our_offer("restart"));
    let rejoin = s.handle(1_500, sfu_rejoin()).expect("ok");
    let close = rejoin
        .iter()
        .position(|e| matches!(e, Effect::ClosePeer { user_id } if user_id == SFU_LINK));
    let create = rejoin
        .iter()
        .position(|e| matches!(e, Effect::CreatePeer { user_id, .. } if user_id == SFU_LINK));
    assert!(
        matches!((close, create), (Some(c), Some(n)) if c < n),
        "the old connection closes, a new one is made: {rejoin:?}"
    );
    assert_connects_to_sfu(&rejoin);
    assert!(emitted(&rejoin).is_empty(), "the app hears nothing of it");
    assert_eq!(s.ok(our_offer("new")), [join_sfu("new")], "it joins");
    s.ok(from_sfu(Signal::Answer { sdp: "sfu".into() }));
    s.ok(peer(SFU_LINK, PeerEvent::RemoteDescriptionApplied));

    let back = s
        .handle(3_000, state(SFU_LINK, PeerState::Connected))
        .expect("ok");
    assert_eq!(told(&back, true), ["bob", "carol"], "the interruption ends");
    assert!(s.call.as_ref().is_some_and(|c| c.sfu.is_some()));

    // Not in an SFU call: nothing to rejoin.
    let nothing = session("alice", true).ok(sfu_rejoin());
    assert!(nothing.is_empty(), "{nothing:?}");
}

#[test]
fn a_new_connection_that_never_comes_up_ends_the_call_in_the_first_ones_time() {
    let (mut s, _) = sfu_connection_lost();
    s.handle(5_000, sfu_rejoin()).expect("ok");
    let mut now = 5_000;
    while s.call.is_some() && now < 1_000 + GIVE_UP_MS + 1_000 {
        now += 500;
        s.handle(now, Input::Timer(Timer::PeerHealth)).expect("ok");
    }
    assert!(s.call.is_none(), "still in the call after {now} ms");
    assert!(
        now <= 1_000 + GIVE_UP_MS + 500,
        "given up {now} ms in, not {} ms after the interruption began",
        GIVE_UP_MS
    );
}

#[test]
fn an_sfu_connection_lost_for_good_ends_the_call_with_the_server_told() {
    let (mut s, _) = inviter(true);
    sfu_answers(&mut s);
    s.ok(accepted("bob"));
    s.ok(state(SFU_LINK, PeerState::Connected));
    s.handle(1_000, state(SFU_LINK, PeerState::Failed))
        .expect("ok");
    let mut now = 1_000;
    let mut ended = Vec::new();
    while s.call.is_some() && now <= 1_000 + GIVE_UP_MS {
        now += 1_000;
        ended = s.handle(now, Input::Timer(Timer::PeerHealth)).expect("ok");
    }
    assert!(s.call.is_none(), "still in the call after {now} ms");
    assert!(ended.contains(&Effect::Send(ClientMessage::Hangup { room_id: ROOM })));
    assert!(ended.contains(&Effect::ClosePeer {
        user_id: SFU_LINK.into()
    }));
    let events = emitted(&ended);
    assert!(
        matches!(
            events.as_slice(),
            [AppEvent::Error { code, msg }, AppEvent::CallEnd { user_id, .. }]
                if *code == code::PEER_CONNECTION_FAILED && msg.contains("the SFU") && user_id == "alice"
        ),
        "the app hears why, then that the call ended: {events:?}"
    );
}

#[test]
fn leaving_closes_the_sfu_connection_and_a_leaver_only_its_elements() {
    let (mut s, _) = inviter(true);
    sfu_answers(&mut s);
    s.ok(accepted("bob"));
    s.ok(accepted("carol"));
    let left = s.ok(server(ServerMessage::MemberLeft(MemberLeft {
        room_id: ROOM,
        user_id: "bob".into(),
    })));
    assert!(left.contains(&Effect::ClosePeer {
        user_id: "bob".into()
    }));
    assert!(!left.contains(&Effect::ClosePeer {
        user_id: SFU_LINK.into()
    }));

    let hung_up = s.ok(command(Command::Hangup));
    assert!(hung_up.contains(&Effect::Send(ClientMessage::Hangup { room_id: ROOM })));
    assert!(hung_up.contains(&Effect::ClosePeer {
        user_id: SFU_LINK.into()
    }));
}

fn view(user: &str, width: u32, height: u32) -> RenderedView {
    RenderedView {
        user_id: user.into(),
        width,
        height,
    }
}

fn views_told(effects: &[Effect]) -> Vec<&Vec<RenderedView>> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(ClientMessage::SfuViews { room_id, views }) if *room_id == ROOM => {
                Some(views)
            }
            _ => None,
        })
        .collect()
}

/// [`inviter`] on a server with an SFU, bob and carol accepted and the SFU link up.
fn connected_via_sfu() -> Session {
    let (mut s, _) = inviter(true);
    sfu_answers(&mut s);
    s.ok(accepted("bob"));
    s.ok(accepted("carol"));
    s.ok(state(SFU_LINK, PeerState::Connected));
    s
}

#[test]
fn in_an_sfu_call_the_views_are_measured_with_the_voice_volume() {
    let mut s = connected_via_sfu();
    let due = s.ok(Input::Timer(Timer::VoiceVolume));
    assert!(due.contains(&Effect::ReadAudioLevels), "{due:?}");
    assert!(due.contains(&Effect::MeasureViews), "{due:?}");

    // A mesh forwards nothing: every connection carries what its sender sends.
    let mut mesh = one_to_one();
    let due = mesh.ok(Input::Timer(Timer::VoiceVolume));
    assert!(due.contains(&Effect::ReadAudioLevels), "{due:?}");
    assert!(!due.contains(&Effect::MeasureViews), "{due:?}");
}

#[test]
fn the_sfu_hears_every_participants_view_size_when_one_changes() {
    let mut s = connected_via_sfu();
    let first = s.ok(Input::RenderedViews(vec![view("carol", 640, 360)]));
    assert_eq!(
        views_told(&first),
        [&vec![view("bob", 0, 0), view("carol", 640, 360)]],
        "bob has no view: the smallest layer"
    );

    let same = s.ok(Input::RenderedViews(vec![view("carol", 640, 360)]));
    assert!(views_told(&same).is_empty(), "unchanged: {same:?}");

    // A new connection may reach another SFU, which has not heard them.
    s.ok(sfu_rejoin());
    let again = s.ok(Input::RenderedViews(vec![view("carol", 640, 360)]));
    assert_eq!(views_told(&again).len(), 1, "after a rejoin: {again:?}");

    let resized = s.ok(Input::RenderedViews(vec![
        view("bob", 1280, 720),
        view("carol", 320, 180),
        view("mallory", 1920, 1080),
    ]));
    assert_eq!(
        views_told(&resized),
        [&vec![view("bob", 1280, 720), view("carol", 320, 180)]],
        "only the call's participants"
    );
}

#[test]
fn a_call_without_the_sfu_tells_no_view_sizes() {
    let mut s = one_to_one();
    let measured = s.ok(Input::RenderedViews(vec![view("bob", 640, 360)]));
    assert!(views_told(&measured).is_empty(), "{measured:?}");
}
