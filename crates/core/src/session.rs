//! The state machine's entry point: a [`Session`] is one SDK instance's signaling session and the
//! call in progress, if any. [`Session::handle`] routes each input to the part that owns it
//! (login, invitation, membership, media, links) and collects the effects; the read-only helpers
//! answer `getCallStatus()` and friends.
//!
//! Commands are checked before anything changes, so an `Err` leaves the state untouched and
//! returns no effect. Network input that does not fit the current state (a stale room, an
//! unknown invitation, a message in the wrong phase) is ignored: the server and the other
//! participants are not trusted to be in step with us.

use std::fmt;

use calling_protocol::{
    Accepted, Busy, CallEnded, CallType, Cancelled, ErrorReply, IceServer, InviteSent,
    InviteTimeout, InviteeList, MemberLeft, NoResponse, Rejected, RelayedSignal, ServerMessage,
    SfuSignal, Signal,
};

use crate::active_call::{ActiveCall, Phase};
use crate::invitation::Decline;
use crate::link::PeerLink;
use crate::negotiation::is_polite;
use crate::privacy::{ConnectPolicy, Ringing};
use crate::reconnect::{Moving, Resumption};
use crate::sfu::SFU_LINK;
use crate::{code, Command, Effect, Input, MediaToken, PeerEvent, RequestId, SdkError, Timer};

/// `getCallStatus()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallStatus {
    Idle,
    Calling,
    Connected,
}

impl CallStatus {
    /// The string trtc-calling-js returns.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Idle => "idle",
            CallStatus::Calling => "calling",
            CallStatus::Connected => "connected",
        }
    }
}

impl fmt::Display for CallStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a command was refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    NotLoggedIn,
    AlreadyLoggedIn,
    /// A method called in a state where it makes no sense (the message says which and why).
    WrongState(String),
    InvalidParam(String),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::NotLoggedIn => f.write_str("not logged in: call login() first"),
            CallError::AlreadyLoggedIn => {
                f.write_str("already logged in (or logging in): call logout() first")
            }
            CallError::WrongState(msg) | CallError::InvalidParam(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for CallError {}

impl From<CallError> for SdkError {
    fn from(err: CallError) -> Self {
        let code = match err {
            CallError::InvalidParam(_) => Some(code::INVALID_PARAM),
            CallError::NotLoggedIn | CallError::AlreadyLoggedIn | CallError::WrongState(_) => None,
        };
        SdkError {
            code,
            message: err.to_string(),
        }
    }
}

/// The signaling session.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) enum Login {
    #[default]
    LoggedOut,
    /// `Login` sent; the promise of `request` settles on the server's answer.
    LoggingIn {
        request: RequestId,
        user_id: String,
    },
    LoggedIn {
        user_id: String,
    },
}

/// One SDK instance's call state: the logged-in session and at most one call.
#[derive(Debug, Default)]
pub struct Session {
    pub(crate) login: Login,
    /// The call in progress; `None` is the idle line. Only ever `Some` while logged in.
    pub(crate) call: Option<ActiveCall>,
    /// Requests of calls left before the server answered them: when `InviteSent`/`Joined` for
    /// one arrives we are a member of a call we no longer want, so we hang up at once.
    pub(crate) abandoned: Vec<RequestId>,
    /// The token of the next call's first `OpenMedia`: tokens never repeat within a session,
    /// so an outcome for a call already left is never taken for the next call's.
    pub(crate) next_media_token: MediaToken,
    /// The server's STUN/TURN list from login, for every connection made.
    pub(crate) ice_servers: Vec<IceServer>,
    /// The server runs an SFU, for group calls ([`crate::sfu`]); from login.
    pub(crate) sfu_available: bool,
    /// What it takes to get the session back when its socket is lost (see `reconnect`).
    pub(crate) resumption: Resumption,
    /// How connections are made: relay-only, pre-connecting while ringing (see `privacy`).
    pub(crate) policy: ConnectPolicy,
    /// The server asked us to move to a new socket; when we will (see `moving`).
    pub(crate) moving: Moving,
}

