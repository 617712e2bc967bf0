//! Wire protocol between the browser SDK and `calling-server`.
//!
//! Every frame is one JSON object, internally tagged by `"type"`, with camelCase field names.
//! [`ClientMessage`] travels SDK → server, [`ServerMessage`] server → SDK. This file is the
//! protocol reference: each variant's doc comment says when it is sent and what the receiver does.
//! The golden tests in `tests/golden.rs` pin the exact JSON of every message.
//!
//! The server is the single authority over invitations and calls: clients ask (invite, accept,
//! reject, hangup) and the server tells every party the outcome, so ringing never desyncs.
//! Media never passes through the server (unless it runs the SFU, below); it only relays
//! WebRTC signaling between the participants of one call (see [`Signal`]).

use serde::{Deserialize, Deserializer, Serialize};

mod by_kind;
mod names;
pub mod user_id;

/// Sent in [`ClientMessage::Login`]; the server refuses versions it does not speak.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest text frame the server accepts; a bigger one closes the socket with code 1009.
/// An SDP offer for audio + video is 4–8 KB, so this leaves ample room.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// A session that sends nothing (not even [`ClientMessage::Ping`]) for this long is dropped.
pub const HEARTBEAT_TIMEOUT_SECS: u32 = 10;

/// How often the SDK sends [`ClientMessage::Ping`]; well inside [`HEARTBEAT_TIMEOUT_SECS`].
pub const PING_INTERVAL_SECS: u32 = 3;

/// How long the server keeps a resumable session whose socket dropped without a close frame
/// (its presence, its call membership, its pending invitations), unless configured otherwise.
pub const DEFAULT_RESUME_GRACE_SECS: u32 = 30;

/// How many of its latest messages the server keeps per session for replay on resume, and how
/// many of its latest frames the SDK keeps for re-sending. A gap larger than this cannot be
/// resumed: the SDK logs in again instead.
pub const RESUME_WINDOW: usize = 512;

/// The WebSocket close code with which the SDK abandons a socket it believes dead to open
/// another: the server treats it as a lost connection (the session waits for its resume), not
/// as a page that went away on purpose (1000, 1001, or no code: the session ends at once).
pub const RECONNECT_CLOSE_CODE: u16 = 4000;

/// Identifies one call (TRTC's `roomID`, a number there too).
pub type RoomId = u32;

/// Client-chosen number that ties a reply ([`ServerMessage::InviteSent`], [`ServerMessage::Joined`],
/// [`ServerMessage::Error`]) to the request that caused it.
pub type RequestId = u32;

/// Audio-only or audio + video. Apps see these as `CALL_TYPE.AUDIO_CALL` (1) / `VIDEO_CALL` (2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CallType {
    Audio,
    Video,
}

impl CallType {
    /// The number trtc-calling-js uses for this type.
    pub fn as_number(self) -> u8 {
        match self {
            CallType::Audio => 1,
            CallType::Video => 2,
        }
    }

    /// Parses trtc-calling-js's number (1 audio, 2 video); anything else is `None`.
    pub fn from_number(n: u8) -> Option<Self> {
        match n {
            1 => Some(CallType::Audio),
            2 => Some(CallType::Video),
            _ => None,
        }
    }
}

