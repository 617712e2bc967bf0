//! Getting a lost signaling connection back without ending the call.
//!
//! A login asks for a resumable session; when the server grants one, a socket that drops is
//! not the end: the server keeps the session for a grace period and the core, keeping the
//! call, the ringing, the peers and the local media as they are, asks the glue for a new socket
//! and sends `resume` with the `seq` of the last message it processed. The server answers with
//! how many of our frames it processed and replays what we missed; we send again what it
//! missed (the [`Outbox`]), and the session goes on as if nothing happened.
//!
//! When the server has ended the session meanwhile (grace over, or it restarted), it refuses,
//! and we log in again on the same socket with the credentials of the first login. Whatever
//! call was in progress ended on the server with the old session, so it ends here too, through
//! the one leave path; an invitation still ringing for us is delivered again by the server
//! right after that login, and we keep ringing for it. When no socket can be had for
//! [`GIVE_UP_AFTER_MS`], or the login again is refused, we give up: `ERROR` 60008, logged out.
//!
//! With a server that grants nothing (an older one), a lost socket ends the session at once
//! (`Session::signaling_closed`), as it always did.

use calling_protocol::{
    ClientMessage, ErrorReply, Invited, LoginOk, ResumeGrant, Resumed, ServerMessage,
    PROTOCOL_VERSION,
};

use crate::active_call::{ActiveCall, Answer, Phase};
use crate::backoff::{Jitter, GIVE_UP_AFTER_MS};
use crate::event::AppEvent;
use crate::leave::Tell;
use crate::login::{heartbeat_timer, login_message};
use crate::outbox::{is_counted, Outbox};
use crate::session::{Login, Session};
use crate::{code, Effect, SdkError, Timer};

/// What the app's `login()` gave, kept to log in again without it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Credentials {
    pub sdk_app_id: u64,
    pub user_sig: String,
}

/// Whether the signaling socket carries the session.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) enum Connection {
    /// It does (or no session exists); sends go out as they are made.
    #[default]
    Live,
    /// It was lost; sends are numbered and held until the session is back.
    Lost(Lost),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Lost {
    since_ms: u64,
    /// When the server ends the session at the latest (the loss plus its grace): a call that
    /// turns out to have ended with the session lasted until then at most.
    session_ends_ms: u64,
    /// Attempts made so far (the one under way included).
    attempt: u32,
    stage: Stage,
    /// A planned move (the server is going away, see `moving`) the app has not been told of:
    /// it hears `RECONNECTING` only if the move fails, and nothing if it succeeds at once.
    quiet: bool,
}

/// Where the attempt to get the session back stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The last attempt failed; [`Timer::Reconnect`] runs.
    Waiting,
    /// [`Effect::OpenSignaling`] is out.
    Opening,
    /// `resume` is sent on the new socket.
    Resuming,
    /// The resume was refused (or is impossible): `login` is sent on the new socket.
    LoggingIn,
}

/// Everything the core keeps to get its session back.
#[derive(Debug, Default)]
pub(crate) struct Resumption {
    pub credentials: Option<Credentials>,
    /// The server's offer to resume this session; `None` when it made none (an older server)
    /// or the session it named is gone.
    grant: Option<ResumeGrant>,
    /// The `seq` of the last server message processed in this session.
    last_seq: u64,
    outbox: Outbox,
    pub connection: Connection,
    jitter: Jitter,
    /// After logging in again while an invitation rang here: its id, until the server
    /// delivers it again (it still rings) or answers our ping first (it does not).
    reinvite: Option<String>,
    /// Frames to send again after a resume, handed to the glue at the end of the input (after
    /// new frames were numbered, so they are not numbered twice).
    resend: Vec<ClientMessage>,
    /// Heartbeat pings sent since the server was last heard from.
    unanswered_pings: u32,
    /// A probe ping is out and nothing was heard since.
    probing: bool,
}

/// Heartbeat pings left unanswered before a resumable socket counts as dead. A path can die
/// without either end closing it (a Wi-Fi change, a NAT forgetting the mapping); the browser
/// never reports that, so silence is the only sign. Two periods of it, not one, so a page
/// whose main thread was busy when the pong came does not reconnect for nothing.
pub const DEAD_AFTER_UNANSWERED_PINGS: u32 = 2;

/// How long a probe ping may take to be answered.
pub const PROBE_TIMEOUT_MS: u32 = 3_000;

impl Resumption {
    pub fn with_seed(seed: u64) -> Self {
        Resumption {
            jitter: Jitter::new(seed),
            ..Resumption::default()
        }
    }

