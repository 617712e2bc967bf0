//! What a ringing callee reveals to its caller: with a TURN relay, the callee's connection
//! gathers relay candidates only until it accepts, and once the call has settled on that path
//! restarts ICE with every candidate;
//! an app that asked for relay-only keeps it; an app that turned pre-connecting off makes no
//! connection at all until it accepts.

mod support;

use calling_core::privacy::WIDEN_AFTER_MS;
use calling_core::Input;
use calling_core::{AppEvent, CallStatus, Command, ConnectPolicy, Session};
use calling_protocol::{CallType, IceServer, IceServersUpdate, ServerMessage};
use support::browser::is_restart;
use support::*;

fn turn_server() -> IceServer {
    IceServer {
        urls: vec!["turn:relay.example:3478?transport=udp".into()],
        username: Some("1700000000:bob".into()),
        credential: Some("c".into()),
    }
}

/// A world whose server hands out a TURN server at login.
fn world_with_relay() -> World {
    let mut w = World::new();
    w.server.ice_servers = vec![turn_server()];
    w
}

/// alice and bob, bob's SDK made with `policy`; both logged in.
fn alice_and_bob(mut w: World, policy: ConnectPolicy) -> (World, usize, usize) {
    let a = w.logged_in("alice");
    let b = w.client("bob");
    w.clients[b].call = Session::with_seed(99).with_policy(policy);
    w.command(b, login("bob"));
    w.run();
    w.take_events(b);
    (w, a, b)
}

fn relay_only(w: &World, c: usize, user: &str) -> bool {
    w.browser(c).peers[user].relay_only
}

/// The restart offers `c`'s connection to `user` has set as its local description so far.
fn restart_offers(w: &World, c: usize, user: &str) -> u32 {
    w.browser(c).peers[user].ice_restarts
}

#[test]
fn with_a_relay_the_ringing_callee_connects_through_it_only_until_it_accepts() {
    let (mut w, a, b) = alice_and_bob(world_with_relay(), ConnectPolicy::default());
    w.command(a, call("bob", CallType::Video));
    w.run();
    assert_eq!(w.clients[b].call.status(), CallStatus::Calling);
    assert!(matches!(w.take_events(b)[..], [AppEvent::Invited { .. }]));
    // Pre-connected while ringing, bob's side with relay candidates only.
    assert!(w.browser(b).peers["alice"].connected);
    assert!(
        relay_only(&w, b, "alice"),
        "bob's side reveals only the relay"
    );
    assert!(!relay_only(&w, a, "bob"), "the caller chose to call");
    assert_eq!(restart_offers(&w, b, "alice"), 0);

    w.command(b, Command::Accept);
    w.run();
    // Accepted: the first frames cross the relay path made while ringing, untouched.
    assert!(relay_only(&w, b, "alice"));
    assert_eq!(restart_offers(&w, b, "alice"), 0);
    assert!(w.browser(a).sends_to("bob") && w.browser(b).sends_to("alice"));
    assert_video_connect_events(&mut w, a, b);
    w.elapse(WIDEN_AFTER_MS - 1);
    assert!(relay_only(&w, b, "alice"), "widened before its time");

    // Then every candidate, gathered by one ICE restart from bob's side.
    w.elapse(1);
    assert!(!relay_only(&w, b, "alice"));
    assert_eq!(restart_offers(&w, b, "alice"), 1);
    let remote = w.browser(a).peers["bob"].remote.clone().unwrap_or_default();
    assert!(
        is_restart(&remote),
        "alice applied bob's restart offer: {remote}"
    );
    assert!(w.browser(a).peers["bob"].connected && w.browser(b).peers["alice"].connected);
    assert!(w.browser(a).sends_to("bob") && w.browser(b).sends_to("alice"));
    assert_eq!(w.take_events(a), vec![]);
    assert_eq!(w.take_events(b), vec![]);
    w.elapse(10 * WIDEN_AFTER_MS);
    assert_eq!(restart_offers(&w, b, "alice"), 1, "widened once");
    w.assert_browsers_clean();
}

#[test]
fn an_accepted_relay_path_interrupted_before_widening_is_restarted_with_every_candidate() {
    let (mut w, a, b) = alice_and_bob(world_with_relay(), ConnectPolicy::default());
    w.command(a, call("bob", CallType::Video));
    w.run();
    w.take_events(b);
    w.command(b, Command::Accept);
    w.run();
    assert_video_connect_events(&mut w, a, b);
    w.cut_path(a, b);
    assert!(
        !relay_only(&w, b, "alice"),
        "the restarts that heal it may find any path"
    );
    w.mend(a, b);
    w.elapse(10 * WIDEN_AFTER_MS);
    assert!(w.browser(a).peers["bob"].connected && w.browser(b).peers["alice"].connected);
    assert!(!relay_only(&w, b, "alice"));
    let restored = |events: Vec<AppEvent>| {
        events
            .iter()
            .any(|e| matches!(e, AppEvent::PeerMediaRestored { .. }))
    };
    assert!(restored(w.take_events(a)) && restored(w.take_events(b)));
    w.assert_browsers_clean();
}

#[test]
fn a_call_ended_before_its_relay_path_widened_widens_nothing() {
    let (mut w, a, b) = alice_and_bob(world_with_relay(), ConnectPolicy::default());
    w.command(a, call("bob", CallType::Audio));
    w.run();
    w.command(b, Command::Accept);
    w.run();
    w.command(a, Command::Hangup);
    w.run();
    assert_eq!(w.clients[b].call.status(), CallStatus::Idle);
    assert!(!w.browser(b).peers.contains_key("alice"), "closed");
    w.elapse(2 * WIDEN_AFTER_MS);
    // A restart or a new configuration for the closed connection would be reported here.
    w.assert_browsers_clean();
}

