//! One optimistic transaction: WATCH and read the entries an operation names ([`super::read`]),
//! run the registry on them, then MULTI / write what changed / append the deliveries to the
//! streams of the nodes holding their sessions / EXEC.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use calling_protocol::{ErrorCode, ErrorReply, RoomId, Sequenced, ServerMessage, RESUME_WINDOW};
use redis::aio::MultiplexedConnection;
use redis::{RedisResult, Value};

use super::read::{scope, Read, Scope, UserKey};
use super::records::{
    call_key, journal_bytes_key, journal_key, node_deliveries, node_reaped, node_sessions,
    session_member, session_member_user, user_key, CallRecord, UserRecord, AWAY, CALLS_COUNT,
    DEADLINES, DELIVERIES_CAP, JOURNAL_APPEND, REAPED_KEPT, RINGING_COUNT,
};
use super::{Cluster, Delivery, Op, Takeover};
use crate::hub::LinkId;
use crate::ids::RandomIds;
use crate::registry::view::PresenceView;
use crate::registry::{Gap, Outcome, Refusal, Registry, SessionId};

/// How one attempt ended.
pub(super) enum Attempt {
    /// Recorded, and its deliveries appended.
    Decided(Outcome),
    /// The registry refused the request (nothing was written).
    Refused(Refusal),
    /// A resume names the token of a session a login elsewhere replaced.
    Kicked,
    /// A resume took this session back (recorded, its adoption appended).
    Resumed(SessionId),
    /// Something read changed before EXEC: run the operation again.
    Conflict,
}