    /// A session begins (a login was answered), resumable if `grant` is set.
    pub fn begin(&mut self, grant: Option<ResumeGrant>) {
        self.grant = grant;
        self.last_seq = 0;
        self.outbox = Outbox::default();
        self.connection = Connection::Live;
        self.reinvite = None;
        self.resend.clear();
        self.heard();
    }

    /// The session is over: nothing of it is kept but the generator's state.
    pub fn reset(&mut self) {
        let jitter = std::mem::take(&mut self.jitter);
        *self = Resumption {
            jitter,
            ..Resumption::default()
        };
    }

    pub fn is_lost(&self) -> bool {
        matches!(self.connection, Connection::Lost(_))
    }

    /// A server message arrived: the socket is alive.
    pub fn heard(&mut self) {
        self.unanswered_pings = 0;
        self.probing = false;
    }

    pub fn pinged(&mut self) {
        self.unanswered_pings += 1;
    }

    /// Whether the socket of a resumable session has been silent for too many pings (a
    /// session that cannot be resumed relies on the server's own timeout, as before).
    pub fn silent_too_long(&self) -> bool {
        self.grant.is_some() && self.unanswered_pings >= DEAD_AFTER_UNANSWERED_PINGS
    }

    fn lost(&mut self) -> Option<&mut Lost> {
        match &mut self.connection {
            Connection::Lost(lost) => Some(lost),
            Connection::Live => None,
        }
    }

    /// The session the server held is gone: nothing of it may be resumed or sent again.
    fn forget_session(&mut self) {
        self.grant = None;
        self.outbox = Outbox::default();
    }
}

/// Promises of a call that ended because its session could not be resumed reject with this.
fn session_lost() -> SdkError {
    SdkError {
        code: Some(code::SIGNALING_LOST),
        message: "the signaling session was lost and could not be resumed, which ended the call \
                  before this finished"
            .into(),
    }
}

/// What the app hears of a call that ended with its session: a ringing invitation was
/// withdrawn; a call, or a ring of ours the server knew of, ended with us leaving it (the other
/// side hears the same from the server). A `call()` the server never heard of only rejects.
fn session_lost_events(call: &ActiveCall, me: &str, now_ms: u64) -> Vec<AppEvent> {
    match &call.phase {
        Phase::Incoming {
            invite_id, sponsor, ..
        } => vec![AppEvent::CallingCancel {
            invite_id: invite_id.clone(),
            sponsor: sponsor.clone(),
        }],
        Phase::Outgoing if call.room_id.is_none() => Vec::new(),
        Phase::Outgoing | Phase::Connected { .. } => vec![AppEvent::CallEnd {
            user_id: me.to_owned(),
            call_end: call.connected_secs(now_ms),
        }],
    }
}

impl Session {
    /// A message with its `seq`: processed once, in the live session only.
    pub(crate) fn sequenced(
        &mut self,
        now_ms: u64,
        seq: u64,
        message: ServerMessage,
        out: &mut Vec<Effect>,
    ) {
        let resumption = &mut self.resumption;
        if seq <= resumption.last_seq {
            return;
        }
        // While the socket is being replaced only the answer to resume/login counts, and it
        // carries no seq of this session; anything else is not processed, so not recorded.
        if !resumption.is_lost() {
            resumption.last_seq = seq;
        }
        self.server(now_ms, message, out);
    }

    /// The socket closed while logged in. Returns false when the session cannot be resumed,
    /// so it ends as it always did.
    pub(crate) fn reconnect_on_close(&mut self, now_ms: u64, out: &mut Vec<Effect>) -> bool {
        if self.resumption.is_lost() {
            self.attempt_failed(now_ms, out);
            return true;
        }
        let Some(grant) = &self.resumption.grant else {
            return false;
        };
        let grace_ms = u64::from(grant.grace_secs) * 1000;
        self.resumption.connection = Connection::Lost(Lost {
            since_ms: now_ms,
            session_ends_ms: now_ms.saturating_add(grace_ms),
            attempt: 0,
            stage: Stage::Waiting,
            quiet: false,
        });
        // No pings while there is no socket; the call, its peers and its media stay as they are.
        out.push(Effect::CancelTimer(Timer::Heartbeat));
        self.attempt(out);
        true
    }

    /// Starts the next attempt: a new socket.
    fn attempt(&mut self, out: &mut Vec<Effect>) {
        let Some(lost) = self.resumption.lost() else {
            return;
        };
        lost.attempt += 1;
        lost.stage = Stage::Opening;
        if !lost.quiet {
            out.push(Effect::Emit(AppEvent::Reconnecting {
                attempt: lost.attempt,
            }));
        }
        out.push(Effect::OpenSignaling);
    }