/// SDK → server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ClientMessage {
    /// First message on every connection; anything else before a successful login is refused
    /// with [`ErrorCode::NotLoggedIn`]. Answered by [`ServerMessage::LoginOk`] or an
    /// [`ServerMessage::Error`] (then the server closes the socket).
    Login {
        sdk_app_id: u64,
        user_id: String,
        /// TLSSigAPIv2 UserSig (see SPEC §7).
        user_sig: String,
        protocol_version: u32,
        /// Ask for a resumable session: [`LoginOk::resume`] then carries a token, and a socket
        /// that drops without a close frame keeps the session for the grace period.
        #[serde(default, skip_serializing_if = "is_false")]
        resumable: bool,
    },
    /// First message on a new connection instead of [`ClientMessage::Login`]: take over the
    /// session `token` names, whose socket dropped. `last_seq` is the `seq` of the last server
    /// message the SDK processed. Answered by [`ServerMessage::Resumed`] and the replay of every
    /// message after `last_seq`, in order; by [`ServerMessage::Kicked`] and a close when the
    /// session was kicked out by a login elsewhere (logging in again would kick that one); or
    /// by an [`ErrorCode::ResumeRefused`] error (the session ended: grace over, logged out, or
    /// what it missed is no longer kept, in which case it ends now), after which the same
    /// connection may log in.
    Resume {
        sdk_app_id: u64,
        user_id: String,
        token: String,
        last_seq: u64,
        protocol_version: u32,
    },
    /// Heartbeat; answered by [`ServerMessage::Pong`]. Any frame counts as a sign of life.
    Ping,
    /// Invite users. Without `room_id` this starts a new call with the sender as its first
    /// member; with the `room_id` of the call the sender is in, it invites more users into it.
    /// Answered by [`ServerMessage::InviteSent`]; each invitee's outcome arrives later.
    Invite {
        request_id: RequestId,
        user_ids: Vec<String>,
        call_type: CallType,
        /// `groupCall()` rather than `call()`: invitees see `isFromGroup: true`.
        #[serde(default)]
        is_group: bool,
        /// Opaque label from `groupCall({groupID})`, passed to invitees unchanged.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room_id: Option<RoomId>,
    },
    /// Answer an invitation addressed to the sender: join its call. Answered by
    /// [`ServerMessage::Joined`], or an error if the invitation has ended meanwhile.
    Accept {
        request_id: RequestId,
        invite_id: String,
    },
    /// Decline an invitation addressed to the sender. The inviter gets [`ServerMessage::Rejected`].
    Reject { invite_id: String },
    /// Leave the call (connected), or cancel one's own unanswered invitations (ringing as caller).
    Hangup { room_id: RoomId },
    /// WebRTC signaling for one other participant of the same call (a member, or an invitee of it).
    Relay {
        room_id: RoomId,
        to: String,
        signal: Signal,
    },
    /// Signaling with the server's SFU (see [`LoginOk::sfu`]) for the sender's peer connection
    /// to it in call `room_id`, of which the sender must be a member (accepted, or its
    /// inviter). The first `offer` of a new peer connection has `join`: it joins the call's
    /// SFU room, in place of any connection the member had there. A later one renegotiates
    /// that connection (its own tracks changed, an ICE restart), and is refused with
    /// [`ErrorCode::SfuRejoin`] when the SFU no longer has it. Either is answered by
    /// [`ServerMessage::Sfu`] with the SFU's `answer`. An `answer` answers the SFU's last
    /// offer, and is not acknowledged. Refused with [`ErrorCode::NoSfu`] when the server runs
    /// no SFU, [`ErrorCode::NotInCall`] when the sender is not a member of that call, and
    /// [`ErrorCode::InvalidParam`] for any other kind, an SDP that does not parse or that the
    /// SFU refuses, or an answer when no offer of the SFU is waiting.
    Sfu {
        room_id: RoomId,
        signal: Signal,
        /// The first offer of a new peer connection to the SFU (absent: false).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        join: bool,
    },
    /// How large the sender renders each participant of call `room_id` whose media it gets
    /// from the SFU, in device pixels: the SFU forwards it the smallest simulcast layer of each
    /// that fills its view (as far as its bandwidth allows). A view of 0×0 is not shown (the
    /// app has no view for that participant, or hides it): it gets the lowest layer. A
    /// participant left out is not limited by size. Each message replaces the last; it holds
    /// from before the sender joins the SFU through any rejoin of the same membership. Refused
    /// like [`ClientMessage::Sfu`] ([`ErrorCode::NoSfu`], [`ErrorCode::NotInCall`]), and with
    /// [`ErrorCode::InvalidParam`] beyond [`MAX_SFU_VIEWS`] views. Not acknowledged.
    SfuViews {
        room_id: RoomId,
        views: Vec<RenderedView>,
    },
    /// End the session cleanly: leave any call, then the server closes the socket.
    Logout,
    /// Any `type` this server version does not know; answered by [`ErrorCode::UnknownType`].
    #[serde(other)]
    Unknown,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Server → SDK.
