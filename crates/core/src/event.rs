//! The events an app receives (SPEC §4), with their exact names and payload shapes.
//!
//! Payloads serialize (serde) to exactly the objects trtc-calling-js hands to listeners, so the
//! glue only converts them to JS values and calls the listeners registered for [`AppEvent::name`].

use serde::Serialize;

/// One event for the app. It serializes (untagged) to exactly the payload object listeners get.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AppEvent {
    SdkReady {
        #[serde(rename = "userID")]
        user_id: String,
    },
    Invited {
        sponsor: String,
        #[serde(rename = "userIDList")]
        user_id_list: Vec<String>,
        #[serde(rename = "isFromGroup")]
        is_from_group: bool,
        #[serde(rename = "inviteData")]
        invite_data: InviteData,
        #[serde(rename = "inviteID")]
        invite_id: String,
    },
    UserAccept {
        #[serde(rename = "userID")]
        user_id: String,
    },
    Reject {
        #[serde(rename = "userID")]
        user_id: String,
    },
    LineBusy {
        #[serde(rename = "userID")]
        user_id: String,
        sponsor: String,
    },
    NoResp {
        #[serde(rename = "userID")]
        user_id: String,
        sponsor: String,
        #[serde(rename = "userIDList")]
        user_id_list: Vec<String>,
    },
    CallingCancel {
        #[serde(rename = "inviteID")]
        invite_id: String,
        sponsor: String,
    },
    CallingTimeout {
        #[serde(rename = "inviteID")]
        invite_id: String,
        sponsor: String,
    },
    UserEnter {
        #[serde(rename = "userID")]
        user_id: String,
    },
    UserLeave {
        #[serde(rename = "userID")]
        user_id: String,
    },
    CallEnd {
        #[serde(rename = "userID")]
        user_id: String,
        /// Seconds the call was connected (0 if never).
        #[serde(rename = "callEnd")]
        call_end: u32,
    },
    UserVideoAvailable {
        #[serde(rename = "userID")]
        user_id: String,
        #[serde(rename = "isVideoAvailable")]
        is_video_available: bool,
    },
    UserAudioAvailable {
        #[serde(rename = "userID")]
        user_id: String,
        #[serde(rename = "isAudioAvailable")]
        is_audio_available: bool,
    },
    UserVoiceVolume {
        #[serde(rename = "volumeMap")]
        volume_map: Vec<VoiceVolume>,
    },
    GroupCallInviteeListUpdate {
        #[serde(rename = "userIDList")]
        user_id_list: Vec<String>,
    },
    KickedOut {},
    /// Extension: the 1:1 call switched mode (after `switchToAudioCall`/`switchToVideoCall`,
    /// on both sides). `callType` is 1 audio, 2 video.
    CallTypeChanged {
        #[serde(rename = "callType")]
        call_type: u8,
    },
    /// Extension: the device in use went away and another of the same kind replaced it.
    DeviceChanged {
        /// `'audio'` or `'video'`.
        #[serde(rename = "deviceType")]
        device_type: String,
        #[serde(rename = "deviceId")]
        device_id: String,
        label: String,
        /// Why it changed: `'deviceLost'`.
        reason: String,
    },
    /// Extension: the signaling connection was lost and the SDK is trying to get it back
    /// (`attempt` 1, 2, …, one event per attempt). The call, the ringing, the peers and the
    /// local media all stay meanwhile; app methods keep working and their messages go out once
    /// the connection is back. Not emitted for a planned move (the server is going away and
    /// said so) unless the move fails: no socket could be had, or the session had to be
    /// logged in again.
    Reconnecting {
        attempt: u32,
    },
    /// Extension: the signaling connection is back. `resumed: true`: the session went on as if
    /// nothing happened (messages missed meanwhile were delivered). `resumed: false`: the
    /// server had ended the session, so the SDK logged in again; a call or an outgoing ring in
    /// progress ended (its `CALL_END` came first); an invitation still ringing here keeps
    /// ringing.
    Reconnected {
        resumed: bool,
    },
    /// Extension: the media connection to this participant, once up, stopped (the network
    /// dropped); ICE restarts are under way. Once per interruption.
    PeerMediaInterrupted {
        #[serde(rename = "userID")]
        user_id: String,
    },
    /// Extension: the media connection to this participant is back after
    /// `PEER_MEDIA_INTERRUPTED`. Once per interruption.
    PeerMediaRestored {
        #[serde(rename = "userID")]
        user_id: String,
    },
    Error {
        code: u32,
        msg: String,
    },
}