    /// The socket of the attempt under way could not be opened or closed before the session
    /// was back: wait, then try again, or give up once it has lasted long enough.
    fn attempt_failed(&mut self, now_ms: u64, out: &mut Vec<Effect>) {
        let Resumption {
            connection: Connection::Lost(lost),
            jitter,
            ..
        } = &mut self.resumption
        else {
            return;
        };
        if lost.stage == Stage::Waiting {
            return;
        }
        lost.speak_up(out);
        if now_ms.saturating_sub(lost.since_ms) >= GIVE_UP_AFTER_MS {
            let msg = format!(
                "the signaling connection was lost and could not be restored within {} s",
                GIVE_UP_AFTER_MS / 1000
            );
            return self.give_up(now_ms, msg, out);
        }
        lost.stage = Stage::Waiting;
        out.push(Effect::StartTimer {
            timer: Timer::Reconnect,
            after_ms: jitter.retry_delay_ms(lost.attempt),
        });
    }

    /// [`Timer::Reconnect`] fired.
    pub(crate) fn reconnect_due(&mut self, out: &mut Vec<Effect>) {
        if self
            .resumption
            .lost()
            .is_some_and(|l| l.stage == Stage::Waiting)
        {
            self.attempt(out);
        }
    }

    /// The network is back, or the page visible again: an attempt waiting for its turn is
    /// made now; a socket that looks live is probed, since it may have died meanwhile without
    /// anyone saying so.
    pub(crate) fn network_online(&mut self, out: &mut Vec<Effect>) {
        if self
            .resumption
            .lost()
            .is_some_and(|l| l.stage == Stage::Waiting)
        {
            out.push(Effect::CancelTimer(Timer::Reconnect));
            self.attempt(out);
            return;
        }
        self.probe_socket(out);
    }

    /// Pings a live socket that may have died silently; unanswered within
    /// `PROBE_TIMEOUT_MS`, it is taken for dead ([`Timer::Probe`]).
    pub(crate) fn probe_socket(&mut self, out: &mut Vec<Effect>) {
        let live = matches!(self.login, Login::LoggedIn { .. }) && !self.resumption.is_lost();
        if live && self.resumption.grant.is_some() && !self.resumption.probing {
            self.resumption.probing = true;
            out.push(Effect::Send(ClientMessage::Ping));
            out.push(Effect::StartTimer {
                timer: Timer::Probe,
                after_ms: PROBE_TIMEOUT_MS,
            });
        }
    }

    /// [`Timer::Probe`] fired: unanswered means the socket is dead.
    pub(crate) fn probe_due(&mut self, now_ms: u64, out: &mut Vec<Effect>) {
        if std::mem::take(&mut self.resumption.probing) && !self.resumption.is_lost() {
            self.socket_dead(now_ms, out);
        }
    }

    /// The socket is open as far as the browser knows, but nothing comes through it: replace
    /// it as if it had closed ([`Effect::OpenSignaling`] drops it without a close frame, so
    /// the server keeps the session for the resume).
    pub(crate) fn socket_dead(&mut self, now_ms: u64, out: &mut Vec<Effect>) {
        self.resumption.heard();
        out.push(Effect::CancelTimer(Timer::Probe));
        self.reconnect_on_close(now_ms, out);
    }

    /// `logout()` while the socket is lost: the server still holds the session for its grace,
    /// and the others would only hear us leave when that ends. The resume that names it, for a
    /// throwaway socket that closes deliberately as soon as the server answers it
    /// ([`Effect::Farewell`]); `None` when there is no session to resume.
    pub(crate) fn farewell(&self) -> Option<ClientMessage> {
        let Login::LoggedIn { user_id } = &self.login else {
            return None;
        };
        let Resumption {
            connection: Connection::Lost(_),
            credentials: Some(credentials),
            grant: Some(grant),
            last_seq,
            ..
        } = &self.resumption
        else {
            return None;
        };
        Some(ClientMessage::Resume {
            sdk_app_id: credentials.sdk_app_id,
            user_id: user_id.clone(),
            token: grant.token.clone(),
            last_seq: *last_seq,
            protocol_version: PROTOCOL_VERSION,
        })
    }