///
/// Every variant with fields is a newtype over its payload struct, so the SDK can read the `type`
/// tag itself and hand the rest of the object to [`ServerMessage::from_tagged`] with any serde
/// deserializer (serde_json natively, serde-wasm-bindgen in the browser). That keeps serde's
/// buffering of internally tagged enums out of the SDK (the relayed [`Signal`] inside one avoids
/// it too), while the JSON stays the same as with struct variants.
///
/// In a resumable session every message after `loginOk` except `pong`, `resumed`,
/// `iceServers` and `goAway` carries a top-level
/// `"seq"` (1, 2, 3, … per session; see [`Sequenced`]), which the SDK echoes in
/// [`ClientMessage::Resume`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerMessage {
    /// The login succeeded. Pending invitations for this user follow as [`ServerMessage::Invited`].
    LoginOk(LoginOk),
    /// Reply to [`ClientMessage::Ping`].
    Pong,
    /// Reply to [`ClientMessage::Resume`]: the session is this connection's again. The replay of
    /// every message after the SDK's `last_seq` follows.
    Resumed(Resumed),
    /// A request was refused. `request_id` names it when it carried one.
    Error(ErrorReply),
    /// Reply to [`ClientMessage::Invite`]: the invitation exists and is ringing.
    InviteSent(InviteSent),
    /// To an invitee: somebody is calling. Also sent at login for invitations still ringing.
    Invited(Invited),
    /// Reply to [`ClientMessage::Accept`]: the sender is now a member of the call.
    Joined(Joined),
    /// To every other member: `user_id` accepted and joined. Members start media towards it.
    Accepted(Accepted),
    /// To the inviter: `user_id` declined.
    Rejected(Rejected),
    /// To the inviter: `user_id` is already ringing or in a call (they were not disturbed).
    Busy(Busy),
    /// To the inviter: these invitees did not answer within the ring timeout.
    NoResponse(NoResponse),
    /// To an invitee: the inviter withdrew the invitation (hung up, logged out or vanished).
    Cancelled(Cancelled),
    /// To an invitee: the ring timed out before an answer.
    InviteTimeout(InviteTimeout),
    /// To every member: the list of invitees still ringing changed.
    InviteeList(InviteeList),
    /// To every remaining member: `user_id` left the call (hung up, logged out, kicked or vanished).
    MemberLeft(MemberLeft),
    /// To the last remaining member: the call is over. `user_id` is whose action ended it.
    CallEnded(CallEnded),
    /// Signaling relayed from another participant of the call.
    Signal(RelayedSignal),
    /// From the server's SFU, for the recipient's peer connection to it in call `room_id`:
    /// the `answer` to its [`ClientMessage::Sfu`] offer, or an `offer` renegotiating what the
    /// SFU forwards to it (another member's tracks added or stopped), to be answered by a
    /// [`ClientMessage::Sfu`] `answer`. Sequenced and replayed on resume like every message of
    /// a resumable session: an offer missed while away would leave the SFU waiting for its
    /// answer, and its tracks unopened.
    Sfu(SfuSignal),
    /// The same user logged in elsewhere. This session has left its call and is closed next.
    Kicked,
    /// Fresh STUN/TURN servers for this session, replacing those of [`LoginOk::ice_servers`]
    /// (the whole list, not a change to it). Sent only when the operator configured TURN
    /// credentials, which expire: right after [`ServerMessage::Resumed`] on every resume, and
    /// before the current credentials expire (at three quarters of their lifetime). The SDK
    /// uses them for new peer connections and hands them to live ones. Never carries a `seq`:
    /// stale credentials are not worth replaying, a resume brings fresh ones.
    IceServers(IceServersUpdate),
    /// The server is draining (it is being stopped or restarted, as HTTP/2's GOAWAY): sent once
    /// to every logged-in socket when the drain begins. Everything keeps working on this socket
    /// for now, but the SDK should move: at a random moment within [`GoAway::within_ms`] (so a
    /// node's clients do not all reconnect in the same millisecond) it drops the socket as if
    /// lost (close code [`RECONNECT_CLOSE_CODE`]) and reconnects at once, resuming the session
    /// (or logging in again where it cannot be resumed). A draining server refuses new sockets
    /// (HTTP 503), so the SDK keeps a socket that carries a call or a ringing invitation until
    /// that ends, then moves. Never carries a `seq` and is never replayed by a resume: it is
    /// about the socket, not the session.
    GoAway(GoAway),
    /// Any `type` this SDK version does not know; ignored.
    #[serde(other)]
    Unknown,
}

