//! The hub's side of the embedded SFU (`--sfu-udp`): an `sfu` message is checked against the
//! registry (only a member of the call signals with its SFU room) under the hub's lock, then
//! handed to [`SfuRooms`]; the SFU's offers are delivered to the member's session whichever
//! link holds it; and after registry decisions the SFU's participants follow the members.

use std::sync::Arc;

use calling_protocol::{ErrorCode, RoomId, ServerMessage, SfuSignal, Signal};
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

    /// Queues a message for a session, through whichever link owns it now (the SFU's offers,
    /// which outlive the link the member joined through).
    pub fn deliver_to_session(&self, session: SessionId, msg: &ServerMessage) {
        self.lock().push_message(session, msg);
    }

    /// The SFU's participants whose member left its call leave the SFU.
    pub fn reconcile_sfu(&self) {
        self.lock().reconcile_sfu();
    }

    /// One `sfu` message of a session: a member of call `room` signals with the SFU. The
    /// frame counts as received for a resume; the SFU's answer to an offer is sent back.
    pub async fn sfu(
        self: &Arc<Self>,
        owner: Owner,
        room: RoomId,
        signal: Signal,
    ) -> Result<(), Refusal> {
        let (sfu, user) = {
            let mut state = self.lock();
            if !state.owns(owner) {
                return Ok(());
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
            (sfu.clone(), user.to_owned())
        };
        let answer = sfu
            .signal(Arc::downgrade(self), owner.session, room, user, signal)
            .await?;
        if let Some(signal) = answer {
            let reply = ServerMessage::Sfu(SfuSignal {
                room_id: room,
                signal,
            });
            self.send(owner, reply);
        }
        Ok(())
    }
}
