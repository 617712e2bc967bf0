//! What goes into the state machine: app commands, server messages and the results of
//! browser work the core asked for ([`Input`]).
//!
//! The glue turns everything that happens in the browser into an [`Input`], calls
//! [`crate::Session::handle`], and carries out the returned [`crate::Effect`]s in order. The core
//! never touches IO or a clock, so every flow can be replayed natively in tests.

use calling_protocol::{CallType, IceCandidate, RenderedView, ServerMessage};

use crate::effect::SdkError;

/// Glue-chosen number identifying one pending JS promise of an app method call.
pub type RequestId = u32;

/// Core-chosen number identifying one [`crate::Effect::OpenMedia`]; its outcome comes back with
/// it, so an outcome is matched to its own request even when a slow one (a permission prompt)
/// settles after a later request or after its call ended.
pub type MediaToken = u32;

/// The two kinds of local media.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Video,
}

impl MediaKind {
    /// `deviceType` in `DEVICE_CHANGED` and the track's `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        }
    }
}

/// What happened to the device of one kind of local media.
#[derive(Clone, Debug, PartialEq)]
pub enum DeviceChange {
    /// `switchDevice()` put a track from the chosen device in place of the live one.
    Switched,
    /// The device in use went away and the glue captured `device_id` instead.
    Replaced { device_id: String, label: String },
    /// The device in use went away and no other could be opened (`why`).
    Lost { why: String },
}

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
    /// An app method call; its promise settles through [`crate::Effect::Resolve`] / [`crate::Effect::Reject`]
    /// (possibly later, e.g. `call` resolves when the server confirms the invitation).
    /// If `handle` returns `Err` for it, the glue rejects the promise with that error.
    Command {
        request: RequestId,
        command: Command,
    },
    /// A message from the server without a `seq` (any message of a session that is not
    /// resumable, and `loginOk`, `pong`, `resumed` and the answers to a `resume`).
    Server(ServerMessage),
    /// A message of a resumable session, with the `seq` the server put beside its `type`. Each
    /// seq is processed once: a message replayed after a resume that was already processed is
    /// dropped, so no event reaches the app twice.
    Sequenced { seq: u64, message: ServerMessage },
    /// The signaling socket closed or failed without the core asking for it, or the socket
    /// asked for by [`crate::Effect::OpenSignaling`] could not be opened.
    SignalingClosed,
    /// The socket asked for by [`crate::Effect::OpenSignaling`] is open.
    SignalingOpened,
    /// The network is back (the window's `online` event) or the page became visible again:
    /// a reconnect waiting for its next attempt makes it now. Ignored otherwise.
    NetworkOnline,
    /// The network went away (the window's `offline` event): the socket may be dead without
    /// having closed, so a live one is probed; a reconnect keeps waiting.
    NetworkOffline,
    /// Result of the [`crate::Effect::OpenMedia`] that carried `token`.
    Media {
        token: MediaToken,
        outcome: MediaOutcome,
    },
    /// The device of one kind of local media changed under the call.
    Device {
        kind: MediaKind,
        change: DeviceChange,
    },
    /// Result of [`crate::Effect::ReadAudioLevels`]: our microphone's level and each remote
    /// user's, 0–100.
    AudioLevels {
        local: u8,
        remote: Vec<(String, u8)>,
    },
    /// Result of [`crate::Effect::MeasureViews`]: each remote view's rendered size; a user
    /// with no view is left out.
    RenderedViews(Vec<RenderedView>),
    /// Something happened on the peer connection to `user_id`.
    Peer { user_id: String, event: PeerEvent },
    /// A timer started with [`crate::Effect::StartTimer`] fired.
    Timer(Timer),
}

/// Result of [`crate::Effect::OpenMedia`].
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
    /// On the SFU connection ([`crate::SFU_LINK`]): this participant's media of this kind
    /// really arrives through it (its track from the SFU unmuted on its first packet), as
    /// [`PeerEvent::RemoteMedia`] on a connection of its own.
    ForwardedMedia { user_id: String, kind: MediaKind },
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
    /// Read the audio levels for `USER_VOICE_VOLUME` (every second while connected).
    VoiceVolume,
    /// Try again to get the lost signaling connection back (see `backoff`).
    Reconnect,
    /// The moment picked within a `goAway`'s window to move to a new socket (see `moving`).
    Move,
    /// A probe ping (sent when the network came back or the page became visible) had its
    /// time to be answered.
    Probe,
    /// The earliest deadline of a peer connection that is interrupted: an ICE restart due, or
    /// the moment its participant is given up. Armed only while some connection is interrupted.
    PeerHealth,
}