impl Session {
    /// A session whose reconnect waits are jittered from a fixed seed; see [`Session::with_seed`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A session whose reconnect waits are jittered from `seed`. The glue passes a random one,
    /// so that the clients of a server that restarted do not all retry at once; tests pass a
    /// fixed one and get the same waits every run.
    pub fn with_seed(seed: u64) -> Self {
        Session {
            resumption: Resumption::with_seed(seed),
            ..Session::default()
        }
    }

    /// This session makes its connections as `policy` says (the app's constructor options).
    pub fn with_policy(mut self, policy: ConnectPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Reacts to one input at `now_ms` (milliseconds on any monotonic clock).
    pub fn handle(&mut self, now_ms: u64, input: Input) -> Result<Vec<Effect>, CallError> {
        let mut out = Vec::new();
        let was_lost = self.resumption.is_lost();
        match input {
            Input::Command { request, command } => {
                self.command(now_ms, request, command, &mut out)?
            }
            Input::Server(message) => {
                self.resumption.heard();
                self.server(now_ms, message, &mut out)
            }
            Input::Sequenced { seq, message } => {
                self.resumption.heard();
                self.sequenced(now_ms, seq, message, &mut out)
            }
            Input::SignalingClosed => self.signaling_closed(now_ms, &mut out),
            Input::SignalingOpened => self.signaling_opened(&mut out),
            Input::NetworkOnline => {
                self.network_online(&mut out);
                self.network_back(now_ms, &mut out);
            }
            Input::NetworkOffline => self.probe_socket(&mut out),
            Input::Timer(Timer::Probe) => self.probe_due(now_ms, &mut out),
            Input::Timer(Timer::Reconnect) => self.reconnect_due(&mut out),
            Input::Timer(Timer::Move) => self.move_due(now_ms, &mut out),
            Input::Media { token, outcome } => self.media_outcome(now_ms, token, outcome, &mut out),
            Input::Device { kind, change } => self.device_changed(kind, change, &mut out),
            Input::AudioLevels { local, remote } => self.audio_levels(local, remote, &mut out),
            Input::RenderedViews(views) => self.rendered_views(views, &mut out),
            Input::Peer { user_id, event } => self.peer_event(now_ms, &user_id, event, &mut out),
            Input::Timer(Timer::Heartbeat) => self.heartbeat(now_ms, &mut out),
            Input::Timer(Timer::VoiceVolume) => self.voice_volume_due(&mut out),
            Input::Timer(Timer::PeerHealth) => self.peer_health_due(now_ms, &mut out),
        }
        // Whatever the input, a link may have been interrupted, restored, attached or removed.
        self.schedule_peer_health(now_ms, &mut out);
        // A call that ended, a socket that was lost: a pending move is scheduled or dropped.
        self.settle_move(&mut out);
        // Every frame made above, whichever part made it, is numbered (or held) here.
        self.route_sends(was_lost, &mut out);
        Ok(out)
    }

    fn command(
        &mut self,
        now_ms: u64,
        request: RequestId,
        command: Command,
        out: &mut Vec<Effect>,
    ) -> Result<(), CallError> {
        if let Command::Login {
            sdk_app_id,
            user_id,
            user_sig,
        } = command
        {
            return self.login(request, sdk_app_id, user_id, user_sig, out);
        }
        // Cleanup never fails, whatever the state: an app may call these in any order.
        match command {
            Command::Logout => {
                self.logout(now_ms, request, out);
                return Ok(());
            }
            Command::Hangup => {
                self.hangup(now_ms, request, out);
                return Ok(());
            }
            _ => {}
        }
        let me = self.me().ok_or(CallError::NotLoggedIn)?;
        match command {
            // Answered above; a second login while logged in is refused.
            Command::Login { .. } => Err(CallError::AlreadyLoggedIn),
            Command::Logout | Command::Hangup => Ok(()),
            Command::Call { user_id, call_type } => {
                self.call(&me, request, user_id, call_type, out)
            }
            Command::GroupCall {
                user_ids,
                call_type,
                group_id,
            } => self.group_call(&me, request, user_ids, call_type, group_id, out),
            Command::Accept => self.accept(now_ms, request, out),
            Command::Reject => self.reject(request, out),
            Command::SetMicMute(mute) => self.set_mic_mute(request, mute, out),
            Command::OpenCamera => self.open_camera(request, out),
            Command::CloseCamera => self.close_camera(request, out),
            Command::SwitchToAudio => self.switch_mode(request, CallType::Audio, out),
            Command::SwitchToVideo => self.switch_mode(request, CallType::Video, out),
        }
    }

    pub(crate) fn server(&mut self, now_ms: u64, message: ServerMessage, out: &mut Vec<Effect>) {
        if let Login::LoggingIn { .. } = self.login {
            return self.login_answer(message, out);
        }
        if self.resumption.is_lost() {
            return self.handshake_answer(now_ms, message, out);
        }
        if self.reinvite_answer(now_ms, &message, out) {
            return;
        }
        let Some(me) = self.me() else { return };
        match message {
            ServerMessage::LoginOk(_)
            | ServerMessage::Pong
            | ServerMessage::Resumed(_)
            | ServerMessage::Unknown => {}
            ServerMessage::Sfu(SfuSignal { room_id, signal }) => {
                self.sfu_signal(room_id, signal, out)
            }
            ServerMessage::IceServers(update) => self.renew_ice_servers(update.ice_servers, out),
            ServerMessage::GoAway(go_away) => {
                self.told_to_move(go_away.within_ms, go_away.session_shared)
            }
            ServerMessage::Error(ErrorReply {
                request_id: Some(request),
                code,
                message,
            }) => self.request_failed(request, code, message, out),
            ServerMessage::Error(ErrorReply {
                request_id: None,
                code: calling_protocol::ErrorCode::SfuRejoin,
                ..
            }) => self.rejoin_sfu(now_ms, out),
            // Other errors that name no request answer fire-and-forget messages (hangup,
            // relay); there is nothing to undo and nobody waiting.
            ServerMessage::Error(ErrorReply {
                request_id: None, ..
            }) => {}
            ServerMessage::InviteSent(InviteSent {
                request_id,
                invite_id,
                room_id,
                user_ids,
            }) => self.invite_sent(&me, request_id, invite_id, room_id, user_ids, out),
            ServerMessage::Invited(invited) => self.invited(&me, invited, out),
            ServerMessage::Joined(joined) => self.joined(&me, now_ms, joined, out),
            ServerMessage::Accepted(Accepted {
                room_id, user_id, ..
            }) => self.accepted(&me, now_ms, room_id, user_id, out),
            ServerMessage::Rejected(Rejected {
                room_id, user_id, ..
            }) => self.declined(now_ms, room_id, &user_id, Decline::Rejected, &me, out),
            ServerMessage::Busy(Busy {
                room_id, user_id, ..
            }) => self.declined(now_ms, room_id, &user_id, Decline::Busy, &me, out),
            ServerMessage::NoResponse(NoResponse {
                room_id, user_ids, ..
            }) => self.no_response(now_ms, &me, room_id, user_ids, out),
            ServerMessage::Cancelled(Cancelled {
                room_id,
                invite_id,
                sponsor,
            }) => self.cancelled(room_id, invite_id, sponsor, out),
            ServerMessage::InviteTimeout(InviteTimeout {
                room_id,
                invite_id,
                sponsor,
            }) => self.invite_timeout(&me, room_id, invite_id, sponsor, out),
            ServerMessage::InviteeList(InviteeList { room_id, user_ids }) => {
                self.invitee_list_changed(room_id, user_ids, out)
            }
            ServerMessage::MemberLeft(MemberLeft { room_id, user_id }) => {
                self.member_left(now_ms, room_id, &user_id, out)
            }
            ServerMessage::CallEnded(CallEnded {
                room_id,
                user_id,
                duration_secs,
                reason,
            }) => self.call_ended(room_id, user_id, duration_secs, reason, out),
            ServerMessage::Signal(RelayedSignal {
                room_id,
                from,
                signal,
            }) => self.signal(&me, room_id, &from, signal, out),
            ServerMessage::Kicked => self.kicked(out),
        }
    }

    /// Fresh STUN/TURN servers (TURN credentials expire): connections made from now on use
    /// them, and the live ones are handed them for their next gathering (an ICE restart).
    fn renew_ice_servers(&mut self, ice_servers: Vec<IceServer>, out: &mut Vec<Effect>) {
        if self
            .call
            .as_ref()
            .is_some_and(|c| c.connections().next().is_some())
        {
            out.push(Effect::RenewIceServers {
                ice_servers: ice_servers.clone(),
            });
        }
        self.ice_servers = ice_servers;
    }

    /// A signal relayed from another participant of our call.
    fn signal(&mut self, me: &str, room: u32, from: &str, signal: Signal, out: &mut Vec<Effect>) {
        let Some(call) = self.call.as_mut().filter(|c| c.is_room(room)) else {
            return;
        };
        if from == me {
            return;
        }
        match signal {
            Signal::SwitchMode { call_type } => return self.follow_switch(from, call_type, out),
            Signal::SwitchModeAck { call_type, ok } => {
                return self.switch_acknowledged(call_type, ok, out)
            }
            Signal::Unknown => return,
            // A member we were not told about yet offers: it is in our call (the server only
            // relays between members), so answer it rather than leave it hanging.
            Signal::Offer { .. }
                if !call.peers.contains_key(from)
                    && call.is_connected()
                    && !call.given_up.iter().any(|u| u == from) =>
            {
                let polite = is_polite(me, from);
                out.push(create_peer(
                    &self.ice_servers,
                    from,
                    false,
                    polite,
                    self.policy.relay_only,
                ));
                let (room, local) = (call.room_id, call.settled_state());
                let mut peer = PeerLink::new(polite);
                peer.attach(from, room, local, out);
                call.peers.insert(from.to_owned(), peer);
            }
            _ => {}
        }
        let Some(peer) = call.peers.get_mut(from) else {
            return;
        };
        if let Ringing::Deferred(held) = &mut peer.ringing {
            // No connection yet: the caller's offer and candidates wait for the accept.
            held.push(signal);
            return;
        }
        peer.on_signal(from, signal, out);
    }

    /// Something happened on the peer connection to `user`.
    fn peer_event(&mut self, now_ms: u64, user: &str, event: PeerEvent, out: &mut Vec<Effect>) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let (Some(room), local) = (call.room_id, call.settled_state()) else {
            return;
        };
        if user == SFU_LINK {
            return self.sfu_event(now_ms, event, out);
        }
        if self.dropped_after_move(now_ms, user, &event, out) {
            return;
        }
        let Some(call) = self.call.as_mut() else {
            return;
        };
        if let Some(peer) = call.peers.get_mut(user) {
            peer.on_event(now_ms, user, room, local, event, out);
        }
    }