pub(super) async fn attempt(
    cluster: &Cluster,
    conn: &mut MultiplexedConnection,
    op: Op,
) -> RedisResult<Attempt> {
    let Scope {
        users,
        others,
        rooms,
    } = scope(&op);
    let mut read = Read::default();
    let whose_calls = users.clone();
    read.load(conn, users.into_iter().chain(others).collect(), rooms)
        .await?;
    let their_rooms = read.rooms_of_users(&whose_calls);
    read.load(conn, Vec::new(), their_rooms).await?;
    let participants = read.participants();
    read.load(conn, participants, Vec::new()).await?;

    let clock = &cluster.clock;
    let mut registry =
        Registry::new(cluster.ring_timeout, RandomIds).with_resume_grace(cluster.resume_grace);
    // Which node holds each session read (the login's own: this one), and the sessions no
    // node holds (reaped from a dead node, waiting for a resume).
    let mut nodes: HashMap<SessionId, u64> = HashMap::new();
    // Which socket of its node holds each session read (as recorded: records of older versions
    // do not say).
    let mut links: HashMap<SessionId, LinkId> = HashMap::new();
    let mut detached: HashSet<SessionId> = HashSet::new();
    for ((app, user), record) in &read.users {
        if let Some(record) = record {
            registry.insert_user(record.to_view(*app, user, clock));
            match (record.session, record.node) {
                (Some(session), Some(node)) => {
                    nodes.insert(session, node);
                    if let Some(link) = record.link {
                        links.insert(session, link);
                    }
                }
                (Some(session), None) => {
                    detached.insert(session);
                }
                _ => {}
            }
        }
    }
    for record in read.calls.values().flatten() {
        registry.insert_call(record.to_view(clock));
    }
    let now = Instant::now();
    let mut expired_member = None;
    let mut reaped = None;
    // The session taken from a dead node, for that node to close its socket should it come back.
    let mut lost_session = None;
    let mut away_member = None;
    let mut requester = None;
    // The session whose frame this is, counted as received for a resume.
    let mut received_by = None;
    let mut login = None;
    let mut adopt = None;
    let mut resume_refused = None;
    let decided = match op {
        Op::Request {
            session, request, ..
        } => {
            requester = Some((session, request.request_id()));
            received_by = Some(session);
            request.run(&mut registry, session, now)
        }
        Op::Login {
            session,
            app,
            user,
            token_hash,
        } => {
            nodes.insert(session, cluster.node);
            // A socket's first session has the socket's number.
            links.insert(session, session);
            login = Some((session, token_hash));
            Ok(registry.login(session, app, &user, now))
        }
        // A socket's end that this node learns of only after its session was resumed on another
        // socket (a client moving as a drain asks, this node slow to see the close; a resume
        // on this node racing the close of the socket it replaced): the session is the other
        // socket's now, and the late close is not its end.
        Op::Leave { session, link, .. } | Op::Suspend { session, link, .. }
            if nodes.get(&session) != Some(&cluster.node)
                || links.get(&session).is_some_and(|holder| *holder != link) =>
        {
            redis::cmd("UNWATCH").exec_async(conn).await?;
            return Ok(Attempt::Decided(Outcome::default()));
        }
        Op::Leave { session, .. } => Ok(registry.leave(session, now)),
        Op::Suspend { session, .. } => {
            registry.suspend(session, now);
            Ok(Outcome::default())
        }
        Op::Resume {
            app,
            user,
            token_hash,
            last_seq,
            link,
        } => {
            let record = read.users.get(&(app, user.to_string())).cloned().flatten();
            let taken = match resumable(record.as_ref(), &token_hash) {
                Ok(taken) => taken,
                Err(refused) => {
                    redis::cmd("UNWATCH").exec_async(conn).await?;
                    return Ok(refused);
                }
            };
            let (session, seq, received) = taken;
            let journal = journal_key(session);
            let (kept,): (Vec<String>,) = redis::pipe()
                .cmd("WATCH")
                .arg(&journal)
                .ignore()
                .cmd("LRANGE")
                .arg(&journal)
                .arg(0)
                .arg(-1)
                .query_async(conn)
                .await?;
            if let Ok(replay) = missed(kept, seq, last_seq) {
                detached.remove(&session);
                let old_node = nodes.insert(session, cluster.node);
                links.insert(session, link);
                adopt = Some((
                    old_node.filter(|n| *n != cluster.node),
                    Takeover {
                        session,
                        link,
                        app,
                        user: user.to_string(),
                        received,
                        replay,
                    },
                ));
                registry
                    .resume(session, app, &user)
                    .map(|()| Outcome::default())
            } else {
                // What it missed is lost: the session cannot go on consistently.
                resume_refused = Some(refusal("the messages since lastSeq are no longer kept"));
                Ok(registry.leave(session, now))
            }
        }
        Op::SfuMember(member) => {
            if registry.member_of(member.session, member.room).is_none() {
                redis::cmd("UNWATCH").exec_async(conn).await?;
                return Ok(Attempt::Refused(Refusal {
                    code: ErrorCode::NotInCall,
                    message: format!("you are not a member of call {}", member.room),
                }));
            }
            received_by = Some(member.session);
            Ok(Outcome::default())
        }
        // A session that ended or was replaced meanwhile gets nothing: its SDK's new session
        // joins the SFU anew.
        Op::SfuMessage { member, message } => {
            let session = registry
                .user_view(member.app, &member.user)
                .and_then(|view| view.session);
            if session != Some(member.session) {
                redis::cmd("UNWATCH").exec_async(conn).await?;
                return Ok(Attempt::Decided(Outcome::default()));
            }
            Ok(Outcome {
                deliveries: vec![(member.session, message)],
                ..Outcome::default()
            })
        }
        Op::SfuLost { room } => {
            let call = read.calls.get(&room).cloned().flatten();
            let registry = &registry;
            let sessions = call.iter().flat_map(|call| {
                let app = call.app;
                call.members.iter().filter_map(move |member| {
                    registry
                        .user_view(app, member)
                        .filter(|view| view.presence == PresenceView::Member(room))
                        .and_then(|view| view.session)
                })
            });
            let rejoin = ServerMessage::Error(ErrorReply {
                request_id: None,
                code: ErrorCode::SfuRejoin,
                message: "the SFU serving this call has gone: join again with a new connection"
                    .into(),
            });
            Ok(Outcome {
                deliveries: sessions.map(|s| (s, rejoin.clone())).collect(),
                ..Outcome::default()
            })
        }
        Op::ExpireAway { member, .. } => {
            away_member = Some(member);
            Ok(registry.expire(now))
        }
        Op::Expire { member, .. } => {
            expired_member = Some(member);
            Ok(registry.expire(now))
        }
        Op::Reap { app, user, node } => {
            reaped = Some((node, session_member(app, &user)));
            // Its session is still the dead node's: its socket was lost with the node. A
            // resumable one waits for its SDK to resume it elsewhere, held by no node
            // meanwhile (what it is sent is kept in its journal); any other leaves.
            let lost = read
                .users
                .get(&(app, user.to_string()))
                .cloned()
                .flatten()
                .filter(|record| record.node == Some(node));
            let lost = lost.and_then(|r| Some((r.session?, r.token_hash.is_some())));
            lost_session = lost.map(|(session, _)| (node, session));
            match lost {
                Some((session, true)) => {
                    registry.suspend(session, now);
                    detached.insert(session);
                    Ok(Outcome::default())
                }
                Some((session, false)) => Ok(registry.leave(session, now)),
                None => Ok(Outcome::default()),
            }
        }
    };
    let outcome = match (decided, requester) {
        (Ok(outcome), _) => outcome,
        // Answered through this node's stream, numbered like any message and after everything
        // decided before it: the message that made the request moot (a `cancelled`) reaches
        // the session first.
        (Err(refusal), Some((session, request_id))) => Outcome {
            deliveries: vec![(
                session,
                ServerMessage::Error(ErrorReply {
                    request_id,
                    code: refusal.code,
                    message: refusal.message,
                }),
            )],
            ..Outcome::default()
        },
        (Err(refusal), None) => {
            redis::cmd("UNWATCH").exec_async(conn).await?;
            return Ok(Attempt::Refused(refusal));
        }
    };
    // A new call's room id must not be one another node holds.
    let new_rooms: Vec<String> = registry
        .rooms()
        .into_iter()
        .filter(|room| !read.calls.contains_key(room))
        .map(call_key)
        .collect();
    if !new_rooms.is_empty() {
        let (taken,): (usize,) = redis::pipe()
            .cmd("WATCH")
            .arg(&new_rooms)
            .ignore()
            .cmd("EXISTS")
            .arg(&new_rooms)
            .query_async(conn)
            .await?;
        if taken > 0 {
            redis::cmd("UNWATCH").exec_async(conn).await?;
            return Ok(Attempt::Conflict);
        }
    }

    // No node holds a session reaped from a dead node until it is resumed.
    let node_of = |session: SessionId| {
        if detached.contains(&session) {
            return None;
        }
        Some(
            nodes
                .get(&session)
                .copied()
                .unwrap_or_else(|| Cluster::home_node(session)),
        )
    };
    let mut pipe = redis::pipe();
    pipe.atomic();
    // Users as they are now: everything read, and everyone the registry holds.
    let mut keys: BTreeSet<UserKey> = read.users.keys().cloned().collect();
    keys.extend(registry.user_keys());
    let mut users: BTreeMap<UserKey, Option<UserRecord>> = BTreeMap::new();
    for (app, user) in keys {
        let before = read.users.get(&(app, user.clone())).cloned().flatten();
        let after = registry.user_view(app, &user).map(|view| {
            let node = view.session.and_then(node_of);
            let mut record = UserRecord::from_view(&view, node, clock);
            record.link = record
                .node
                .and(view.session)
                .and_then(|session| links.get(&session).copied());
            let login = login.as_ref().map(|(session, hash)| (*session, hash));
            record.carry_over(before.as_ref(), login);
            record
        });
        users.insert((app, user), after);
    }
    let mut by_session: HashMap<SessionId, UserKey> = HashMap::new();
    for (key, record) in &users {
        if let Some(session) = record.as_ref().and_then(|r| r.session) {
            by_session.insert(session, key.clone());
        }
    }
    // A request counts as received by a resumable session.
    if let Some(session) = received_by {
        if let Some(record) = by_session
            .get(&session)
            .and_then(|key| users.get_mut(key))
            .and_then(Option::as_mut)
            .filter(|r| r.token_hash.is_some())
        {
            record.received += 1;
        }
    }
    // Deliveries, per node, in the registry's order: messages (numbered and journaled for a
    // resumable session), then closes, then ends.
    let mut per_node: BTreeMap<u64, Vec<Delivery>> = BTreeMap::new();
    let mut journal_script_loaded = false;
    for (session, message) in &outcome.deliveries {
        let resumable = by_session
            .get(session)
            .and_then(|key| users.get_mut(key))
            .and_then(Option::as_mut)
            .filter(|r| r.token_hash.is_some() && *message != ServerMessage::Pong);
        let text = match resumable {
            Some(record) => {
                record.seq += 1;
                let text = to_json(&Sequenced {
                    seq: record.seq,
                    message,
                });
                // Loaded in this EXEC rather than once: a Redis restarted or flushed since would
                // answer NOSCRIPT inside the EXEC, which still applies the rest (the seq taken,
                // the message delivered, but not kept for a resume).
                if !journal_script_loaded {
                    pipe.load_script(&JOURNAL_APPEND).ignore();
                    journal_script_loaded = true;
                }
                pipe.invoke_script(
                    JOURNAL_APPEND
                        .key(journal_key(*session))
                        .key(journal_bytes_key(*session))
                        .arg(&text)
                        .arg(RESUME_WINDOW)
                        .arg(cluster.journal_bytes),
                )
                .ignore();
                text
            }
            None => to_json(message),
        };
        if let Some(node) = node_of(*session) {
            per_node.entry(node).or_default().push(Delivery::Text {
                session: *session,
                text,
                relayed: matches!(message, ServerMessage::Signal(_)),
            });
        }
    }
    for (session, _) in &outcome.closes {
        if let Some(node) = node_of(*session) {
            per_node
                .entry(node)
                .or_default()
                .push(Delivery::Kicked { session: *session });
        }
    }
    for session in &outcome.ended {
        if let Some(node) = node_of(*session) {
            per_node
                .entry(node)
                .or_default()
                .push(Delivery::Ended { session: *session });
        }
    }
    let mut resumed = None;
    if let Some((old_node, takeover)) = adopt {
        resumed = Some(takeover.session);
        if let Some(old) = old_node {
            per_node.entry(old).or_default().push(Delivery::Replaced {
                session: takeover.session,
            });
        }
        per_node
            .entry(cluster.node)
            .or_default()
            .insert(0, Delivery::Adopt(takeover));
    }
    for (app, user) in users.keys() {
        let key = (*app, user.clone());
        let before = read.users.get(&key).cloned().flatten();
        let after = users.get(&key).cloned().flatten();
        if before == after {
            continue;
        }
        // The journal of a session that ended goes with it.
        if let Some(ended) = before.as_ref().and_then(|r| r.session) {
            if after.as_ref().and_then(|r| r.session) != Some(ended) {
                pipe.del(&[journal_key(ended), journal_bytes_key(ended)])
                    .ignore();
            }
        }
        // Which node's set of sessions names this user.
        let node_before = before.as_ref().and_then(|r| r.session.and(r.node));
        let node_after = after.as_ref().and_then(|r| r.session.and(r.node));
        let away_before = before.as_ref().and_then(|r| r.away_until_ms);
        let away_after = after.as_ref().and_then(|r| r.away_until_ms);
        if away_before != away_after {
            let member = session_member(*app, user);
            match away_after {
                Some(at) => pipe.zadd(AWAY, member, at).ignore(),
                None => pipe.zrem(AWAY, member).ignore(),
            };
        }
        if node_before != node_after {
            let member = session_member(*app, user);
            if let Some(node) = node_before {
                pipe.srem(node_sessions(node), &member).ignore();
            }
            if let Some(node) = node_after {
                pipe.sadd(node_sessions(node), &member).ignore();
            }
        }
        let key = user_key(*app, user);
        match after {
            Some(record) => pipe.set(key, to_json(&record)).ignore(),
            None => pipe.del(key).ignore(),
        };
    }
    // Calls and their ring deadlines.
    let mut deadlines_before: BTreeMap<String, u64> = BTreeMap::new();
    let mut deadlines_after: BTreeMap<String, u64> = BTreeMap::new();
    let mut rooms: BTreeSet<RoomId> = read.calls.keys().copied().collect();
    rooms.extend(registry.rooms());
    let (mut calls_delta, mut ringing_delta) = (0_i64, 0_i64);
    for room in rooms {
        let before = read.calls.get(&room).cloned().flatten();
        let after = registry
            .call_view(room)
            .map(|view| CallRecord::from_view(view, clock));
        let ringing = |call: &Option<CallRecord>| {
            call.as_ref()
                .map_or(0, |c| i64::try_from(c.pending.len()).unwrap_or(0))
        };
        calls_delta += i64::from(after.is_some()) - i64::from(before.is_some());
        ringing_delta += ringing(&after) - ringing(&before);
        deadlines_before.extend(before.iter().flat_map(CallRecord::deadlines));
        deadlines_after.extend(after.iter().flat_map(CallRecord::deadlines));
        if before == after {
            continue;
        }
        match after {
            Some(record) => pipe.set(call_key(room), to_json(&record)).ignore(),
            None => pipe.del(call_key(room)).ignore(),
        };
    }
    if calls_delta != 0 {
        pipe.incr(CALLS_COUNT, calls_delta).ignore();
    }
    if ringing_delta != 0 {
        pipe.incr(RINGING_COUNT, ringing_delta).ignore();
    }
    // A grace polled as over leaves the set even if the record no longer had it.
    if let Some(member) = away_member {
        let still_away = session_member_user(&member)
            .and_then(|(app, user)| registry.user_view(app, &user))
            .is_some_and(|view| view.away_until.is_some());
        if !still_away {
            pipe.zrem(AWAY, member).ignore();
        }
    }
    // The user reaped leaves the dead node's set even if the record said otherwise.
    if let Some((node, member)) = reaped {
        pipe.srem(node_sessions(node), member).ignore();
    }
    if let Some((node, session)) = lost_session {
        let key = node_reaped(node);
        pipe.sadd(&key, session).ignore();
        pipe.expire(&key, REAPED_KEPT.as_secs() as i64).ignore();
    }
    // The deadline being expired goes even if its call was already gone.
    if let Some(member) = expired_member {
        deadlines_before.entry(member).or_insert(0);
    }
    for member in deadlines_before.keys() {
        if !deadlines_after.contains_key(member) {
            pipe.zrem(DEADLINES, member).ignore();
        }
    }
    for (member, at) in &deadlines_after {
        if deadlines_before.get(member) != Some(at) {
            pipe.zadd(DEADLINES, member, *at).ignore();
        }
    }
    for (node, deliveries) in &per_node {
        append_deliveries(&mut pipe, *node, deliveries);
    }
    let executed: Value = pipe.query_async(conn).await?;
    if executed == Value::Nil {
        return Ok(Attempt::Conflict);
    }
    if lost_session.is_some() {
        cluster.count_reaped();
    }
    Ok(match (resume_refused, resumed) {
        (Some(refused), _) => refused,
        (None, Some(session)) => Attempt::Resumed(session),
        (None, None) => Attempt::Decided(outcome),
    })
}

