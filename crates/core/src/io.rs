//! What goes into the state machine ([`Input`]) and what comes out ([`Effect`]).
//!
//! The glue turns everything that happens in the browser into an [`Input`], calls
//! [`crate::Call::handle`], and carries out the returned [`Effect`]s in order. The core never
//! touches IO or a clock, so every flow can be replayed natively in tests.

use calling_protocol::{CallType, ClientMessage, IceCandidate, ServerMessage};
use serde::Serialize;

use crate::event::AppEvent;

/// Glue-chosen number identifying one pending JS promise of an app method call.
pub type RequestId = u32;

/// An app method call that changes call state (SPEC §3). Arguments are already validated for
/// type by the glue (a userID is a string, a type is 1 or 2); the core checks meaning and state.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Sent once the glue has opened the signaling socket.
    Login {
        sdk_app_id: u64,
        user_id: String,
        user_sig: String,
    },
    Logout,
    Call {
        user_id: String,
        call_type: CallType,
    },
    GroupCall {
        user_ids: Vec<String>,
        call_type: CallType,
        group_id: Option<String>,
    },
    Accept,
    Reject,
    Hangup,
    SetMicMute(bool),
    OpenCamera,
    CloseCamera,
    SwitchToAudio,
    SwitchToVideo,
}

/// Everything the core reacts to.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// An app method call; its promise settles through [`Effect::Resolve`] / [`Effect::Reject`]
    /// (possibly later, e.g. `call` resolves when the server confirms the invitation).
    /// If `handle` returns `Err` for it, the glue rejects the promise with that error.
    Command {
        request: RequestId,
        command: Command,
    },
    /// A message from the server.
    Server(ServerMessage),
    /// The signaling socket closed or failed without the core asking for it.
    SignalingClosed,
    /// Result of [`Effect::OpenMedia`].
    Media(MediaOutcome),
    /// Something happened on the peer connection to `user_id`.
    Peer { user_id: String, event: PeerEvent },
    /// A timer started with [`Effect::StartTimer`] fired.
    Timer(Timer),
}

/// Result of [`Effect::OpenMedia`].
#[derive(Clone, Debug, PartialEq)]
pub enum MediaOutcome {
    /// The local tracks now live (what was asked for, and anything already open).
    Opened { audio: bool, video: bool },
    /// getUserMedia failed, mapped to a SPEC §5 code (60003/60004/60005, or 60007 when the
    /// page is not a secure context and nothing may be published).
    Failed(SdkError),
}

/// Events of one `RTCPeerConnection`, reported by the glue.
#[derive(Clone, Debug, PartialEq)]
pub enum PeerEvent {
    /// createOffer/createAnswer + setLocalDescription finished; this is the local description.
    LocalDescription(SessionDescription),
    /// A local ICE candidate was gathered (`onicecandidate` with a candidate).
    LocalCandidate(IceCandidate),
    /// setRemoteDescription (and, for an offer, the answer's setLocalDescription) finished.
    RemoteDescriptionApplied,
    /// The browser asks for (re)negotiation (`onnegotiationneeded`).
    NegotiationNeeded,
    /// The user's media really arrives: a remote track unmuted on its first RTP packet (drives
    /// `USER_ENTER`). Not the `track` event, which fires at negotiation, long before any media
    /// when the connection was made while ringing.
    RemoteMedia,
    /// The connection's `connectionState` changed.
    ConnectionState(PeerState),
    /// An SDP or ICE operation failed; the message is the browser's.
    Failed(String),
}

/// `RTCPeerConnectionState`, as far as the core cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerState {
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

/// One SDP, with its type.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionDescription {
    pub kind: SdpKind,
    pub sdp: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdpKind {
    Offer,
    Answer,
}

/// The timers the core asks for. Ring timeouts are the server's, never the client's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Send a ping to the server (every `PING_INTERVAL_SECS`).
    Heartbeat,
}