    /// The new socket is open: resume the session on it, or log in when it cannot be resumed.
    pub(crate) fn signaling_opened(&mut self, out: &mut Vec<Effect>) {
        let Login::LoggedIn { user_id } = &self.login else {
            return;
        };
        let Resumption {
            connection: Connection::Lost(lost),
            credentials: Some(credentials),
            grant,
            last_seq,
            ..
        } = &mut self.resumption
        else {
            return;
        };
        if lost.stage != Stage::Opening {
            return;
        }
        let frame = match grant {
            Some(grant) => {
                lost.stage = Stage::Resuming;
                ClientMessage::Resume {
                    sdk_app_id: credentials.sdk_app_id,
                    user_id: user_id.clone(),
                    token: grant.token.clone(),
                    last_seq: *last_seq,
                    protocol_version: PROTOCOL_VERSION,
                }
            }
            None => {
                lost.stage = Stage::LoggingIn;
                login_message(credentials, user_id)
            }
        };
        out.push(Effect::Send(frame));
    }

    /// A server message while the socket is being replaced: only the answer to our `resume`
    /// or `login` means anything.
    pub(crate) fn handshake_answer(
        &mut self,
        now_ms: u64,
        message: ServerMessage,
        out: &mut Vec<Effect>,
    ) {
        let Some(stage) = self.resumption.lost().map(|l| l.stage) else {
            return;
        };
        match (stage, message) {
            (Stage::Resuming, ServerMessage::Resumed(Resumed { received })) => {
                self.resumed(received, out)
            }
            // The session was ended by a login elsewhere: kicked out, as if we had heard it.
            (Stage::Resuming, ServerMessage::Kicked) => self.kicked(out),
            (Stage::Resuming, ServerMessage::Error(_)) => self.resume_refused(out),
            (Stage::LoggingIn, ServerMessage::LoginOk(ok)) => self.logged_in_again(now_ms, ok, out),
            (Stage::LoggingIn, ServerMessage::Error(ErrorReply { message, .. })) => {
                let msg = format!(
                    "the signaling session was lost and logging in again failed: {message}"
                );
                self.give_up(now_ms, msg, out)
            }
            _ => {}
        }
    }

    /// The session is ours again: what the server missed goes out again, then what was held.
    fn resumed(&mut self, received: u64, out: &mut Vec<Effect>) {
        let resumption = &mut self.resumption;
        match resumption.outbox.after(received) {
            Ok(frames) => {
                let quiet = resumption.lost().is_some_and(|l| l.quiet);
                resumption.resend = frames;
                resumption.connection = Connection::Live;
                out.push(heartbeat_timer());
                if !quiet {
                    out.push(Effect::Emit(AppEvent::Reconnected { resumed: true }));
                }
            }
            Err(_) => {
                // The server took the session back but misses frames we no longer have, so
                // its state and ours have parted. Closing the socket deliberately ends the
                // session there (the others are told); a fresh login follows on a new socket.
                out.push(Effect::Disconnect);
                resumption.forget_session();
                self.attempt(out);
            }
        }
    }

    /// The session is gone on the server: log in again on the same socket.
    fn resume_refused(&mut self, out: &mut Vec<Effect>) {
        let Login::LoggedIn { user_id } = &self.login else {
            return;
        };
        let resumption = &mut self.resumption;
        resumption.forget_session();
        let Some(credentials) = &resumption.credentials else {
            return;
        };
        let frame = login_message(credentials, user_id);
        if let Some(lost) = resumption.lost() {
            lost.stage = Stage::LoggingIn;
            lost.speak_up(out);
        }
        out.push(Effect::Send(frame));
    }

    /// Logged in again after the old session ended: a call or outgoing ring ended with it; an
    /// invitation ringing here may still ring.
    fn logged_in_again(&mut self, now_ms: u64, ok: LoginOk, out: &mut Vec<Effect>) {
        let Some(me) = self.me() else { return };
        let Some(lost) = self.resumption.lost() else {
            return;
        };
        lost.speak_up(out);
        let until = now_ms.min(lost.session_ends_ms);
        self.ice_servers = ok.ice_servers;
        self.sfu_available = ok.sfu;
        self.resumption.begin(ok.resume);
        // Requests of the old session will never be answered.
        self.abandoned.clear();
        let ringing = match self.call.as_mut() {
            Some(call) => match &call.phase {
                Phase::Incoming { invite_id, .. } => {
                    // Our answer to the caller's offer may have been lost with the old session;
                    // if the caller sends its offer again on accept, it must be answered.
                    for (_, peer) in call.peers.iter_mut() {
                        peer.applied_offer = None;
                    }
                    Some(invite_id.clone())
                }
                Phase::Outgoing | Phase::Connected { .. } => None,
            },
            None => None,
        };
        match ringing {
            Some(invite_id) => {
                // The server delivers an invitation still ringing for us right after loginOk,
                // before it answers anything we send: the pong to this ping tells us it is not.
                self.resumption.reinvite = Some(invite_id);
                out.push(Effect::Send(ClientMessage::Ping));
            }
            None => {
                let events = |call: &ActiveCall| session_lost_events(call, &me, until);
                self.end_call(Tell::Nobody, events, &session_lost(), out);
            }
        }
        out.push(Effect::Emit(AppEvent::Reconnected { resumed: false }));
        out.push(heartbeat_timer());
    }

