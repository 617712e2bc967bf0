//! `goAway`: the server is draining, and each SDK moves to a new socket at a moment of its own
//! within the window given, resuming its session there (the test server shares it, as a
//! cluster would) or logging in again where it is gone. A move that goes well is unseen by the
//! app; a call or a ringing invitation keeps its socket until it is over, unless the server
//! says the session is shared (a cluster node): then they move with it.

mod support;

use calling_core::{AppEvent, CallStatus, Command, Input, Timer};
use calling_protocol::{CallType, ClientMessage, GoAway, ServerMessage};
use support::socket::Server;
use support::*;

fn go_away(within_ms: u32, session_shared: bool) -> Input {
    Input::Server(ServerMessage::GoAway(GoAway {
        within_ms,
        session_shared,
    }))
}

/// The server (a single one, whose sessions go with it) tells `c` to move within `within_ms`.
fn told(w: &mut World, c: usize, within_ms: u32) {
    w.inject(c, go_away(within_ms, false));
    w.run();
}

/// A cluster node tells `c` to move within `within_ms`: the next node resumes the session.
fn told_shared(w: &mut World, c: usize, within_ms: u32) {
    w.inject(c, go_away(within_ms, true));
    w.run();
}

/// The delays of every move timer `c` started.
fn move_timers(w: &World, c: usize) -> Vec<u32> {
    w.clients[c]
        .timer_log
        .iter()
        .filter(|(t, _)| *t == Timer::Move)
        .map(|(_, ms)| *ms)
        .collect()
}

fn resumes(w: &World, c: usize) -> usize {
    frames_received(w, c, |m| matches!(m, ClientMessage::Resume { .. }))
}

/// `c` is logged in on a live socket with nothing pending.
fn settled(w: &World, c: usize) {
    let session = &w.clients[c].call;
    assert!(!session.is_reconnecting() && !session.is_moving());
    assert!(session.user_id().is_some() && w.clients[c].socket_open);
}

#[test]
fn an_idle_session_moves_unseen_at_a_moment_within_the_window() {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    told(&mut w, a, 2_000);
    let delays = move_timers(&w, a);
    assert!(matches!(delays[..], [d] if d <= 2_000), "{delays:?}");
    assert_eq!(w.clients[a].opens, 0, "not before its moment");

    w.elapse(2_000);
    assert_eq!(w.clients[a].opens, 1, "one new socket");
    assert_eq!(resumes(&w, a), 1, "the session resumed on it");
    assert_eq!(w.take_events(a), vec![], "nothing for the app");
    settled(&w, a);
    // And it can be called there.
    w.command(b, call("alice", CallType::Audio));
    w.run();
    assert!(w
        .take_events(a)
        .iter()
        .any(|e| matches!(e, AppEvent::Invited { .. })));
}

#[test]
fn clients_told_together_pick_different_moments() {
    let (mut w, clients) = World::users(["a", "b", "c", "d"]);
    for c in clients {
        told(&mut w, c, 5_000);
    }
    let mut delays: Vec<u32> = clients.iter().flat_map(|c| move_timers(&w, *c)).collect();
    assert_eq!(delays.len(), 4);
    assert!(delays.iter().all(|d| *d <= 5_000), "{delays:?}");
    delays.dedup();
    assert!(delays.len() > 1, "all at the same moment: {delays:?}");
}

#[test]
fn a_second_go_away_changes_nothing() {
    let (mut w, [a]) = World::users(["alice"]);
    told(&mut w, a, 3_000);
    let first = move_timers(&w, a);
    told(&mut w, a, 100);
    assert_eq!(move_timers(&w, a), first, "the first decided when");
    w.elapse(3_000);
    told(&mut w, a, 3_000);
    w.elapse(3_000);
    assert_eq!(w.clients[a].opens, 2, "one move per goAway received");
    assert_eq!(w.take_events(a), vec![]);
    settled(&w, a);
}

