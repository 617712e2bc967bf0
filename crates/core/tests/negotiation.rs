//! Perfect negotiation across two real state machines: glare, candidates that arrive before
//! their description, stale answers, renegotiation.

mod support;

use calling_core::{AppEvent, Effect, Input, PeerEvent, SdpKind, Session, SessionDescription};
use calling_protocol::{
    Accepted, CallType, ClientMessage, IceCandidate, InviteSent, LoginOk, RelayedSignal,
    ServerMessage, Signal,
};
use support::browser::Signaling;
use support::*;

#[test]
fn glare_ends_stable_with_one_connection() {
    let (mut w, a, b) = connected(CallType::Video);
    // Both browsers ask for renegotiation at the same moment: both offer, the offers cross.
    w.peer_event(a, "bob", PeerEvent::NegotiationNeeded);
    w.peer_event(b, "alice", PeerEvent::NegotiationNeeded);
    w.run();
    w.assert_browsers_clean();
    let alice_side = &w.browser(a).peers["bob"];
    let bob_side = &w.browser(b).peers["alice"];
    // "bob" > "alice": bob is polite, rolls back its own offer and answers alice's.
    assert_eq!(bob_side.rollbacks, 1, "the polite side yields");
    assert_eq!(alice_side.rollbacks, 0, "the impolite side keeps its offer");
    assert_eq!(alice_side.signaling, Signaling::Stable);
    assert_eq!(bob_side.signaling, Signaling::Stable);
    assert_eq!(alice_side.remote.as_deref(), bob_side.local.as_deref());
    assert_eq!(bob_side.remote.as_deref(), alice_side.local.as_deref());
    assert!(bob_side
        .remote
        .as_deref()
        .is_some_and(|s| s.starts_with("alice>bob")));
    assert_eq!(w.browser(a).peers.len(), 1);
    assert_eq!(w.browser(b).peers.len(), 1);
    assert_eq!(w.take_events(a), vec![]);
    assert_eq!(w.take_events(b), vec![]);
    // A later renegotiation still works from the stable state both ended in.
    w.peer_event(b, "alice", PeerEvent::NegotiationNeeded);
    w.run();
    w.assert_browsers_clean();
    assert!(w.browser(a).peers["bob"]
        .remote
        .as_deref()
        .is_some_and(|s| s.starts_with("bob>alice")));
}

#[test]
fn glare_initiated_by_the_polite_side_first_in_the_queue() {
    let (mut w, a, b) = connected(CallType::Video);
    w.peer_event(b, "alice", PeerEvent::NegotiationNeeded);
    w.peer_event(a, "bob", PeerEvent::NegotiationNeeded);
    w.run();
    w.assert_browsers_clean();
    assert_eq!(w.browser(b).peers["alice"].rollbacks, 1);
    assert_eq!(w.browser(a).peers["bob"].signaling, Signaling::Stable);
    assert_eq!(w.browser(b).peers["alice"].signaling, Signaling::Stable);
}

#[test]
fn callee_adds_the_callers_early_candidates_only_after_the_offer_is_applied() {
    let (w, _a, b) = connected(CallType::Video);
    // alice's offer candidate reached bob before his setRemoteDescription finished (the
    // queue order guarantees it); the browser would have refused it then, and did not.
    w.assert_browsers_clean();
    let added = &w.browser(b).peers["alice"].candidates_added;
    assert_eq!(added, &vec!["candidate:alice>bob#1 offer".to_string()]);
}

fn server(call: &mut Session, message: ServerMessage) -> Vec<Effect> {
    call.handle(0, Input::Server(message))
        .expect("server input")
}

fn peer(call: &mut Session, event: PeerEvent) -> Vec<Effect> {
    call.handle(
        0,
        Input::Peer {
            user_id: "bob".into(),
            event,
        },
    )
    .expect("peer input")
}

fn from_bob(signal: Signal) -> ServerMessage {
    ServerMessage::Signal(RelayedSignal {
        room_id: 5,
        from: "bob".into(),
        signal,
    })
}

/// alice, logged in, whose call to bob rings; her offer is out.
fn caller_with_offer_out() -> Session {
    let mut c = Session::new();
    let cmd = |request, command| Input::Command { request, command };
    c.handle(0, cmd(1, login("alice"))).expect("login");
    server(
        &mut c,
        ServerMessage::LoginOk(LoginOk {
            user_id: "alice".into(),
            ice_servers: vec![],
            ring_timeout_secs: 30,
            heartbeat_timeout_secs: 10,
            resume: None,
            sfu: false,
        }),
    );
    c.handle(0, cmd(2, call("bob", CallType::Audio)))
        .expect("call");
    // The connection is made while the invitation rings.
    let fx = server(
        &mut c,
        ServerMessage::InviteSent(InviteSent {
            request_id: 2,
            invite_id: "i".into(),
            room_id: 5,
            user_ids: vec!["bob".into()],
        }),
    );
    assert!(fx.contains(&Effect::CreateOffer {
        user_id: "bob".into()
    }));
    let fx = peer(
        &mut c,
        PeerEvent::LocalDescription(SessionDescription {
            kind: SdpKind::Offer,
            sdp: "offer".into(),
        }),
    );
    assert_eq!(
        fx,
        vec![Effect::Send(ClientMessage::Relay {
            room_id: 5,
            to: "bob".into(),
            signal: Signal::Offer {
                sdp: "offer".into()
            }
        })]
    );
    c
}

