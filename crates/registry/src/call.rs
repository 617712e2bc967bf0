//! One call: its members, the invitations still ringing, and the batches they came in.

use std::sync::Arc;
use std::time::Instant;

use calling_protocol::{CallType, Invited, RoomId, ServerMessage};

/// A user id, shared between the maps that mention it.
pub type UserId = Arc<str>;

/// Numbers the invitation batches of one call (one `Invite` message = one batch).
pub type BatchNo = u32;

/// Participants of a call, members and pending invitees together, including the first caller
/// (SPEC targets up to 9 people in a call).
pub const MAX_PARTICIPANTS: usize = 9;

/// Everything one `Invite` message created: shared by the invitees it rang.
#[derive(Debug)]
pub struct Batch {
    pub no: BatchNo,
    pub invite_id: Arc<str>,
    pub inviter: UserId,
    pub call_type: CallType,
    pub is_group: bool,
    pub group_id: Option<String>,
    /// Everyone this batch rang (busy invitees excluded), as shown in `Invited`.
    pub user_ids: Vec<UserId>,
    pub deadline: Instant,
}

/// An invitee still ringing.
#[derive(Debug, Clone)]
pub struct Pending {
    pub user: UserId,
    pub batch: BatchNo,
}

#[derive(Debug)]
pub struct Call {
    pub app: u64,
    pub room: RoomId,
    /// Joined users, in joining order.
    pub members: Vec<UserId>,
    pub pending: Vec<Pending>,
    /// Batches with at least one pending invitee.
    pub batches: Vec<Batch>,
    next_batch: BatchNo,
    /// When a second member first joined; the connected duration counts from here.
    pub connected_at: Option<Instant>,
}

impl Call {
    pub fn new(app: u64, room: RoomId, caller: UserId) -> Self {
        Call {
            app,
            room,
            members: vec![caller],
            pending: Vec::new(),
            batches: Vec::new(),
            next_batch: 0,
            connected_at: None,
        }
    }

    /// The number the last batch got (0 before the first).
    pub fn next_batch(&self) -> BatchNo {
        self.next_batch
    }

    /// Continues numbering after `no` (a call loaded from a store).
    pub fn set_next_batch_no(&mut self, no: BatchNo) {
        self.next_batch = no;
    }

    pub fn next_batch_no(&mut self) -> BatchNo {
        self.next_batch = self.next_batch.wrapping_add(1);
        self.next_batch
    }

    pub fn is_member(&self, user: &str) -> bool {
        self.members.iter().any(|m| &**m == user)
    }

    pub fn pending_of(&self, user: &str) -> Option<&Pending> {
        self.pending.iter().find(|p| &*p.user == user)
    }

    pub fn is_participant(&self, user: &str) -> bool {
        self.is_member(user) || self.pending_of(user).is_some()
    }

    pub fn participant_count(&self) -> usize {
        self.members.len() + self.pending.len()
    }

    pub fn batch(&self, no: BatchNo) -> Option<&Batch> {
        self.batches.iter().find(|b| b.no == no)
    }

    /// Removes `user`'s pending invitation.
    pub fn take_pending(&mut self, user: &str) -> Option<Pending> {
        let at = self.pending.iter().position(|p| &*p.user == user)?;
        Some(self.pending.remove(at))
    }

    /// Drops batch `no` once nobody of it is ringing any more; returns it so its deadline can
    /// be forgotten too.
    pub fn prune_batch(&mut self, no: BatchNo) -> Option<Batch> {
        if self.pending.iter().any(|p| p.batch == no) {
            return None;
        }
        let at = self.batches.iter().position(|b| b.no == no)?;
        Some(self.batches.remove(at))
    }

    pub fn pending_ids(&self) -> Vec<String> {
        self.pending.iter().map(|p| p.user.to_string()).collect()
    }

    pub fn members_except(&self, user: &str) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| &***m != user)
            .map(|m| m.to_string())
            .collect()
    }

    /// Whole seconds connected so far (0 if a second member never joined).
    pub fn duration_secs(&self, now: Instant) -> u32 {
        self.connected_at
            .map(|t| now.saturating_duration_since(t).as_secs())
            .map_or(0, |s| u32::try_from(s).unwrap_or(u32::MAX))
    }

    /// The `Invited` message of batch `no`, as its invitees see it.
    pub fn invited_message(&self, no: BatchNo) -> Option<ServerMessage> {
        let batch = self.batch(no)?;
        Some(ServerMessage::Invited(Invited {
            invite_id: batch.invite_id.to_string(),
            room_id: self.room,
            sponsor: batch.inviter.to_string(),
            user_ids: batch.user_ids.iter().map(|u| u.to_string()).collect(),
            call_type: batch.call_type,
            is_group: batch.is_group,
            group_id: batch.group_id.clone(),
        }))
    }
}