    /// After logging in again while ringing: the invitation delivered again (it still rings:
    /// nothing new for the app), or the pong that says it will not be. Returns whether
    /// `message` was that answer.
    pub(crate) fn reinvite_answer(
        &mut self,
        now_ms: u64,
        message: &ServerMessage,
        out: &mut Vec<Effect>,
    ) -> bool {
        let Some(awaited) = self.resumption.reinvite.clone() else {
            return false;
        };
        let ringing = self.call.as_ref().and_then(|call| match &call.phase {
            Phase::Incoming {
                invite_id, answer, ..
            } if *invite_id == awaited => Some((call, answer)),
            _ => None,
        });
        match message {
            ServerMessage::Invited(Invited { invite_id, .. }) if *invite_id == awaited => {
                self.resumption.reinvite = None;
                // An accept() the old session lost is made again in the new one.
                if let Some((call, Answer::Joining { request })) = ringing {
                    out.push(Effect::Send(ClientMessage::Accept {
                        request_id: *request,
                        invite_id: awaited,
                    }));
                    if !call.capturing() {
                        call.send_media_state(out);
                    }
                }
                true
            }
            ServerMessage::Pong => {
                self.resumption.reinvite = None;
                if ringing.is_some() {
                    let Some(me) = self.me() else { return true };
                    let events = |call: &ActiveCall| session_lost_events(call, &me, now_ms);
                    self.end_call(Tell::Nobody, events, &session_lost(), out);
                }
                true
            }
            _ => false,
        }
    }

    /// Reconnecting failed for good: leave any call, end the session, tell the app.
    fn give_up(&mut self, now_ms: u64, msg: String, out: &mut Vec<Effect>) {
        let Some(me) = self.me() else { return };
        let until = self
            .resumption
            .lost()
            .map_or(now_ms, |l| now_ms.min(l.session_ends_ms));
        let reason = SdkError {
            code: Some(code::SIGNALING_LOST),
            message: msg.clone(),
        };
        let events = |call: &ActiveCall| session_lost_events(call, &me, until);
        self.end_call(Tell::Nobody, events, &reason, out);
        self.end_session(out);
        out.push(Effect::Disconnect);
        out.push(Effect::Emit(AppEvent::Error {
            code: code::SIGNALING_LOST,
            msg,
        }));
    }

    /// The frames among `out` in a resumable session: numbered and kept; held while the socket
    /// is lost. `was_lost`: the socket was lost when the input came, so a session that ended
    /// meanwhile (logout, giving up) has nothing to send its last frames on. Frames to send
    /// again after a resume go last, numbered already.
    pub(crate) fn route_sends(&mut self, was_lost: bool, out: &mut Vec<Effect>) {
        let resumption = &mut self.resumption;
        let logged_in = matches!(self.login, Login::LoggedIn { .. });
        if !logged_in {
            if was_lost {
                out.retain(|e| !matches!(e, Effect::Send(_)));
            }
        } else if resumption.grant.is_some() || resumption.is_lost() {
            let live = !resumption.is_lost();
            let outbox = &mut resumption.outbox;
            out.retain(|effect| match effect {
                Effect::Send(frame) if is_counted(frame) => {
                    outbox.record(frame.clone());
                    live
                }
                _ => true,
            });
            if live {
                outbox.all_sent();
            }
        }
        out.extend(resumption.resend.drain(..).map(Effect::Send));
    }

    /// Whether the signaling connection is lost and being restored.
    pub fn is_reconnecting(&self) -> bool {
        self.resumption.is_lost()
    }
}

impl Lost {
    /// A quiet move turned into a reconnect (its socket could not be had, or its session was
    /// gone): from now on the app hears what it hears of any other.
    fn speak_up(&mut self, out: &mut Vec<Effect>) {
        if std::mem::take(&mut self.quiet) {
            out.push(Effect::Emit(AppEvent::Reconnecting {
                attempt: self.attempt,
            }));
        }
    }
}

mod moving;
pub(crate) use moving::Moving;

#[cfg(test)]
mod tests;