    /// Makes `call` the call in progress; its media tokens continue the session's.
    pub(crate) fn begin_call(&mut self, mut call: ActiveCall) {
        call.next_token = self.next_media_token;
        self.call = Some(call);
    }

    /// Ends the call in progress (the line becomes idle); later calls' media tokens continue
    /// after its own, so its outcomes still to come match nothing.
    pub(crate) fn take_call(&mut self) -> Option<ActiveCall> {
        let call = self.call.take()?;
        self.next_media_token = call.next_token;
        Some(call)
    }

    /// The logged-in user, if any.
    pub(crate) fn me(&self) -> Option<String> {
        match &self.login {
            Login::LoggedIn { user_id } => Some(user_id.clone()),
            Login::LoggedOut | Login::LoggingIn { .. } => None,
        }
    }

    pub fn status(&self) -> CallStatus {
        match self.call.as_ref().map(|c| &c.phase) {
            None => CallStatus::Idle,
            Some(Phase::Outgoing | Phase::Incoming { .. }) => CallStatus::Calling,
            Some(Phase::Connected { .. }) => CallStatus::Connected,
        }
    }

    /// `getCallType()`: the current call's type (None when idle).
    pub fn call_type(&self) -> Option<CallType> {
        self.call.as_ref().map(|c| c.call_type)
    }