/// Instructions for the glue, carried out in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Send this message on the signaling socket.
    Send(ClientMessage),
    /// Call the app's listeners for this event.
    Emit(AppEvent),
    /// Resolve the promise of `request` with this value.
    Resolve {
        request: RequestId,
        reply: Reply,
    },
    /// Reject the promise of `request` with this error.
    Reject {
        request: RequestId,
        error: SdkError,
    },
    /// Make sure these local tracks exist (capture the missing ones with the configured quality
    /// and devices), attach them to every peer connection marked by [`Effect::AttachMedia`],
    /// then report [`Input::Media`]. Peers not marked so never get a local track.
    OpenMedia {
        audio: bool,
        video: bool,
    },
    /// Stop and detach these local tracks (and remove the local view when video stops).
    CloseMedia {
        audio: bool,
        video: bool,
    },
    /// Enable (`false`) or disable (`true`) the microphone track without stopping it.
    MuteAudio(bool),
    /// Create the `RTCPeerConnection` to `user_id`, with no local track on it. `initiator`: this
    /// side will send the first offer, so it adds the audio and video transceivers itself; the
    /// other side gets them from that offer. `polite`: the perfect-negotiation role (the polite
    /// side yields on glare). Peers are created while an invitation rings, so the connection is
    /// up by the time it is accepted; nothing is sent on it before [`Effect::AttachMedia`].
    CreatePeer {
        user_id: String,
        initiator: bool,
        polite: bool,
    },
    /// From now on send the local tracks to `user_id`: put the ones that exist on that peer's
    /// senders now (`replaceTrack`, no renegotiation) and any opened later as they open. Comes
    /// once per peer, when the call is accepted between the two sides.
    AttachMedia {
        user_id: String,
    },
    /// Close that peer connection and remove every element the SDK created for that user.
    ClosePeer {
        user_id: String,
    },
    /// createOffer + setLocalDescription on that peer; report [`PeerEvent::LocalDescription`].
    CreateOffer {
        user_id: String,
    },
    /// setRemoteDescription on that peer; for an offer also createAnswer + setLocalDescription.
    /// Report [`PeerEvent::RemoteDescriptionApplied`] then (offer) [`PeerEvent::LocalDescription`].
    ApplyRemoteDescription {
        user_id: String,
        description: SessionDescription,
    },
    /// addIceCandidate on that peer (the core only sends these after the remote description).
    AddIceCandidate {
        user_id: String,
        candidate: IceCandidate,
    },
    StartTimer {
        timer: Timer,
        after_ms: u32,
    },
    CancelTimer(Timer),
    /// Close the signaling socket (after logout or kick-out).
    Disconnect,
}

/// The value a method's promise resolves with; serializes to exactly the object trtc-calling-js
/// returns. [`Reply::Undefined`] resolves `undefined` (the glue checks for it).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    /// `login`: `{code: 0, data: {userID}}`.
    Login { code: i32, data: LoginData },
    /// `call`: `{code: 0, inviteID, roomID, userID}`.
    Call {
        code: i32,
        #[serde(rename = "inviteID")]
        invite_id: String,
        #[serde(rename = "roomID")]
        room_id: u32,
        #[serde(rename = "userID")]
        user_id: String,
    },
    /// `groupCall`: `{code: 0, inviteID, roomID, groupID}`.
    GroupCall {
        code: i32,
        #[serde(rename = "inviteID")]
        invite_id: String,
        #[serde(rename = "roomID")]
        room_id: u32,
        /// Left out when absent, so it reads `undefined` in JS as the option did.
        #[serde(rename = "groupID", skip_serializing_if = "Option::is_none")]
        group_id: Option<String>,
    },
    /// `accept`: `{code: 0, roomID, callType}`.
    Accept {
        code: i32,
        #[serde(rename = "roomID")]
        room_id: u32,
        #[serde(rename = "callType")]
        call_type: u8,
    },
    /// `hangup` while idle: `{code: 0, msg: 'ok'}`.
    OkMsg { code: i32, msg: String },
    /// Most methods: `{code: 0}`.
    Ok { code: i32 },
    /// `accept`/`reject` with nothing pending.
    Undefined,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoginData {
    #[serde(rename = "userID")]
    pub user_id: String,
}

/// An error as the app sees it: a JS `Error` with this message and, when set, a numeric `code`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdkError {
    pub code: Option<u32>,
    pub message: String,
}

/// Numeric codes of SPEC §5.
pub mod code {
    pub const SWITCH_TO_AUDIO_FAILED: u32 = 60001;
    pub const SWITCH_TO_VIDEO_FAILED: u32 = 60002;
    pub const NO_MICROPHONE: u32 = 60003;
    pub const NO_CAMERA: u32 = 60004;
    pub const MEDIA_DENIED: u32 = 60005;
    pub const NO_WEBRTC: u32 = 60006;
    pub const INSECURE_CONTEXT: u32 = 60007;
    /// Extension: the signaling connection dropped while logged in; any call was left locally.
    pub const SIGNALING_LOST: u32 = 60008;
    /// Extension: a peer connection failed (ICE failure or an SDP operation the browser refused).
    pub const PEER_CONNECTION_FAILED: u32 = 60009;
    pub const INVALID_PARAM: u32 = 65535;
}
