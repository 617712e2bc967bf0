//! Registry unit tests: every flow driven through the pure methods, with explicit time.

mod invitation;
mod resume;
mod session;
mod view;

use super::*;
use calling_protocol::{
    Accepted, Busy, CallEnded, CallType, Cancelled, InviteSent, InviteTimeout, Invited,
    InviteeList, Joined, MemberLeft, NoResponse, Rejected, RelayedSignal,
};

const APP: u64 = 1_400_000_000;
const RING: Duration = Duration::from_secs(30);
const ALICE: SessionId = 1;
const BOB: SessionId = 2;
const CAROL: SessionId = 3;
const DAVE: SessionId = 4;

struct Fixture {
    reg: Registry,
    t0: Instant,
}

impl Fixture {
    /// alice, bob and carol online in APP.
    fn new() -> Self {
        let mut reg = Registry::new(RING, SequentialIds::default());
        let t0 = Instant::now();
        for (s, u) in [(ALICE, "alice"), (BOB, "bob"), (CAROL, "carol")] {
            assert_eq!(reg.login(s, APP, u, t0), Outcome::default());
        }
        Fixture { reg, t0 }
    }

    fn at(&self, secs: u64) -> Instant {
        self.t0 + Duration::from_secs(secs)
    }

    fn invite(&mut self, from: SessionId, to: &[&str], room: Option<RoomId>, secs: u64) -> Outcome {
        let req = InviteRequest {
            request_id: 7,
            user_ids: to.iter().map(|s| s.to_string()).collect(),
            call_type: CallType::Video,
            is_group: to.len() > 1,
            group_id: None,
            room_id: room,
        };
        let now = self.at(secs);
        self.reg.invite(from, req, now).unwrap()
    }

    /// alice calls bob; returns (room, invite id).
    fn ring_bob(&mut self) -> (RoomId, String) {
        let out = self.invite(ALICE, &["bob"], None, 0);
        sent(&out)
    }

    /// alice calls bob and bob accepts at t0+1s.
    fn connected(&mut self) -> (RoomId, String) {
        let (room, invite) = self.ring_bob();
        let now = self.at(1);
        self.reg.accept(BOB, 1, &invite, now).unwrap();
        (room, invite)
    }
}

/// The (room, invite id) of the `InviteSent` in an outcome.
fn sent(out: &Outcome) -> (RoomId, String) {
    out.deliveries
        .iter()
        .find_map(|(_, m)| match m {
            ServerMessage::InviteSent(InviteSent {
                room_id, invite_id, ..
            }) => Some((*room_id, invite_id.clone())),
            _ => None,
        })
        .expect("no InviteSent")
}

fn to(out: &Outcome, session: SessionId) -> Vec<ServerMessage> {
    out.deliveries
        .iter()
        .filter(|(s, _)| *s == session)
        .map(|(_, m)| m.clone())
        .collect()
}

fn list(room: RoomId, users: &[&str]) -> ServerMessage {
    ServerMessage::InviteeList(InviteeList {
        room_id: room,
        user_ids: users.iter().map(|s| s.to_string()).collect(),
    })
}

fn ended(room: RoomId, by: &str, secs: u32, reason: EndReason) -> ServerMessage {
    ServerMessage::CallEnded(CallEnded {
        room_id: room,
        user_id: by.into(),
        duration_secs: secs,
        reason,
    })
}
