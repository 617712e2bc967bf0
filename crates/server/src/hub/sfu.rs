//! The hub's side of the embedded SFU (`--sfu-udp`): an `sfu` message is checked against the
//! registry (only a member of the call signals with its SFU room), then handed to
//! [`SfuRooms`], this node's or, in a cluster, the one of the node whose SFU serves the call
//! (see `cluster::sfu`); the SFU's answers and offers are delivered to the member's session
//! whichever link (or node) holds it; and the SFU's participants follow the members: after
//! each registry decision in a single process, and every [`FOLLOW_MEMBERS`] in a cluster.

use std::sync::{Arc, Weak};
use std::time::Duration;

use calling_protocol::{
    ErrorCode, ErrorReply, RenderedView, RoomId, ServerMessage, Signal, MAX_SFU_VIEWS,
};
use calling_sfu::runtime::SfuHandle;
use tokio::sync::mpsc;
use tracing::{debug, error};

use super::{Authority, Hub, Owner, State};
use crate::cluster::{Cluster, Op, SfuAsk, SfuMember, SfuRequest};
use crate::registry::Refusal;
use crate::sfu::SfuRooms;

/// How often a cluster node's SFU checks its members against the cluster's calls: a member
/// who left its call stops reaching the others within this.
const FOLLOW_MEMBERS: Duration = Duration::from_millis(500);

/// Where a member's SFU message goes.
enum Route {
    /// This node's SFU serves the call.
    Here(Arc<SfuRooms>),
    /// Node `.0`'s does (a cluster).
    Node(u64),
}

impl State {
    /// The SFU's participants whose member left its call leave the SFU.
    pub(super) fn reconcile_sfu(&self) {
        if let (Some(sfu), Authority::Local(registry)) = (&self.sfu, &self.authority) {
            sfu.reconcile(|room, user| registry.is_member(room, user));
        }
    }

    /// A member's message handed to this node's SFU by the cluster.
    pub(super) fn to_sfu(&self, request: SfuRequest) {
        match &self.sfu_inbox {
            Some(inbox) => {
                let _ = inbox.send(request);
            }
            None => error!(
                room = request.member.room,
                "a member's SFU message for a node that runs no SFU"
            ),
        }
    }
}

impl Hub {
    /// Runs group calls' media through the SFU behind `handle` (`--sfu-udp`). A cluster
    /// node's SFU also serves members of other nodes, and follows the cluster's calls.
    pub fn attach_sfu(self: &Arc<Self>, handle: SfuHandle) {
        let sfu = SfuRooms::new(handle, self.metrics.sfu());
        let mut state = self.lock();
        state.sfu = Some(sfu.clone());
        if let Some(cluster) = &self.cluster {
            let (inbox, requests) = mpsc::unbounded_channel();
            state.sfu_inbox = Some(inbox);
            let hub = Arc::downgrade(self);
            tokio::spawn(serve_other_nodes(hub.clone(), sfu.clone(), requests));
            tokio::spawn(follow_members(hub, sfu, cluster.clone()));
        }
    }

    /// Whether this server runs an SFU (said in `loginOk`).
    pub fn runs_sfu(&self) -> bool {
        self.lock().sfu.is_some()
    }

    /// Queues a message of the SFU for a member's session, through whichever link (or node)
    /// holds it now: the SFU's answers and offers outlive the link the member signalled on.
    pub async fn sfu_reply(&self, to: &SfuMember, message: ServerMessage) {
        let Some(cluster) = &self.cluster else {
            self.lock().push_message(to.session, &message);
            return;
        };
        let op = Op::SfuMessage {
            member: to.clone(),
            message,
        };
        if let Err(refusal) = cluster.decide(op).await {
            // The SDK's connection to the SFU then waits, and restarts as any.
            error!(
                room = to.room,
                user = to.user,
                message = refusal.message,
                "an SFU message was not delivered"
            );
        }
    }

    /// The SFU's participants whose member left its call leave the SFU.
    pub fn reconcile_sfu(&self) {
        self.lock().reconcile_sfu();
    }

    /// One `sfu` message of a session: a member of call `room` signals with the SFU (`join`: the
    /// first offer of a new connection). The
    /// frame counts as received for a resume; the SFU's answer to an offer is queued to the
    /// session, in order with the SFU's own offers (see `SfuRooms::signal`).
    pub async fn sfu(
        self: &Arc<Self>,
        owner: Owner,
        room: RoomId,
        signal: Signal,
        join: bool,
    ) -> Result<(), Refusal> {
        self.to_sfu_of_call(owner, room, SfuAsk::Signal { signal, join })
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
        if views.len() > MAX_SFU_VIEWS {
            if let Some(sfu) = &self.lock().sfu {
                sfu.refused();
            }
            return Err(Refusal {
                code: ErrorCode::InvalidParam,
                message: format!("at most {MAX_SFU_VIEWS} views, not {}", views.len()),
            });
        }
        self.to_sfu_of_call(owner, room, SfuAsk::Views { views })
            .await
    }