#[test]
fn a_ringing_invitation_keeps_its_socket_and_both_sides_move_once_it_is_answered() {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    w.command(a, call("bob", CallType::Audio));
    w.run();
    w.take_events(a);
    w.take_events(b);
    told(&mut w, a, 1_000);
    told(&mut w, b, 1_000);
    w.elapse(10_000);
    assert!(move_timers(&w, a).is_empty() && move_timers(&w, b).is_empty());
    assert_eq!((w.clients[a].opens, w.clients[b].opens), (0, 0));
    assert_eq!(w.clients[b].call.status(), CallStatus::Calling);

    w.command(b, Command::Reject);
    w.run();
    assert_eq!(
        w.take_events(a),
        vec![AppEvent::Reject {
            user_id: "bob".into()
        }]
    );
    w.take_events(b);
    w.elapse(1_000);
    assert_eq!((w.clients[a].opens, w.clients[b].opens), (1, 1));
    assert_eq!((w.take_events(a), w.take_events(b)), (vec![], vec![]));
    settled(&w, a);
    settled(&w, b);
}

#[test]
fn a_call_keeps_its_socket_until_it_ends_then_both_sides_move() {
    let (mut w, a, b) = connected(CallType::Video);
    told(&mut w, a, 5_000);
    told(&mut w, b, 5_000);
    w.elapse(20_000);
    assert_eq!((w.clients[a].opens, w.clients[b].opens), (0, 0));
    assert_eq!(w.clients[a].call.status(), CallStatus::Connected);
    w.command(a, Command::SetMicMute(true));
    w.run();
    assert_eq!(
        w.take_events(b),
        vec![audio("alice", false)],
        "signaling goes on"
    );
    assert_eq!(w.take_events(a), vec![]);

    w.command(a, Command::Hangup);
    w.run();
    assert_eq!(
        w.take_events(b),
        vec![user_leave("alice"), call_end("alice", 20)]
    );
    w.take_events(a);
    w.elapse(5_000);
    assert_eq!((w.clients[a].opens, w.clients[b].opens), (1, 1));
    assert_eq!((w.take_events(a), w.take_events(b)), (vec![], vec![]));
    settled(&w, a);
    settled(&w, b);
    w.assert_browsers_clean();
}

#[test]
fn a_call_that_begins_while_the_move_waits_holds_it_until_it_ends() {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    told(&mut w, a, 4_000);
    w.command(b, call("alice", CallType::Audio));
    w.run();
    w.elapse(4_000);
    assert_eq!(w.clients[a].opens, 0, "ringing: it stays");
    w.command(a, Command::Reject);
    w.run();
    assert_eq!(move_timers(&w, a).len(), 2, "a new moment once it ended");
    w.elapse(4_000);
    assert_eq!(w.clients[a].opens, 1);
    settled(&w, a);
}

#[test]
fn logout_while_the_move_waits_cancels_it() {
    let (mut w, [a]) = World::users(["alice"]);
    told(&mut w, a, 3_000);
    assert!(w.clients[a].timers.contains(&Timer::Move));
    w.command(a, Command::Logout);
    w.run();
    assert!(!w.clients[a].timers.contains(&Timer::Move), "cancelled");
    // Were it to fire anyway (already queued), it does nothing.
    w.inject(a, Input::Timer(Timer::Move));
    w.run();
    assert_eq!(w.clients[a].opens, 0);
    assert!(!w.clients[a].call.is_moving());
    assert_eq!(w.take_events(a), vec![]);
}

#[test]
fn a_socket_lost_while_the_move_waits_reconnects_as_usual_and_the_move_is_dropped() {
    let (mut w, [a]) = World::users(["alice"]);
    told(&mut w, a, 3_000);
    w.drop_socket(a);
    assert_eq!(
        w.take_events(a),
        vec![reconnecting(1), reconnected(true)],
        "a loss is a loss"
    );
    assert!(!w.clients[a].timers.contains(&Timer::Move));
    w.elapse(3_000);
    assert_eq!(w.clients[a].opens, 1, "no second move");
    settled(&w, a);
}