/// Whether `user`'s record names a session resumable with this token hash: its (session,
/// seq, frames received), or how the resume is answered.
fn resumable(
    record: Option<&UserRecord>,
    token_hash: &str,
) -> Result<(SessionId, u64, u64), Attempt> {
    let Some(record) = record else {
        return Err(refusal("no session has this token"));
    };
    if record.kicked_token_hash.as_deref() == Some(token_hash) {
        return Err(Attempt::Kicked);
    }
    match record.session {
        Some(session) if record.token_hash.as_deref() == Some(token_hash) => {
            Ok((session, record.seq, record.received))
        }
        _ => Err(refusal("no session has this token")),
    }
}

/// What a resume after `last_seq` replays from `kept` (a journal's texts, oldest first, the
/// newest numbered `seq`), or why it cannot: the answers of the single process's
/// [`crate::registry::Journal::after`], whichever bound (count or bytes) trimmed the journal.
fn missed(kept: Vec<String>, seq: u64, last_seq: u64) -> Result<Vec<String>, Gap> {
    let oldest = (seq + 1).saturating_sub(kept.len() as u64);
    Gap::check(oldest, seq, last_seq)?;
    let from = usize::try_from(last_seq + 1 - oldest).unwrap_or(usize::MAX);
    Ok(kept.into_iter().skip(from).collect())
}

