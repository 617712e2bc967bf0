//! The call state machine.

use calling_protocol::CallType;

use crate::io::{Effect, Input, SdkError};

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

/// Why a command was refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    NotLoggedIn,
    AlreadyLoggedIn,
    /// A method called in a state where it makes no sense (the message says which and why).
    WrongState(String),
    InvalidParam(String),
}

impl From<CallError> for SdkError {
    fn from(err: CallError) -> Self {
        todo!("{err:?}")
    }
}

/// One SDK instance's call state: the logged-in session and at most one call.
#[derive(Debug, Default)]
pub struct Call {}

impl Call {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reacts to one input at `now_ms` (milliseconds on any monotonic clock).
    pub fn handle(&mut self, now_ms: u64, input: Input) -> Result<Vec<Effect>, CallError> {
        todo!("{now_ms} {input:?}")
    }

    pub fn status(&self) -> CallStatus {
        todo!()
    }
    /// `getCallType()`: the current call's type (None when idle).
    pub fn call_type(&self) -> Option<CallType> {
        todo!()
    }
    pub fn is_inviter(&self) -> bool {
        todo!()
    }
    pub fn is_group_call(&self) -> bool {
        todo!()
    }
    /// `getInviteeList()`: invitees of the current call still ringing.
    pub fn invitee_list(&self) -> Vec<String> {
        todo!()
    }
    /// `getUserID()`: the logged-in user (None before login).
    pub fn user_id(&self) -> Option<&str> {
        todo!()
    }
    /// The current call's room (None when idle).
    pub fn room_id(&self) -> Option<u32> {
        todo!()
    }
}