impl ServerMessage {
    /// Decodes a server message whose `type` tag the caller has already read: `payload` is the
    /// whole message object (the `type` field in it is ignored) in any serde format.
    ///
    /// A tag this version does not know gives [`ServerMessage::Unknown`], never an error, so a
    /// newer server cannot break an older SDK's session. A known tag whose fields are missing or
    /// ill-typed is an error.
    pub fn from_tagged<'de, D: Deserializer<'de>>(
        tag: &str,
        payload: D,
    ) -> Result<ServerMessage, D::Error> {
        Ok(match tag {
            "loginOk" => ServerMessage::LoginOk(Deserialize::deserialize(payload)?),
            "pong" => ServerMessage::Pong,
            "resumed" => ServerMessage::Resumed(Deserialize::deserialize(payload)?),
            "error" => ServerMessage::Error(Deserialize::deserialize(payload)?),
            "inviteSent" => ServerMessage::InviteSent(Deserialize::deserialize(payload)?),
            "invited" => ServerMessage::Invited(Deserialize::deserialize(payload)?),
            "joined" => ServerMessage::Joined(Deserialize::deserialize(payload)?),
            "accepted" => ServerMessage::Accepted(Deserialize::deserialize(payload)?),
            "rejected" => ServerMessage::Rejected(Deserialize::deserialize(payload)?),
            "busy" => ServerMessage::Busy(Deserialize::deserialize(payload)?),
            "noResponse" => ServerMessage::NoResponse(Deserialize::deserialize(payload)?),
            "cancelled" => ServerMessage::Cancelled(Deserialize::deserialize(payload)?),
            "inviteTimeout" => ServerMessage::InviteTimeout(Deserialize::deserialize(payload)?),
            "inviteeList" => ServerMessage::InviteeList(Deserialize::deserialize(payload)?),
            "memberLeft" => ServerMessage::MemberLeft(Deserialize::deserialize(payload)?),
            "callEnded" => ServerMessage::CallEnded(Deserialize::deserialize(payload)?),
            "signal" => ServerMessage::Signal(Deserialize::deserialize(payload)?),
            "sfu" => ServerMessage::Sfu(Deserialize::deserialize(payload)?),
            "kicked" => ServerMessage::Kicked,
            "iceServers" => ServerMessage::IceServers(Deserialize::deserialize(payload)?),
            "goAway" => ServerMessage::GoAway(Deserialize::deserialize(payload)?),
            _ => ServerMessage::Unknown,
        })
    }
}

/// Payload of [`ServerMessage::LoginOk`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginOk {
    pub user_id: String,
    /// STUN/TURN servers the operator configured; the SDK uses them unless the app set its own.
    pub ice_servers: Vec<IceServer>,
    pub ring_timeout_secs: u32,
    pub heartbeat_timeout_secs: u32,
    /// Present when the login asked for a resumable session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<ResumeGrant>,
    /// The server runs an SFU: group calls may send their media through it
    /// ([`ClientMessage::Sfu`]) rather than as a mesh. Absent (false) otherwise.
    #[serde(default, skip_serializing_if = "is_false")]
    pub sfu: bool,
}

/// How to resume a session: part of [`LoginOk`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeGrant {
    /// Secret naming the session in [`ClientMessage::Resume`]; valid until the session ends.
    pub token: String,
    /// How long the session outlives a dropped socket.
    pub grace_secs: u32,
}

/// Payload of [`ServerMessage::Resumed`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resumed {
    /// How many frames of this session (after login, pings not counted) the server has
    /// processed: the SDK re-sends the ones after that, in order.
    pub received: u64,
}