fn refusal(why: &str) -> Attempt {
    Attempt::Refused(Refusal {
        code: ErrorCode::ResumeRefused,
        message: format!("{why}: log in again"),
    })
}

/// Appends deliveries to `node`'s stream (see [`node_deliveries`]).
pub(super) fn append_deliveries(pipe: &mut redis::Pipeline, node: u64, deliveries: &[Delivery]) {
    pipe.cmd("XADD")
        .arg(node_deliveries(node))
        .arg("MAXLEN")
        .arg("~")
        .arg(DELIVERIES_CAP)
        .arg("*")
        .arg("d")
        .arg(to_json(&deliveries))
        .ignore();
}

fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    // The records and deliveries are plain data: serializing them cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Journal;

    #[test]
    fn a_resume_from_a_journal_trimmed_by_bytes_is_answered_as_a_single_process_answers_it() {
        let sizes = [4, 4, 4, 2, 15, 1, 3, 3, 3, 3];
        let mut journal = Journal::new(RESUME_WINDOW).with_byte_cap(10);
        for (n, size) in sizes.into_iter().enumerate() {
            journal.record_sized(format!("{n}:{}", "x".repeat(size)), size);
            let seq = journal.last_seq();
            // What the journal keeps, as the cluster's list holds it: oldest first.
            let kept: Vec<String> = (0..=seq)
                .find_map(|from| journal.after(from).ok())
                .map(|items| items.map(|(_, text)| text.clone()).collect())
                .unwrap_or_default();
            for last_seq in 0..=seq + 2 {
                let single = journal
                    .after(last_seq)
                    .map(|items| items.map(|(_, text)| text.clone()).collect());
                assert_eq!(
                    missed(kept.clone(), seq, last_seq),
                    single,
                    "after {last_seq} of {seq}, {} kept",
                    kept.len()
                );
            }
        }
    }
}