#[test]
fn a_relay_only_connection_that_never_came_up_widens_at_the_accept() {
    let (mut w, a, b) = alice_and_bob(world_with_relay(), ConnectPolicy::default());
    w.clients[b].browser.no_path = true;
    w.command(a, call("bob", CallType::Audio));
    w.run();
    assert!(!w.browser(b).peers["alice"].connected);
    assert!(relay_only(&w, b, "alice"));
    w.command(b, Command::Accept);
    w.run();
    // Only a wider search can connect it: no waiting.
    assert!(!relay_only(&w, b, "alice"));
    assert_eq!(restart_offers(&w, b, "alice"), 1);
}

#[test]
fn an_app_that_asked_for_relay_only_keeps_it_after_the_accept() {
    let policy = ConnectPolicy {
        relay_only: true,
        ..ConnectPolicy::default()
    };
    let (mut w, a, b) = alice_and_bob(world_with_relay(), policy);
    w.command(a, call("bob", CallType::Audio));
    w.run();
    w.command(b, Command::Accept);
    w.run();
    assert!(relay_only(&w, b, "alice"));
    assert_eq!(restart_offers(&w, b, "alice"), 0, "nothing to widen");
    assert!(w.browser(b).sends_to("alice") && w.browser(a).sends_to("bob"));
    w.assert_browsers_clean();
}

#[test]
fn without_a_relay_the_callee_pre_connects_directly() {
    let (mut w, a, b) = alice_and_bob(World::new(), ConnectPolicy::default());
    w.command(a, call("bob", CallType::Audio));
    w.run();
    assert!(!relay_only(&w, b, "alice"));
    assert!(w.browser(b).peers["alice"].connected);
    w.command(b, Command::Accept);
    w.run();
    assert_eq!(restart_offers(&w, b, "alice"), 0);
    w.assert_browsers_clean();
}

#[test]
fn with_pre_connecting_off_the_callee_makes_no_connection_until_it_accepts() {
    let policy = ConnectPolicy {
        preconnect: false,
        ..ConnectPolicy::default()
    };
    let (mut w, a, b) = alice_and_bob(world_with_relay(), policy);
    w.command(a, call("bob", CallType::Video));
    w.run();
    assert_eq!(w.clients[b].call.status(), CallStatus::Calling);
    assert!(matches!(w.take_events(b)[..], [AppEvent::Invited { .. }]));
    assert!(w.browser(b).peers.is_empty(), "no connection while ringing");
    assert!(
        w.browser(a).peers["bob"].local.is_some(),
        "alice's offer went out"
    );

    w.command(b, Command::Accept);
    w.run();
    // The offer and candidates that came while ringing are applied once bob accepts.
    let bob = &w.browser(b).peers["alice"];
    assert!(bob.connected && !bob.relay_only);
    assert_eq!(bob.remote, w.browser(a).peers["bob"].local);
    assert!(w.browser(a).sends_to("bob") && w.browser(b).sends_to("alice"));
    assert_video_connect_events(&mut w, a, b);
    w.assert_browsers_clean();
}

#[test]
fn with_pre_connecting_off_a_rejected_call_never_made_a_connection() {
    let policy = ConnectPolicy {
        preconnect: false,
        ..ConnectPolicy::default()
    };
    let (mut w, a, b) = alice_and_bob(World::new(), policy);
    w.command(a, call("bob", CallType::Video));
    w.run();
    w.command(b, Command::Reject);
    w.run();
    assert!(w.browser(b).peers.is_empty());
    assert!(w.browser(b).closed.is_empty(), "nothing to close");
    assert_eq!(w.clients[b].call.status(), CallStatus::Idle);
    assert_eq!(w.clients[a].call.status(), CallStatus::Idle);
    w.assert_browsers_clean();
}

fn renewal(user: &str) -> Input {
    let mut server = turn_server();
    server.username = Some(format!("1800000000:{user}"));
    Input::Server(ServerMessage::IceServers(IceServersUpdate {
        ice_servers: vec![server],
    }))
}

#[test]
fn renewed_turn_credentials_reach_the_live_connection_and_the_next_ones() {
    let (mut w, a, b) = alice_and_bob(world_with_relay(), ConnectPolicy::default());
    w.command(a, call("bob", CallType::Audio));
    w.run();
    w.command(b, Command::Accept);
    w.run();
    assert_eq!(w.browser(a).peers["bob"].ice_servers, vec![turn_server()]);
    w.inject(a, renewal("alice"));
    w.run();
    let Input::Server(ServerMessage::IceServers(fresh)) = renewal("alice") else {
        unreachable!()
    };
    assert_eq!(w.browser(a).peers["bob"].ice_servers, fresh.ice_servers);
    assert_eq!(w.browser(b).peers["alice"].ice_servers, vec![turn_server()]);

    // Renewed while idle: nothing to hand over, and the next call's connection has them.
    w.command(a, Command::Hangup);
    w.run();
    w.inject(b, renewal("bob"));
    w.run();
    w.command(b, call("alice", CallType::Audio));
    w.run();
    let Input::Server(ServerMessage::IceServers(fresh)) = renewal("bob") else {
        unreachable!()
    };
    assert_eq!(w.browser(b).peers["alice"].ice_servers, fresh.ice_servers);
    w.assert_browsers_clean();
}