/// Payload of [`ServerMessage::IceServers`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceServersUpdate {
    /// Every STUN/TURN server the session should use from now on, as in [`LoginOk`].
    pub ice_servers: Vec<IceServer>,
}

/// Payload of [`ServerMessage::GoAway`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoAway {
    /// The window, in milliseconds from receipt, within which the SDK picks its moment to move
    /// (uniformly at random). The server sizes it from its drain timeout.
    pub within_ms: u32,
    /// The session is held by the whole cluster, not by this node: the next socket resumes it
    /// with its call or ringing invitation, so those move too instead of keeping this socket
    /// until they are over. Absent (false) from a single server, whose sessions go with it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub session_shared: bool,
}

/// A server message with its sequence number, as a resumable session's socket carries it: the
/// message's own JSON object with `"seq"` added at the top level.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sequenced<'a> {
    pub seq: u64,
    #[serde(flatten)]
    pub message: &'a ServerMessage,
}

/// Payload of [`ServerMessage::Error`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorReply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestId>,
    pub code: ErrorCode,
    pub message: String,
}

/// Payload of [`ServerMessage::InviteSent`]. `user_ids` are the invitees actually invited
/// (duplicates, the sender, and users already in the call dropped).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteSent {
    pub request_id: RequestId,
    pub invite_id: String,
    pub room_id: RoomId,
    pub user_ids: Vec<String>,
}

/// Payload of [`ServerMessage::Invited`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invited {
    pub invite_id: String,
    pub room_id: RoomId,
    pub sponsor: String,
    /// Everyone this invitation rings (the receiver included).
    pub user_ids: Vec<String>,
    pub call_type: CallType,
    pub is_group: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
}

/// Payload of [`ServerMessage::Joined`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Joined {
    pub request_id: RequestId,
    pub room_id: RoomId,
    pub call_type: CallType,
    /// The other members already in the call; they will each connect media to the newcomer.
    pub members: Vec<String>,
    /// Invitees of this call still ringing.
    pub pending: Vec<String>,
}

/// Payload of [`ServerMessage::Accepted`], [`ServerMessage::Rejected`] and [`ServerMessage::Busy`]:
/// what one invitee did. One struct for the three, so a decoder for it exists once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteeAnswer {
    pub room_id: RoomId,
    pub invite_id: String,
    pub user_id: String,
}

/// Payload of [`ServerMessage::Accepted`].
pub type Accepted = InviteeAnswer;
/// Payload of [`ServerMessage::Rejected`].
pub type Rejected = InviteeAnswer;
/// Payload of [`ServerMessage::Busy`].
pub type Busy = InviteeAnswer;

/// Payload of [`ServerMessage::NoResponse`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NoResponse {
    pub room_id: RoomId,
    pub invite_id: String,
    pub user_ids: Vec<String>,
}

/// Payload of [`ServerMessage::Cancelled`] and [`ServerMessage::InviteTimeout`]: an invitation
/// that stopped ringing, as its invitee hears it. One struct for both, like [`InviteeAnswer`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitationOver {
    pub room_id: RoomId,
    pub invite_id: String,
    pub sponsor: String,
}

/// Payload of [`ServerMessage::Cancelled`].
pub type Cancelled = InvitationOver;
/// Payload of [`ServerMessage::InviteTimeout`].
pub type InviteTimeout = InvitationOver;

/// Payload of [`ServerMessage::InviteeList`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteeList {
    pub room_id: RoomId,
    pub user_ids: Vec<String>,
}

/// Payload of [`ServerMessage::MemberLeft`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberLeft {
    pub room_id: RoomId,
    pub user_id: String,
}

/// Payload of [`ServerMessage::CallEnded`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallEnded {
    pub room_id: RoomId,
    pub user_id: String,
    /// Seconds since a second member first joined; 0 if the call never connected.
    pub duration_secs: u32,
    pub reason: EndReason,
}

/// Payload of [`ServerMessage::Signal`]. Its signal is read without serde's buffering of
/// internally tagged enums (see `by_kind.rs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayedSignal {
    pub room_id: RoomId,
    pub from: String,
    #[serde(deserialize_with = "by_kind::signal")]
    pub signal: Signal,
}

