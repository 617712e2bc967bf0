//! The embedded SFU's signalling (`--sfu-udp`): which member of which call has a participant
//! in the SFU, a member's `sfu` messages turned into calls on the SFU's handle, and the SFU's
//! own renegotiation offers carried to the member's session.
//!
//! The SFU runs in this process as its own task with its own UDP socket; this module only
//! signals with it. Who may join, and when a participant must leave, is the registry's: only a
//! member of a call joins its room, and after every registry decision that may have removed
//! members the hub calls [`SfuRooms::reconcile`], so whatever made a member leave (hangup, the
//! call's end, a kick, a logout, a session that ended after its grace) its participant leaves
//! too, while a session that only resumes keeps it.
//!
//! A member's `sfuViews` (how large it renders each other member) is kept here too, whether or
//! not it has joined the SFU yet: the SDK may send it before its join offer is handled, and
//! does not send it again when it joins anew (after its connection died), so each join of the
//! member applies the latest, until the member leaves the call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use calling_protocol::{ErrorCode, RenderedView, RoomId, ServerMessage, SfuSignal, Signal};
use calling_sfu::runtime::{SfuHandle, Signal as SfuEvent};
use calling_sfu::{ParticipantId, RenderedSize, SdpAnswer, SdpOffer, SfuError};
use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::cluster::SfuMember;
use crate::hub::Hub;
use crate::metrics::SfuMetrics;
use crate::registry::Refusal;

/// A member of a call, as the SFU's participants are keyed here.
type Member = (RoomId, String);

/// How large a member renders the others, by their user id (the stream id of their tracks).
type Views = HashMap<String, RenderedSize>;

/// What is kept of the members of calls, under one lock.
#[derive(Default)]
struct Members {
    /// The SFU's participants, one per member of a call that joined it.
    participants: HashMap<Member, ParticipantId>,
    /// The latest `sfuViews` of each member that sent one, joined or not.
    views: HashMap<Member, Views>,
    /// Each member's signalling with the SFU, in order: the SFU's answer to the member's offer
    /// is queued before any offer the SFU makes after it. Its offers are carried by their own
    /// task, and an offer that overtook the answer reached an SDK still waiting for that answer,
    /// which as the impolite side ignored it; the SFU then waited for an answer that never
    /// came, and the member received nobody.
    in_order: HashMap<Member, Arc<tokio::sync::Mutex<()>>>,
}

/// The SFU's participants and what their members asked of it.
pub struct SfuRooms {
    handle: SfuHandle,
    members: Mutex<Members>,
    /// Makes each participant id unique, so that a late `leave` of an earlier membership of the
    /// same member can never remove a later one.
    joins: AtomicU64,
    metrics: Option<SfuMetrics>,
}