    /// `isInviter()`: this side started the current call.
    pub fn is_inviter(&self) -> bool {
        match self.call.as_ref().map(|c| &c.phase) {
            Some(Phase::Outgoing) => true,
            Some(Phase::Connected { inviter, .. }) => *inviter,
            Some(Phase::Incoming { .. }) | None => false,
        }
    }

    /// `isGroupCall()`.
    pub fn is_group_call(&self) -> bool {
        self.call.as_ref().is_some_and(|c| c.is_group)
    }

    /// `getInviteeList()`: invitees of the current call still ringing.
    pub fn invitee_list(&self) -> Vec<String> {
        self.call
            .as_ref()
            .map(|c| c.invitees.clone())
            .unwrap_or_default()
    }

    /// `getUserID()`: the logged-in user (None before login).
    pub fn user_id(&self) -> Option<&str> {
        match &self.login {
            Login::LoggedIn { user_id } => Some(user_id),
            Login::LoggedOut | Login::LoggingIn { .. } => None,
        }
    }

    /// The current call's room (None when idle).
    pub fn room_id(&self) -> Option<u32> {
        self.call.as_ref().and_then(|c| c.room_id)
    }
}

/// A connection to `user_id`, with the server's ICE servers from login.
pub(crate) fn create_peer(
    ice_servers: &[IceServer],
    user_id: &str,
    initiator: bool,
    polite: bool,
    relay_only: bool,
) -> Effect {
    Effect::CreatePeer {
        user_id: user_id.to_owned(),
        initiator,
        polite,
        ice_servers: ice_servers.to_vec(),
        relay_only,
    }
}

