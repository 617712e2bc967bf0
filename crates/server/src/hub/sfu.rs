//! The hub's side of the embedded SFU (`--sfu-udp`): an `sfu` message is checked against the
//! registry (only a member of the call signals with its SFU room) under the hub's lock, then
//! handed to [`SfuRooms`]; the SFU's offers are delivered to the member's session whichever
//! link holds it; and after registry decisions the SFU's participants follow the members.

use std::sync::Arc;

use calling_protocol::{ErrorCode, RenderedView, RoomId, ServerMessage, Signal, MAX_SFU_VIEWS};
use calling_sfu::runtime::SfuHandle;

use super::{Authority, Hub, Owner, State};
use crate::registry::{Refusal, SessionId};
use crate::sfu::SfuRooms;

impl State {
    /// The SFU's participants whose member left its call leave the SFU.
    pub(super) fn reconcile_sfu(&self) {
        if let (Some(sfu), Authority::Local(registry)) = (&self.sfu, &self.authority) {
            sfu.reconcile(|room, user| registry.is_member(room, user));
        }
    }
}

impl Hub {
    /// Runs group calls' media through the SFU behind `handle` (`--sfu-udp`); a single
    /// process only: a cluster refuses it at startup.
    pub fn attach_sfu(&self, handle: SfuHandle) {
        let sfu = SfuRooms::new(handle, self.metrics.sfu());
        self.lock().sfu = Some(sfu);
    }

    /// Whether this server runs an SFU (said in `loginOk`).
    pub fn runs_sfu(&self) -> bool {
        self.lock().sfu.is_some()
    }

    /// Queues a message for a session, through whichever link owns it now (the SFU's answers
    /// and offers, which outlive the link the member signalled on).
    pub fn deliver_to_session(&self, session: SessionId, msg: &ServerMessage) {
        self.lock().push_message(session, msg);
    }

    /// The SFU's participants whose member left its call leave the SFU.
    pub fn reconcile_sfu(&self) {
        self.lock().reconcile_sfu();
    }

    /// One `sfu` message of a session: a member of call `room` signals with the SFU. The
    /// frame counts as received for a resume; the SFU's answer to an offer is queued to the
    /// session, in order with the SFU's own offers (see `SfuRooms::signal`).
    pub async fn sfu(
        self: &Arc<Self>,
        owner: Owner,
        room: RoomId,
        signal: Signal,
    ) -> Result<(), Refusal> {
        let Some((sfu, user)) = self.sfu_member(owner, room)? else {
            return Ok(());
        };
        // The SFU's answer to an offer is queued to the session by `signal`, in order with the
        // SFU's own offers.
        sfu.signal(Arc::downgrade(self), owner.session, room, user, signal)
            .await
    }

    /// One `sfuViews` message of a session: how large a member of call `room` renders the
    /// others, kept for its SFU participant now and after any rejoin. Checked like `sfu`, and
    /// counted the same for a resume; not answered.
    pub async fn sfu_views(
        self: &Arc<Self>,
        owner: Owner,
        room: RoomId,
        views: Vec<RenderedView>,
    ) -> Result<(), Refusal> {
        let Some((sfu, user)) = self.sfu_member(owner, room)? else {
            return Ok(());
        };
        if views.len() > MAX_SFU_VIEWS {
            sfu.refused();
            return Err(Refusal {
                code: ErrorCode::InvalidParam,
                message: format!("at most {MAX_SFU_VIEWS} views, not {}", views.len()),
            });
        }
        let result = sfu.set_views(room, user, views).await;
        if result.is_err() {
            sfu.refused();
        }
        result
    }

    /// For an SFU message of `owner` about call `room`: the SFU and the member's user id, or
    /// `None` when the link no longer owns the session (the message is dropped). Counts the
    /// frame as received for a resume, refuses without an SFU or from a non-member.
    fn sfu_member(
        &self,
        owner: Owner,
        room: RoomId,
    ) -> Result<Option<(Arc<SfuRooms>, String)>, Refusal> {
        let mut state = self.lock();
        if !state.owns(owner) {
            return Ok(None);
        }
        if let Some(r) = state.resumable.get_mut(&owner.session) {
            r.journal.count_received();
        }
        let (Some(sfu), Authority::Local(registry)) = (&state.sfu, &state.authority) else {
            return Err(Refusal {
                code: ErrorCode::NoSfu,
                message: "this server runs no SFU: group calls use the mesh".into(),
            });
        };
        let Some(user) = registry.member_of(owner.session, room) else {
            sfu.refused();
            return Err(Refusal {
                code: ErrorCode::NotInCall,
                message: format!("you are not a member of call {room}"),
            });
        };
        Ok(Some((sfu.clone(), user.to_owned())))
    }
}