/// Payload of [`ServerMessage::Sfu`]. Its signal is read like a relayed one (see `by_kind.rs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SfuSignal {
    pub room_id: RoomId,
    #[serde(deserialize_with = "by_kind::signal")]
    pub signal: Signal,
}

/// The most views one [`ClientMessage::SfuViews`] may list: more than a call has members.
pub const MAX_SFU_VIEWS: usize = 64;

/// One participant's view at the sender of a [`ClientMessage::SfuViews`], in device pixels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderedView {
    pub user_id: String,
    pub width: u32,
    pub height: u32,
}

/// Why a call ended for the member left in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EndReason {
    /// The other member(s) hung up, logged out, were kicked or vanished.
    Hangup,
    /// The last unanswered invitee declined.
    Rejected,
    /// The last unanswered invitee was busy.
    Busy,
    /// The last unanswered invitees did not answer in time.
    NoResponse,
}

/// WebRTC signaling and call control passed between two participants, untouched by the server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Signal {
    /// An SDP offer (perfect negotiation: either side may send one).
    Offer { sdp: String },
    /// An SDP answer to the last offer.
    Answer { sdp: String },
    /// A trickled ICE candidate, with the browser's own field names.
    Candidate(IceCandidate),
    /// The sender's media state; sent on connect and on every change.
    Media { audio: bool, video: bool },
    /// 1:1 call-mode switch request; the receiver follows and answers with `switchModeAck`.
    SwitchMode { call_type: CallType },
    /// Answer to `switchMode`: `ok` false when the receiver could not follow.
    SwitchModeAck { call_type: CallType, ok: bool },
    /// Any kind this SDK version does not know; ignored.
    #[serde(other)]
    Unknown,
}

/// `RTCIceCandidateInit` as the browser produces it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default)]
    pub sdp_mid: Option<String>,
    #[serde(rename = "sdpMLineIndex", default)]
    pub sdp_m_line_index: Option<u16>,
}

/// `RTCIceServer` as the browser takes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Machine-readable reason in [`ServerMessage::Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorCode {
    /// Not JSON, or a known type with missing or ill-typed fields.
    Malformed,
    /// A `type` this server does not know.
    UnknownType,
    /// Something other than login before a successful login.
    NotLoggedIn,
    /// A second login on a connection that is already logged in.
    AlreadyLoggedIn,
    /// The client speaks a protocol version this server does not.
    UnsupportedVersion,
    /// The SDKAppID is not configured on this server.
    UnknownApp,
    /// userID empty, too long, or not made of letters, digits, `-` and `_`.
    InvalidUserId,
    /// The UserSig does not decode, is for another app or user, or its signature is wrong.
    InvalidUserSig,
    /// The UserSig was valid but its lifetime has passed.
    ExpiredUserSig,
    /// The request's parameters are unusable (empty invitee list, too many invitees, …).
    InvalidParam,
    /// The sender is already ringing or in another call.
    Busy,
    /// The room is not one the sender is in.
    NotInCall,
    /// The invitation does not exist, has ended, or is not addressed to the sender.
    NoSuchInvitation,
    /// Relay to someone who is not a participant of the sender's call.
    NotAParticipant,
    /// Too many messages too fast; this one was dropped.
    RateLimited,
    /// A resume whose session is gone (grace expired, kicked, logged out), whose token or user
    /// does not match, or whose gap is older than [`RESUME_WINDOW`]: log in instead.
    ResumeRefused,
    /// A cluster node cannot reach the cluster's shared registry right now: nothing was
    /// decided; try again shortly (or on another node).
    Unavailable,
    /// A [`ClientMessage::Sfu`] to a server that runs no SFU (see [`LoginOk::sfu`]): use the
    /// mesh.
    NoSfu,
    /// A renegotiating [`ClientMessage::Sfu`] offer for a connection the SFU no longer has:
    /// it was removed (interrupted too long), or the node whose SFU served the call died and
    /// another serves it now. The member joins again with a new peer connection (`join`).
    SfuRejoin,
    /// Any `code` this SDK version does not know (read by name in `names.rs`).
    Other,
}