    /// Hands a member's message to the SFU serving its call, once checked; `Ok` without doing
    /// anything when the link no longer owns the session (the message is dropped).
    async fn to_sfu_of_call(
        self: &Arc<Self>,
        owner: Owner,
        room: RoomId,
        ask: SfuAsk,
    ) -> Result<(), Refusal> {
        let Some((member, route)) = self.sfu_route(owner, room).await? else {
            return Ok(());
        };
        match route {
            Route::Here(sfu) => apply(self, &sfu, member, ask).await,
            Route::Node(node) => {
                let cluster = self.cluster.as_ref().ok_or_else(no_sfu)?;
                cluster.to_sfu_owner(node, SfuRequest { member, ask }).await
            }
        }
    }

    /// For an SFU message of `owner` about call `room`: the member, and where its message
    /// goes; `None` when the link no longer owns the session. Counts the frame as received for
    /// a resume, refuses without an SFU or from a non-member.
    async fn sfu_route(
        &self,
        owner: Owner,
        room: RoomId,
    ) -> Result<Option<(SfuMember, Route)>, Refusal> {
        let (sfu, member) = {
            let mut state = self.lock();
            if !state.owns(owner) {
                return Ok(None);
            }
            if let Some(r) = state.resumable.get_mut(&owner.session) {
                r.journal.count_received();
            }
            let Some(sfu) = state.sfu.clone() else {
                return Err(no_sfu());
            };
            let Some((app, user)) = state.authority.user_of(owner.session) else {
                return Ok(None);
            };
            let member = SfuMember {
                room,
                app,
                user: user.to_owned(),
                session: owner.session,
            };
            // A single process checks membership here; a cluster in its shared registry, below.
            if let Authority::Local(registry) = &state.authority {
                if registry.member_of(owner.session, room).is_none() {
                    sfu.refused();
                    return Err(not_in_call(room));
                }
                return Ok(Some((member, Route::Here(sfu))));
            }
            (sfu, member)
        };
        let Some(cluster) = &self.cluster else {
            return Err(no_sfu());
        };
        cluster
            .decide(Op::SfuMember(member.clone()))
            .await
            .inspect_err(|_| sfu.refused())?;
        let node = cluster.sfu_owner(room).await?;
        let route = if node == cluster.node() {
            Route::Here(sfu)
        } else {
            Route::Node(node)
        };
        Ok(Some((member, route)))
    }
}

/// A member's message applied to this node's SFU.
async fn apply(
    hub: &Arc<Hub>,
    sfu: &Arc<SfuRooms>,
    member: SfuMember,
    ask: SfuAsk,
) -> Result<(), Refusal> {
    match ask {
        SfuAsk::Signal { signal, join } => {
            sfu.signal(Arc::downgrade(hub), member, signal, join).await
        }
        SfuAsk::Views { views } => {
            let result = sfu.set_views(member.room, member.user, views).await;
            if result.is_err() {
                sfu.refused();
            }
            result
        }
    }
}

/// Applies, in order, the messages other nodes hand to this node's SFU; a refusal is the
/// member's error, as on its own node.
async fn serve_other_nodes(
    hub: Weak<Hub>,
    sfu: Arc<SfuRooms>,
    mut requests: mpsc::UnboundedReceiver<SfuRequest>,
) {
    while let Some(SfuRequest { member, ask }) = requests.recv().await {
        let Some(hub) = hub.upgrade() else { return };
        if let Err(refusal) = apply(&hub, &sfu, member.clone(), ask).await {
            let error = ServerMessage::Error(ErrorReply {
                request_id: None,
                code: refusal.code,
                message: refusal.message,
            });
            hub.sfu_reply(&member, error).await;
        }
    }
}

/// Lets the participants of this node's SFU go once their member left its call, or the call
/// is no longer this node's to serve (it was taken for dead meanwhile).
async fn follow_members(hub: Weak<Hub>, sfu: Arc<SfuRooms>, cluster: Arc<Cluster>) {
    let mut tick = tokio::time::interval(FOLLOW_MEMBERS);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if hub.strong_count() == 0 {
            return;
        }
        let rooms = sfu.rooms();
        if rooms.is_empty() {
            continue;
        }
        match cluster.owned_calls(&rooms).await {
            Ok(owned) => sfu.reconcile(|room, user| owned.is_member(room, user)),
            Err(err) => debug!(%err, "cannot read the calls the SFU serves"),
        }
    }
}

fn no_sfu() -> Refusal {
    Refusal {
        code: ErrorCode::NoSfu,
        message: "this server runs no SFU: group calls use the mesh".into(),
    }
}

fn not_in_call(room: RoomId) -> Refusal {
    Refusal {
        code: ErrorCode::NotInCall,
        message: format!("you are not a member of call {room}"),
    }
}
