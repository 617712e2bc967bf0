//! Where room ids and invitation ids come from.
//!
//! The registry never draws random numbers itself: the server gives it unguessable ids, and
//! tests give it a deterministic sequence so that every run sees the same rooms and invitations.

use calling_protocol::RoomId;

/// Makes the ids the registry hands out.
pub trait IdSource: Send {
    /// A candidate room id in `1..=RoomId::MAX`; the registry draws again while one is in use.
    fn room_id(&mut self) -> RoomId;
    /// A fresh invitation id. Answers to an invitation name it, so in production it must be
    /// unguessable (nobody can answer an invitation not meant for them).
    fn invite_id(&mut self) -> String;
}

/// Ids counted up from 1: rooms `1, 2, 3, …`, invitations `"invite-1"`, `"invite-2"`, ….
/// Deterministic, for tests and tools; never for a server facing real users.
#[derive(Debug, Default, Clone)]
pub struct SequentialIds {
    rooms: RoomId,
    invites: u64,
}

impl IdSource for SequentialIds {
    fn room_id(&mut self) -> RoomId {
        // Wraps within 1..=MAX, so the registry's redraw loop always finds a free room.
        self.rooms = self.rooms.checked_add(1).unwrap_or(1);
        self.rooms
    }

    fn invite_id(&mut self) -> String {
        self.invites += 1;
        format!("invite-{}", self.invites)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_ids_count_up_from_one() {
        let mut ids = SequentialIds::default();
        assert_eq!((ids.room_id(), ids.room_id()), (1, 2));
        assert_eq!(ids.invite_id(), "invite-1");
        assert_eq!(ids.invite_id(), "invite-2");
    }

    #[test]
    fn sequential_room_ids_wrap_past_the_largest() {
        let mut ids = SequentialIds {
            rooms: RoomId::MAX - 1,
            invites: 0,
        };
        assert_eq!(ids.room_id(), RoomId::MAX);
        assert_eq!(ids.room_id(), 1);
    }
}