fn cand(s: &str) -> IceCandidate {
    IceCandidate {
        candidate: s.into(),
        sdp_mid: None,
        sdp_m_line_index: Some(0),
    }
}

#[test]
fn candidates_that_arrive_before_the_answer_wait_for_it() {
    let mut c = caller_with_offer_out();
    assert_eq!(
        server(&mut c, from_bob(Signal::Candidate(cand("c1")))),
        vec![]
    );
    let fx = server(
        &mut c,
        from_bob(Signal::Answer {
            sdp: "answer".into(),
        }),
    );
    assert_eq!(
        fx,
        vec![Effect::ApplyRemoteDescription {
            user_id: "bob".into(),
            description: SessionDescription {
                kind: SdpKind::Answer,
                sdp: "answer".into()
            }
        }]
    );
    assert_eq!(
        server(&mut c, from_bob(Signal::Candidate(cand("c2")))),
        vec![]
    );
    let fx = peer(&mut c, PeerEvent::RemoteDescriptionApplied);
    let add = |s: &str| Effect::AddIceCandidate {
        user_id: "bob".into(),
        candidate: cand(s),
    };
    assert_eq!(fx, vec![add("c1"), add("c2")]);
    assert_eq!(
        server(&mut c, from_bob(Signal::Candidate(cand("c3")))),
        vec![add("c3")]
    );
}

#[test]
fn a_second_answer_is_dropped() {
    let mut c = caller_with_offer_out();
    server(
        &mut c,
        from_bob(Signal::Answer {
            sdp: "answer".into(),
        }),
    );
    peer(&mut c, PeerEvent::RemoteDescriptionApplied);
    assert_eq!(
        server(
            &mut c,
            from_bob(Signal::Answer {
                sdp: "again".into()
            })
        ),
        vec![]
    );
}

#[test]
fn signals_for_another_room_or_from_strangers_are_ignored() {
    let mut c = caller_with_offer_out();
    let stale = ServerMessage::Signal(RelayedSignal {
        room_id: 4,
        from: "bob".into(),
        signal: Signal::Answer { sdp: "a".into() },
    });
    assert_eq!(server(&mut c, stale), vec![]);
    let stranger = ServerMessage::Signal(RelayedSignal {
        room_id: 5,
        from: "mallory".into(),
        signal: Signal::Answer { sdp: "a".into() },
    });
    assert_eq!(server(&mut c, stranger), vec![]);
}

#[test]
fn local_candidates_are_relayed_and_peer_failures_reported() {
    let mut c = caller_with_offer_out();
    assert_eq!(
        peer(&mut c, PeerEvent::LocalCandidate(cand("mine"))),
        vec![Effect::Send(ClientMessage::Relay {
            room_id: 5,
            to: "bob".into(),
            signal: Signal::Candidate(cand("mine"))
        })]
    );
    assert_eq!(
        peer(&mut c, PeerEvent::Failed("OperationError".into())),
        vec![Effect::Emit(AppEvent::Error {
            code: calling_core::code::PEER_CONNECTION_FAILED,
            msg: "WebRTC negotiation with bob failed: OperationError".into()
        })]
    );
}

#[test]
fn an_offer_from_a_member_not_yet_known_gets_a_connection() {
    let mut c = caller_with_offer_out();
    let accepted = ServerMessage::Accepted(Accepted {
        room_id: 5,
        invite_id: "i".into(),
        user_id: "bob".into(),
    });
    server(&mut c, accepted);
    let offer = ServerMessage::Signal(RelayedSignal {
        room_id: 5,
        from: "carol".into(),
        signal: Signal::Offer { sdp: "o".into() },
    });
    assert_eq!(
        server(&mut c, offer),
        vec![
            Effect::CreatePeer {
                user_id: "carol".into(),
                initiator: false,
                polite: false,
                ice_servers: vec![],
                relay_only: false,
            },
            Effect::AttachMedia {
                user_id: "carol".into()
            },
            Effect::ApplyRemoteDescription {
                user_id: "carol".into(),
                description: SessionDescription {
                    kind: SdpKind::Offer,
                    sdp: "o".into()
                }
            }
        ]
    );
}