#[cfg(test)]
impl Session {
    /// A session already logged in as `user`, for unit tests of single transitions.
    pub(crate) fn logged_in_as(user: &str) -> Session {
        Session {
            login: Login::LoggedIn {
                user_id: user.to_owned(),
            },
            ..Session::default()
        }
    }

    /// Runs one input that must be accepted.
    pub(crate) fn ok(&mut self, input: Input) -> Vec<Effect> {
        match self.handle(0, input) {
            Ok(effects) => effects,
            Err(err) => panic!("refused: {err}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use calling_protocol::{EndReason, IceServer};
    use calling_protocol::{Joined, LoginOk};

    use super::*;
    use crate::{Reply, SdkError};

    fn logged_in() -> Session {
        let mut call = Session::new();
        let login = Command::Login {
            sdk_app_id: 1,
            user_id: "alice".into(),
            user_sig: "sig".into(),
        };
        call.handle(
            0,
            Input::Command {
                request: 1,
                command: login,
            },
        )
        .expect("login");
        let ok = ServerMessage::LoginOk(LoginOk {
            user_id: "alice".into(),
            ice_servers: Vec::<IceServer>::new(),
            ring_timeout_secs: 30,
            heartbeat_timeout_secs: 10,
            resume: None,
            sfu: false,
        });
        call.handle(0, Input::Server(ok)).expect("login ok");
        call
    }

    #[test]
    fn unexpected_network_input_while_idle_is_ignored() {
        let mut call = logged_in();
        let stray = [
            ServerMessage::InviteSent(InviteSent {
                request_id: 7,
                invite_id: "i".into(),
                room_id: 3,
                user_ids: vec![],
            }),
            ServerMessage::Joined(Joined {
                request_id: 7,
                room_id: 3,
                call_type: CallType::Audio,
                members: vec!["bob".into()],
                pending: vec![],
            }),
            ServerMessage::Accepted(Accepted {
                room_id: 3,
                invite_id: "i".into(),
                user_id: "bob".into(),
            }),
            ServerMessage::Rejected(Rejected {
                room_id: 3,
                invite_id: "i".into(),
                user_id: "bob".into(),
            }),
            ServerMessage::Cancelled(Cancelled {
                room_id: 3,
                invite_id: "i".into(),
                sponsor: "bob".into(),
            }),
            ServerMessage::MemberLeft(MemberLeft {
                room_id: 3,
                user_id: "bob".into(),
            }),
            ServerMessage::CallEnded(CallEnded {
                room_id: 3,
                user_id: "bob".into(),
                duration_secs: 1,
                reason: EndReason::Hangup,
            }),
            ServerMessage::Signal(RelayedSignal {
                room_id: 3,
                from: "bob".into(),
                signal: Signal::Offer { sdp: "o".into() },
            }),
            ServerMessage::Error(ErrorReply {
                request_id: Some(99),
                code: calling_protocol::ErrorCode::Busy,
                message: "busy".into(),
            }),
            ServerMessage::Unknown,
        ];
        for message in stray {
            assert_eq!(
                call.handle(5, Input::Server(message.clone())),
                Ok(vec![]),
                "{message:?}"
            );
        }
        let peer = Input::Peer {
            user_id: "bob".into(),
            event: PeerEvent::RemoteMedia,
        };
        assert_eq!(call.handle(5, peer), Ok(vec![]));
        assert_eq!(call.status(), CallStatus::Idle);
        assert_eq!(call.user_id(), Some("alice"));
    }

    #[test]
    fn network_input_before_login_is_ignored() {
        let mut call = Session::new();
        assert_eq!(
            call.handle(0, Input::Server(ServerMessage::Kicked)),
            Ok(vec![])
        );
        assert_eq!(call.handle(0, Input::SignalingClosed), Ok(vec![]));
        assert_eq!(call.handle(0, Input::Timer(Timer::Heartbeat)), Ok(vec![]));
    }

    #[test]
    fn errors_map_to_sdk_errors() {
        let invalid: SdkError = CallError::InvalidParam("bad".into()).into();
        assert_eq!(
            invalid,
            SdkError {
                code: Some(65535),
                message: "bad".into()
            }
        );
        let state: SdkError = CallError::WrongState("later".into()).into();
        assert_eq!(
            state,
            SdkError {
                code: None,
                message: "later".into()
            }
        );
        let again: SdkError = CallError::AlreadyLoggedIn.into();
        assert_eq!(again.code, None);
        assert!(again.message.contains("logout()"));
    }

    #[test]
    fn status_strings_are_trtc_calling_js_ones() {
        assert_eq!(CallStatus::Idle.as_str(), "idle");
        assert_eq!(CallStatus::Calling.to_string(), "calling");
        assert_eq!(CallStatus::Connected.as_str(), "connected");
    }

    #[test]
    fn idle_helpers() {
        let call = logged_in();
        assert_eq!(call.call_type(), None);
        assert!(!call.is_inviter() && !call.is_group_call());
        assert!(call.invitee_list().is_empty());
        assert_eq!(call.room_id(), None);
        let mut hung = logged_in();
        let fx = hung.handle(
            0,
            Input::Command {
                request: 3,
                command: Command::Hangup,
            },
        );
        assert_eq!(
            fx,
            Ok(vec![Effect::Resolve {
                request: 3,
                reply: Reply::OkMsg {
                    code: 0,
                    msg: "ok".into()
                }
            }])
        );
    }
}