/// `inviteData` inside the `INVITED` payload.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InviteData {
    pub version: u32,
    #[serde(rename = "callType")]
    pub call_type: u8,
    #[serde(rename = "roomID")]
    pub room_id: u32,
    #[serde(rename = "callEnd")]
    pub call_end: u32,
}

/// One entry of `USER_VOICE_VOLUME`'s `volumeMap` (note trtc-calling-js's `userId` spelling).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VoiceVolume {
    #[serde(rename = "userId")]
    pub user_id: String,
    #[serde(rename = "audioVolume")]
    pub audio_volume: u8,
}

/// `TRTCCalling.EVENT`: (key, string value) for every event, in SPEC order.
/// `CALL_END` and `CALLING_END` share one string.
pub const EVENT_NAMES: &[(&str, &str)] = &[
    ("SDK_READY", "sdkReady"),
    ("INVITED", "onInvited"),
    ("USER_ACCEPT", "onUserAccept"),
    ("REJECT", "onReject"),
    ("LINE_BUSY", "onLineBusy"),
    ("NO_RESP", "onNoResp"),
    ("CALLING_CANCEL", "onCallingCancel"),
    ("CALLING_TIMEOUT", "onCallingTimeout"),
    ("USER_ENTER", "onUserEnter"),
    ("USER_LEAVE", "onUserLeave"),
    ("CALL_END", "onCallEnd"),
    ("CALLING_END", "onCallEnd"),
    ("USER_VIDEO_AVAILABLE", "onUserVideoAvailable"),
    ("USER_AUDIO_AVAILABLE", "onUserAudioAvailable"),
    ("USER_VOICE_VOLUME", "onUserVoiceVolume"),
    (
        "GROUP_CALL_INVITEE_LIST_UPDATE",
        "onGroupCallInviteeListUpdate",
    ),
    ("KICKED_OUT", "onKickedOut"),
    ("CALL_TYPE_CHANGED", "onCallTypeChanged"),
    // Extension: the device in use went away and another of the same kind replaced it.
    ("DEVICE_CHANGED", "onDeviceChanged"),
    // Extension: the signaling connection was lost; the SDK tries to get it back.
    ("RECONNECTING", "onReconnecting"),
    // Extension: the signaling connection is back (resumed, or logged in again).
    ("RECONNECTED", "onReconnected"),
    // Extension: a participant's media connection dropped, and came back.
    ("PEER_MEDIA_INTERRUPTED", "onPeerMediaInterrupted"),
    ("PEER_MEDIA_RESTORED", "onPeerMediaRestored"),
    ("ERROR", "onError"),
];

impl AppEvent {
    /// The event's string value in `TRTCCalling.EVENT` (what apps pass to `on`).
    pub fn name(&self) -> &'static str {
        match self {
            AppEvent::SdkReady { .. } => "sdkReady",
            AppEvent::Invited { .. } => "onInvited",
            AppEvent::UserAccept { .. } => "onUserAccept",
            AppEvent::Reject { .. } => "onReject",
            AppEvent::LineBusy { .. } => "onLineBusy",
            AppEvent::NoResp { .. } => "onNoResp",
            AppEvent::CallingCancel { .. } => "onCallingCancel",
            AppEvent::CallingTimeout { .. } => "onCallingTimeout",
            AppEvent::UserEnter { .. } => "onUserEnter",
            AppEvent::UserLeave { .. } => "onUserLeave",
            AppEvent::CallEnd { .. } => "onCallEnd",
            AppEvent::UserVideoAvailable { .. } => "onUserVideoAvailable",
            AppEvent::UserAudioAvailable { .. } => "onUserAudioAvailable",
            AppEvent::UserVoiceVolume { .. } => "onUserVoiceVolume",
            AppEvent::GroupCallInviteeListUpdate { .. } => "onGroupCallInviteeListUpdate",
            AppEvent::KickedOut {} => "onKickedOut",
            AppEvent::CallTypeChanged { .. } => "onCallTypeChanged",
            AppEvent::DeviceChanged { .. } => "onDeviceChanged",
            AppEvent::Reconnecting { .. } => "onReconnecting",
            AppEvent::Reconnected { .. } => "onReconnected",
            AppEvent::PeerMediaInterrupted { .. } => "onPeerMediaInterrupted",
            AppEvent::PeerMediaRestored { .. } => "onPeerMediaRestored",
            AppEvent::Error { .. } => "onError",
        }
    }
}