fn refusal(code: ErrorCode, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

/// What the SFU refused, as the member's error: its SDP (or its state) is what was wrong.
fn refused(err: SfuError) -> Refusal {
    match err {
        SfuError::Stopped => refusal(ErrorCode::Unavailable, "the SFU has stopped"),
        SfuError::NoPendingOffer(_) => refusal(
            ErrorCode::InvalidParam,
            "no offer of the SFU is waiting for an answer",
        ),
        other => refusal(ErrorCode::InvalidParam, format!("the SFU refused: {other}")),
    }
}

/// A renegotiating offer for a connection the SFU does not have.
fn rejoin() -> Refusal {
    refusal(
        ErrorCode::SfuRejoin,
        "the SFU no longer has this connection: join with a new one",
    )
}

fn parse_offer(sdp: &str) -> Result<SdpOffer, Refusal> {
    SdpOffer::from_sdp_string(sdp)
        .map_err(|e| refusal(ErrorCode::InvalidParam, format!("unusable SDP offer: {e}")))
}

impl SfuRooms {
    pub fn new(handle: SfuHandle, metrics: Option<SfuMetrics>) -> Arc<SfuRooms> {
        Arc::new(SfuRooms {
            handle,
            members: Mutex::new(Members::default()),
            joins: AtomicU64::new(1),
            metrics,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Members> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn participant(&self, member: &Member) -> Option<ParticipantId> {
        self.lock().participants.get(member).cloned()
    }

    /// What keeps `member`'s signalling with the SFU in order (see [`Members::in_order`]).
    fn order_of(&self, member: &Member) -> Arc<tokio::sync::Mutex<()>> {
        self.lock()
            .in_order
            .entry(member.clone())
            .or_default()
            .clone()
    }

    /// One `sfu` message of a member of its call (checked by the hub), `join` if it is the
    /// first offer of a new connection. The SFU's answer to an offer is queued to the member's
    /// session here.
    pub async fn signal(
        self: &Arc<Self>,
        hub: Weak<Hub>,
        from: SfuMember,
        signal: Signal,
        join: bool,
    ) -> Result<(), Refusal> {
        let result = self.apply(hub, from, signal, join).await;
        if result.is_err() {
            self.refused();
        }
        result
    }

    /// Counts an `sfu` message refused.
    pub fn refused(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.refusals.inc();
        }
    }

    async fn apply(
        self: &Arc<Self>,
        hub: Weak<Hub>,
        from: SfuMember,
        signal: Signal,
        join: bool,
    ) -> Result<(), Refusal> {
        let member = (from.room, from.user.clone());
        match signal {
            Signal::Offer { sdp } => {
                let offer = parse_offer(&sdp)?;
                let order = self.order_of(&member);
                let _in_order = order.lock().await;
                let room_id = member.0;
                let answer = match (self.participant(&member), join) {
                    // A new connection of the member: any earlier one goes.
                    (earlier, true) => {
                        if let Some(id) = earlier {
                            self.forget(&member, &id);
                            self.leave(id);
                        }
                        self.join(hub.clone(), from.clone(), offer).await?
                    }
                    (Some(id), false) => match self.handle.offer(id.clone(), offer).await {
                        Ok(answer) => answer,
                        // Its connection died just now, before its forwarding task forgot it.
                        Err(SfuError::UnknownParticipant(_)) => {
                            self.forget(&member, &id);
                            return Err(rejoin());
                        }
                        Err(err) => return Err(refused(err)),
                    },
                    // Its connection was removed, or was to another node's SFU, which died: a
                    // browser's simulcast packets no longer say their layer once the first SFU
                    // acknowledged them, so only a new connection can join.
                    (None, false) => return Err(rejoin()),
                };
                let reply = ServerMessage::Sfu(SfuSignal {
                    room_id,
                    signal: Signal::Answer {
                        sdp: answer.to_sdp_string(),
                    },
                });
                if let Some(hub) = hub.upgrade() {
                    hub.sfu_reply(&from, reply).await;
                }
                Ok(())
            }
            Signal::Answer { sdp } => {
                let id = self.participant(&member).ok_or_else(|| {
                    refusal(
                        ErrorCode::InvalidParam,
                        "no offer of the SFU is waiting for an answer: join with an offer first",
                    )
                })?;
                let answer = SdpAnswer::from_sdp_string(&sdp).map_err(|e| {
                    refusal(ErrorCode::InvalidParam, format!("unusable SDP answer: {e}"))
                })?;
                self.handle.answer(id, answer).await.map_err(refused)?;
                Ok(())
            }
            Signal::Candidate(candidate) => {
                // A socket's messages are handled in order: its offer has joined by now.
                let id = self.participant(&member).ok_or_else(|| {
                    refusal(
                        ErrorCode::InvalidParam,
                        "a candidate before joining the SFU: join with an offer first",
                    )
                })?;
                self.handle
                    .add_candidate(id, candidate.candidate)
                    .await
                    .map_err(refused)?;
                Ok(())
            }
            _ => Err(refusal(
                ErrorCode::InvalidParam,
                "an sfu signal is an offer, an answer or a candidate",
            )),
        }
    }

    async fn join(
        self: &Arc<Self>,
        hub: Weak<Hub>,
        from: SfuMember,
        offer: SdpOffer,
    ) -> Result<SdpAnswer, Refusal> {
        let member = (from.room, from.user.clone());
        let (room, user) = &member;
        let n = self.joins.fetch_add(1, Ordering::Relaxed);
        let id = ParticipantId(format!("{room}/{user}/{n}"));
        let sfu_room = calling_sfu::RoomId(room.to_string());
        let (answer, events) = self
            .handle
            .join(sfu_room, id.clone(), user.clone(), offer)
            .await
            .map_err(refused)?;
        let views = {
            let mut members = self.lock();
            if members.participants.contains_key(&member) {
                // Another join of the same member won the race: this one is undone.
                drop(members);
                self.leave(id);
                return Err(refusal(
                    ErrorCode::InvalidParam,
                    "already joined the SFU in this call",
                ));
            }
            members.participants.insert(member.clone(), id.clone());
            self.count(members.participants.len());
            members.views.get(&member).cloned()
        };
        // Views sent before this join (or before an earlier participant of the member died).
        if let Some(views) = views {
            if let Err(err) = self.handle.set_rendered_sizes(id.clone(), views).await {
                debug!(participant = %id, %err, "rendered sizes at join");
            }
        }
        if let Some(metrics) = &self.metrics {
            metrics.joins.inc();
        }
        info!(room, user, participant = %id, "joined the SFU");
        tokio::spawn(self.clone().forward(hub.clone(), from, id, events));
        // The member may have left while the SFU was answering: if so, leave now.
        if let Some(hub) = hub.upgrade() {
            hub.reconcile_sfu();
        }
        Ok(answer)
    }

    /// Carries the SFU's offers to the member's session until the participant is gone.
    async fn forward(
        self: Arc<Self>,
        hub: Weak<Hub>,
        to: SfuMember,
        id: ParticipantId,
        mut events: mpsc::Receiver<SfuEvent>,
    ) {
        let member = (to.room, to.user.clone());
        while let Some(SfuEvent::Offer(offer)) = events.recv().await {
            let order = self.order_of(&member);
            let _in_order = order.lock().await;
            let Some(hub) = hub.upgrade() else { return };
            let message = ServerMessage::Sfu(SfuSignal {
                room_id: to.room,
                signal: Signal::Offer {
                    sdp: offer.to_sdp_string(),
                },
            });
            hub.sfu_reply(&to, message).await;
        }
        // Its connection died, or the SFU removed it (a member that took no offers), or it
        // left: the member's next offer joins again.
        self.forget(&member, &id);
    }

    /// Forgets the participant `id` of `member`, unless a later join replaced it.
    fn forget(&self, member: &Member, id: &ParticipantId) {
        let mut members = self.lock();
        if members.participants.get(member) == Some(id) {
            members.participants.remove(member);
            self.count(members.participants.len());
            debug!(participant = %id, "gone from the SFU");
        }
    }

    /// The `sfuViews` of `user`, a member of call `room` (checked by the hub): kept for each
    /// join of the member, and applied now if it has joined.
    pub async fn set_views(
        &self,
        room: RoomId,
        user: String,
        views: Vec<RenderedView>,
    ) -> Result<(), Refusal> {
        // A user listed twice: the last size counts, as in a map built from the list.
        let views: Views = views
            .into_iter()
            .map(|v| (v.user_id, RenderedSize::new(v.width, v.height)))
            .collect();
        let member = (room, user);
        let id = {
            let mut members = self.lock();
            members.views.insert(member.clone(), views.clone());
            members.participants.get(&member).cloned()
        };
        debug!(room, user = member.1, views = views.len(), "rendered sizes");
        let Some(id) = id else { return Ok(()) };
        match self.handle.set_rendered_sizes(id, views).await {
            // Its connection died just now: its next join applies the views kept.
            Ok(()) | Err(SfuError::UnknownParticipant(_)) => Ok(()),
            Err(err) => Err(refused(err)),
        }
    }

    /// The calls whose members this SFU holds anything of.
    pub fn rooms(&self) -> Vec<RoomId> {
        let members = self.lock();
        let rooms: std::collections::BTreeSet<RoomId> = members
            .participants
            .keys()
            .chain(members.views.keys())
            .chain(members.in_order.keys())
            .map(|(room, _)| *room)
            .collect();
        rooms.into_iter().collect()
    }

    /// Every participant whose member `is_member` no longer counts as one leaves the SFU, and
    /// what such members asked of it is forgotten.
    pub fn reconcile(&self, is_member: impl Fn(RoomId, &str) -> bool) {
        let mut members = self.lock();
        members
            .views
            .retain(|(room, user), _| is_member(*room, user));
        members
            .in_order
            .retain(|(room, user), _| is_member(*room, user));
        let gone: Vec<Member> = members
            .participants
            .keys()
            .filter(|(room, user)| !is_member(*room, user))
            .cloned()
            .collect();
        if gone.is_empty() {
            return;
        }
        for member in gone {
            if let Some(id) = members.participants.remove(&member) {
                info!(room = member.0, user = member.1, participant = %id, "left the SFU");
                self.leave(id);
            }
        }
        self.count(members.participants.len());
    }

    fn leave(&self, id: ParticipantId) {
        let handle = self.handle.clone();
        tokio::spawn(async move {
            // Unknown: its connection died meanwhile, which removed it already.
            if let Err(err) = handle.leave(id.clone()).await {
                debug!(participant = %id, %err, "leave");
            }
        });
    }

    fn count(&self, participants: usize) {
        if let Some(metrics) = &self.metrics {
            metrics
                .participants
                .set(i64::try_from(participants).unwrap_or(i64::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(user: &str, width: u32, height: u32) -> RenderedView {
        RenderedView {
            user_id: user.into(),
            width,
            height,
        }
    }

    fn kept(rooms: &SfuRooms, room: RoomId, user: &str) -> Option<Views> {
        rooms.lock().views.get(&(room, user.to_string())).cloned()
    }

    #[tokio::test]
    async fn views_are_kept_for_the_membership_and_forgotten_when_it_ends() {
        let addr = "127.0.0.1:0".parse().expect("an address");
        let (handle, _task) = calling_sfu::runtime::spawn(addr)
            .await
            .expect("an SFU on loopback");
        let rooms = SfuRooms::new(handle, None);
        rooms
            .set_views(7, "bob".into(), vec![view("ann", 640, 360)])
            .await
            .expect("kept before bob joins the SFU");
        rooms
            .set_views(
                7,
                "cat".into(),
                vec![view("ann", 320, 180), view("ann", 0, 0)],
            )
            .await
            .expect("kept");
        assert_eq!(
            kept(&rooms, 7, "cat"),
            Some(HashMap::from([("ann".into(), RenderedSize::new(0, 0))])),
            "a user listed twice: the last"
        );
        rooms
            .set_views(7, "bob".into(), vec![view("cat", 320, 180)])
            .await
            .expect("kept");
        assert_eq!(
            kept(&rooms, 7, "bob"),
            Some(HashMap::from([("cat".into(), RenderedSize::new(320, 180))])),
            "each replaces the last"
        );

        rooms.reconcile(|_, user| user != "cat");
        assert!(kept(&rooms, 7, "cat").is_none(), "cat left the call");
        assert!(kept(&rooms, 7, "bob").is_some(), "bob is still a member");
    }
}
