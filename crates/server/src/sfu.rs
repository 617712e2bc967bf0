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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use calling_protocol::{ErrorCode, RoomId, ServerMessage, SfuSignal, Signal};
use calling_sfu::runtime::{SfuHandle, Signal as SfuEvent};
use calling_sfu::{ParticipantId, SdpAnswer, SdpOffer, SfuError};
use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::hub::Hub;
use crate::metrics::SfuMetrics;
use crate::registry::{Refusal, SessionId};

/// A member of a call, as the SFU's participants are keyed here.
type Member = (RoomId, String);

/// The SFU's participants, one per member of a call that joined it.
pub struct SfuRooms {
    handle: SfuHandle,
    participants: Mutex<HashMap<Member, ParticipantId>>,
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

fn parse_offer(sdp: &str) -> Result<SdpOffer, Refusal> {
    SdpOffer::from_sdp_string(sdp)
        .map_err(|e| refusal(ErrorCode::InvalidParam, format!("unusable SDP offer: {e}")))
}

impl SfuRooms {
    pub fn new(handle: SfuHandle, metrics: Option<SfuMetrics>) -> Arc<SfuRooms> {
        Arc::new(SfuRooms {
            handle,
            participants: Mutex::new(HashMap::new()),
            joins: AtomicU64::new(1),
            metrics,
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Member, ParticipantId>> {
        self.participants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn participant(&self, member: &Member) -> Option<ParticipantId> {
        self.lock().get(member).cloned()
    }

    /// One `sfu` message of `user`, a member of call `room` (checked by the hub) whose session
    /// is `session`. Returns the SFU's answer to an offer.
    pub async fn signal(
        self: &Arc<Self>,
        hub: Weak<Hub>,
        session: SessionId,
        room: RoomId,
        user: String,
        signal: Signal,
    ) -> Result<Option<Signal>, Refusal> {
        let result = self.apply(hub, session, (room, user), signal).await;
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
        session: SessionId,
        member: Member,
        signal: Signal,
    ) -> Result<Option<Signal>, Refusal> {
        match signal {
            Signal::Offer { sdp } => {
                let offer = parse_offer(&sdp)?;
                let answer = match self.participant(&member) {
                    Some(id) => match self.handle.offer(id.clone(), offer).await {
                        Ok(answer) => answer,
                        // Its connection died just now, before its forwarding task forgot it:
                        // an offer after that joins again, as the SDK's ICE restart would.
                        Err(SfuError::UnknownParticipant(_)) => {
                            self.forget(&member, &id);
                            self.join(hub, session, member, parse_offer(&sdp)?).await?
                        }
                        Err(err) => return Err(refused(err)),
                    },
                    None => self.join(hub, session, member, offer).await?,
                };
                Ok(Some(Signal::Answer {
                    sdp: answer.to_sdp_string(),
                }))
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
                Ok(None)
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
                Ok(None)
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
        session: SessionId,
        member: Member,
        offer: SdpOffer,
    ) -> Result<SdpAnswer, Refusal> {
        let (room, user) = &member;
        let n = self.joins.fetch_add(1, Ordering::Relaxed);
        let id = ParticipantId(format!("{room}/{user}/{n}"));
        let sfu_room = calling_sfu::RoomId(room.to_string());
        let (answer, events) = self
            .handle
            .join(sfu_room, id.clone(), user.clone(), offer)
            .await
            .map_err(refused)?;
        {
            let mut participants = self.lock();
            if participants.contains_key(&member) {
                // Another join of the same member won the race: this one is undone.
                drop(participants);
                self.leave(id);
                return Err(refusal(
                    ErrorCode::InvalidParam,
                    "already joined the SFU in this call",
                ));
            }
            participants.insert(member.clone(), id.clone());
            self.count(participants.len());
        }
        if let Some(metrics) = &self.metrics {
            metrics.joins.inc();
        }
        info!(room, user, participant = %id, "joined the SFU");
        tokio::spawn(
            self.clone()
                .forward(hub.clone(), session, member, id, events),
        );
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
        session: SessionId,
        member: Member,
        id: ParticipantId,
        mut events: mpsc::Receiver<SfuEvent>,
    ) {
        while let Some(SfuEvent::Offer(offer)) = events.recv().await {
            let Some(hub) = hub.upgrade() else { return };
            let message = ServerMessage::Sfu(SfuSignal {
                room_id: member.0,
                signal: Signal::Offer {
                    sdp: offer.to_sdp_string(),
                },
            });
            hub.deliver_to_session(session, &message);
        }
        // Its connection died, or the SFU removed it (a member that took no offers), or it
        // left: the member's next offer joins again.
        self.forget(&member, &id);
    }

    /// Forgets the participant `id` of `member`, unless a later join replaced it.
    fn forget(&self, member: &Member, id: &ParticipantId) {
        let mut participants = self.lock();
        if participants.get(member) == Some(id) {
            participants.remove(member);
            self.count(participants.len());
            debug!(participant = %id, "gone from the SFU");
        }
    }

    /// Every participant whose member `is_member` no longer counts as one leaves the SFU.
    pub fn reconcile(&self, is_member: impl Fn(RoomId, &str) -> bool) {
        let mut participants = self.lock();
        let gone: Vec<Member> = participants
            .keys()
            .filter(|(room, user)| !is_member(*room, user))
            .cloned()
            .collect();
        if gone.is_empty() {
            return;
        }
        for member in gone {
            if let Some(id) = participants.remove(&member) {
                info!(room = member.0, user = member.1, participant = %id, "left the SFU");
                self.leave(id);
            }
        }
        self.count(participants.len());
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
