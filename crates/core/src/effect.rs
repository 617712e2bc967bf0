//! What comes out of the state machine: [`Effect`]s the glue carries out in order, the values
//! promises resolve with ([`Reply`]) and the errors they reject with ([`SdkError`]).

use calling_protocol::{ClientMessage, IceCandidate, IceServer};
use serde::Serialize;

use crate::event::AppEvent;
#[cfg(doc)]
use crate::input::Input;
use crate::input::{MediaToken, RequestId, SessionDescription, Timer};

/// Instructions for the glue, carried out in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Send this message on the signaling socket.
    Send(ClientMessage),
    /// Session the app's listeners for this event.
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
    /// and devices), then report [`Input::Media`] with `token`. The core then sends them to the
    /// peers marked by [`Effect::AttachMedia`] ([`Effect::SendTracks`]); others never get one.
    OpenMedia {
        token: MediaToken,
        audio: bool,
        video: bool,
    },
    /// Put the local tracks live now on that peer's senders (`replaceTrack`, no renegotiation):
    /// new tracks opened or a device changed, and this peer was given our media.
    SendTracks {
        user_id: String,
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
        /// The server's STUN/TURN list from login (an app's `iceServers` option overrides it).
        ice_servers: Vec<IceServer>,
        /// Gather relay candidates only (`iceTransportPolicy: 'relay'`): the app asked for it,
        /// or this is a ringing callee's connection and a relay is at hand ([`crate::privacy`]).
        relay_only: bool,
    },
    /// The server's STUN/TURN list was renewed (fresh TURN credentials): every live peer uses it
    /// from now on (`setConfiguration`), unless the app's `iceServers` option overrides it.
    RenewIceServers {
        ice_servers: Vec<IceServer>,
    },
    /// From now on that peer may gather every kind of candidate (`setConfiguration` with
    /// `iceTransportPolicy: 'all'`); a [`Effect::RestartIce`] follows to gather them (with it,
    /// or as the link's next restart when it is interrupted).
    AllowAllCandidates {
        user_id: String,
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
    /// Close that participant's own peer connection, and play its media from the SFU
    /// connection in the same elements instead (a call that grew from 1:1 moved to the SFU,
    /// and all that participant sends arrives there).
    RetirePeer {
        user_id: String,
    },
    /// createOffer + setLocalDescription on that peer; report [`PeerEvent::LocalDescription`].
    CreateOffer {
        user_id: String,
    },
    /// setRemoteDescription on that peer; for an offer also createAnswer + setLocalDescription.
    /// Report [`PeerEvent::RemoteDescriptionApplied`] then (offer) [`PeerEvent::LocalDescription`].
    /// If the peer has been given our media ([`Effect::AttachMedia`]) by the time the
    /// description is applied, which may be after an `AttachMedia` issued meanwhile, the live
    /// local tracks go on the transceivers an offer creates.
    ApplyRemoteDescription {
        user_id: String,
        description: SessionDescription,
    },
    /// addIceCandidate on that peer (the core only sends these after the remote description).
    AddIceCandidate {
        user_id: String,
        candidate: IceCandidate,
    },
    /// `restartIce()` on that peer: its connection was interrupted. The browser then fires
    /// `negotiationneeded` ([`crate::PeerEvent::NegotiationNeeded`]) and the next offer carries
    /// new ICE credentials; it goes out like any other offer.
    RestartIce {
        user_id: String,
    },
    /// Ask that peer for a fresh key frame of its video now: our connection to it is back after
    /// an interruption, and our decoder shows nothing until one arrives. Left to itself, the
    /// browser asks only seconds later (it first waits for the frames lost meanwhile).
    RequestKeyFrame {
        user_id: String,
    },
    StartTimer {
        timer: Timer,
        after_ms: u32,
    },
    CancelTimer(Timer),
    /// Open a throwaway signaling socket, send these frames in order and close it (with a close
    /// frame) once they are written: `logout()` while the socket is lost resumes the session
    /// the server still holds and logs it out, so it ends now instead of when its resume grace
    /// does. Its outcome is never reported.
    Farewell(Vec<ClientMessage>),
    /// Close the signaling socket (after logout or kick-out, or drop it once it is lost). A
    /// deliberate close (with a close frame) ends the session on the server at once. Also stop
    /// opening a socket asked for by [`Effect::OpenSignaling`].
    Disconnect,
    /// The signaling socket was lost while the session may still be resumed: drop the old
    /// socket (it is dead; no close frame is needed) and open a new one to the same URL, then
    /// report [`Input::SignalingOpened`], or [`Input::SignalingClosed`] if it cannot be opened.
    /// The core sends `resume` (or `login`) on it itself.
    OpenSignaling,
    /// Read the audio level of our microphone and of every peer; report [`Input::AudioLevels`].
    ReadAudioLevels,
    /// Measure how large each remote view (`startRemoteView`'s element) is rendered, in device
    /// pixels; report [`Input::RenderedViews`](crate::Input::RenderedViews). Asked once a
    /// second in an SFU call, which forwards each participant at the size its view needs.
    MeasureViews,
    /// The call is over: remove every element the SDK made for it and forget the views asked
    /// for (`startLocalView`/`startRemoteView`).
    RemoveViews,
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
    /// Extension: the signaling connection was lost and could not be resumed (with a server
    /// that does not resume sessions, at once; otherwise after reconnecting gave up); any call
    /// was left locally and the SDK is logged out. Promises of a call that ended because its
    /// session could not be resumed reject with it too.
    pub const SIGNALING_LOST: u32 = 60008;
    /// Extension: a peer connection failed (an SDP operation the browser refused, a connection
    /// that never came up, or one interrupted and not restored by ICE restarts in time).
    pub const PEER_CONNECTION_FAILED: u32 = 60009;
    pub const INVALID_PARAM: u32 = 65535;
}