#[test]
fn a_move_whose_session_is_gone_logs_in_again_and_says_so() {
    // A single server that restarted: the session is gone when the move comes.
    let (mut w, [a]) = World::users(["alice"]);
    told(&mut w, a, 1_000);
    w.cut(a);
    let grace_over = w.now_ms + 31_000;
    w.expire_until(grace_over);
    w.clients[a].socket_open = true;
    w.elapse(1_000);
    assert_eq!(
        w.take_events(a),
        vec![reconnecting(1), reconnected(false)],
        "no ERROR, no KICKED_OUT"
    );
    settled(&w, a);
}

#[test]
fn a_move_that_finds_no_server_becomes_a_reconnect_and_logs_in_on_the_next_one() {
    let (mut w, [a]) = World::users(["alice"]);
    told(&mut w, a, 1_000);
    // The draining server refuses new sockets, and then it is gone with the session.
    w.clients[a].network = false;
    w.fire(a, Timer::Move);
    assert_eq!(w.take_events(a), vec![reconnecting(1)], "the move failed");
    assert!(w.clients[a].call.is_reconnecting());
    let grace_over = w.now_ms + 31_000;
    w.expire_until(grace_over);
    // The new server is up.
    w.online(a);
    assert_eq!(w.take_events(a), vec![reconnecting(2), reconnected(false)]);
    settled(&w, a);
}

#[test]
fn a_shared_session_moves_with_its_call_which_goes_on_unseen() {
    let (mut w, a, b) = connected(CallType::Video);
    told_shared(&mut w, a, 2_000);
    w.elapse(2_000);
    assert_eq!(w.clients[a].opens, 1, "moved mid-call");
    assert_eq!(resumes(&w, a), 1, "the session (and its call) resumed");
    assert_eq!((w.take_events(a), w.take_events(b)), (vec![], vec![]));
    assert_eq!(w.clients[a].call.status(), CallStatus::Connected);
    settled(&w, a);

    // Signaling goes on through the new socket, both ways.
    w.command(a, Command::SetMicMute(true));
    w.run();
    assert_eq!(w.take_events(b), vec![audio("alice", false)]);
    w.command(b, Command::SetMicMute(true));
    w.run();
    assert_eq!(w.take_events(a), vec![audio("bob", false)]);
    w.command(b, Command::Hangup);
    w.run();
    assert_eq!(
        w.take_events(a),
        vec![user_leave("bob"), call_end("bob", 2)]
    );
    assert_eq!(w.clients[a].opens, 1, "no second move after the call");
    w.assert_browsers_clean();
}

#[test]
fn a_shared_session_moves_with_its_ringing_invitation_which_can_then_be_accepted() {
    let (mut w, [a, b]) = World::users(["alice", "bob"]);
    w.command(a, call("bob", CallType::Audio));
    w.run();
    w.take_events(a);
    w.take_events(b);
    told_shared(&mut w, a, 1_000);
    told_shared(&mut w, b, 1_000);
    w.elapse(1_000);
    assert_eq!((w.clients[a].opens, w.clients[b].opens), (1, 1));
    assert_eq!((w.take_events(a), w.take_events(b)), (vec![], vec![]));
    assert_eq!(w.clients[b].call.status(), CallStatus::Calling);

    w.command(b, Command::Accept);
    w.run();
    let heard = w.take_events(a);
    assert_eq!(
        heard[..2],
        [
            AppEvent::UserAccept {
                user_id: "bob".into()
            },
            user_enter("bob")
        ],
        "{heard:?}"
    );
    assert_eq!(w.clients[a].call.status(), CallStatus::Connected);
    assert_eq!(w.clients[b].call.status(), CallStatus::Connected);
}

#[test]
fn a_shared_session_without_a_resume_grant_keeps_its_call_on_the_socket() {
    let mut server = Server::new();
    server.offers_resume = false;
    let (mut w, a, b) = connected_in(World::with_server(server), CallType::Audio);
    told_shared(&mut w, a, 1_000);
    w.elapse(10_000);
    assert_eq!(w.clients[a].opens, 0, "it could not take the call along");
    assert_eq!(w.clients[a].call.status(), CallStatus::Connected);
    w.command(a, Command::Hangup);
    w.run();
    w.take_events(b);
    w.elapse(1_000);
    assert_eq!(w.clients[a].opens, 1, "moved once the call was over");
}
