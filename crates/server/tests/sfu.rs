//! Group calls through the embedded SFU (`--sfu-udp`), end to end: the real `calling-server`
//! binary, users who call, accept and hang up over its WebSocket as the SDK does, and media
//! peers (str0m, over 127.0.0.1) that join the SFU with `sfu` offers on those WebSockets and
//! answer the server's `sfu` offers. Also the refusals of `sfu` messages, and of the flag at
//! startup.

mod process;
// The SFU crate's own test peer, reached here through the server's signalling.
#[path = "../../sfu/tests/peer/mod.rs"]
mod peer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use calling_protocol::{
    CallType, ClientMessage, ErrorCode, ErrorReply, InviteSent, Invited, LoginOk, RelayedSignal,
    RoomId, ServerMessage, SfuSignal, Signal,
};
use futures_util::{SinkExt, StreamExt};
use peer::{Peer, Seen, Signalling};
use process::ServerProcess;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction, MediaKind};
use str0m::{Candidate, RtcConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Generous: ICE and DTLS of debug builds on a loaded machine.
const MEDIA_DEADLINE: Duration = Duration::from_secs(60);
/// Frames a receiver must get from a sender to count as receiving it (a second of video).
const ENOUGH: usize = 30;
const SFU_FLAGS: [&str; 2] = ["--sfu-udp", "127.0.0.1:0"];

/// A logged-in user's WebSocket, read and written by its own task: the server's `sfu` answers
/// and offers go to the user's media peer, everything else to the test.
struct User {
    name: String,
    send: mpsc::UnboundedSender<ClientMessage>,
    events: mpsc::UnboundedReceiver<ServerMessage>,
    /// Taken by the media peer.
    sfu: Option<WsSignalling>,
    /// What `loginOk` said of the SFU.
    sfu_offered: bool,
    /// The task holding the WebSocket.
    socket: tokio::task::AbortHandle,
}

impl User {
    async fn login(addr: SocketAddr, name: &str) -> User {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .expect("connect");
        ws.send(Message::text(process::login_msg(name)))
            .await
            .expect("send login");
        let (send, mut outgoing) = mpsc::unbounded_channel::<ClientMessage>();
        let (events_tx, events) = mpsc::unbounded_channel();
        let (answers_tx, answers) = mpsc::unbounded_channel();
        let (offers_tx, offers) = mpsc::unbounded_channel();
        let socket = tokio::spawn(async move {
            // The server drops a session silent for its heartbeat timeout.
            let mut heartbeat = tokio::time::interval(Duration::from_secs(2));
            loop {
                tokio::select! {
                    frame = ws.next() => {
                        let Some(Ok(frame)) = frame else { return };
                        let Message::Text(text) = frame else { continue };
                        let msg: ServerMessage =
                            serde_json::from_str(text.as_str()).expect("a server message");
                        let _ = match msg {
                            ServerMessage::Pong => Ok(()),
                            ServerMessage::Sfu(SfuSignal { signal: Signal::Answer { sdp }, .. }) => {
                                answers_tx.send(sdp).map_err(|_| ())
                            }
                            ServerMessage::Sfu(SfuSignal { signal: Signal::Offer { sdp }, .. }) => {
                                offers_tx.send(sdp).map_err(|_| ())
                            }
                            other => events_tx.send(other).map_err(|_| ()),
                        };
                    }
                    msg = outgoing.recv() => {
                        let Some(msg) = msg else { return };
                        let json = serde_json::to_string(&msg).expect("serializes");
                        if ws.send(Message::text(json)).await.is_err() {
                            return;
                        }
                    }
                    _ = heartbeat.tick() => {
                        let ping = process::ping_msg();
                        if ws.send(Message::text(ping)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let mut user = User {
            name: name.to_string(),
            send: send.clone(),
            events,
            sfu: None,
            sfu_offered: false,
            socket: socket.abort_handle(),
        };
        match user.next().await {
            ServerMessage::LoginOk(LoginOk { sfu, .. }) => user.sfu_offered = sfu,
            other => panic!("{name}: expected loginOk, got {other:?}"),
        }
        user.sfu = Some(WsSignalling {
            room: 0,
            send,
            answers,
            offers,
        });
        user
    }

    /// Drops the WebSocket without a close frame, like a tab that crashed.
    fn vanish(&self) {
        self.socket.abort();
    }

    fn send(&self, msg: ClientMessage) {
        self.send.send(msg).expect("the user's socket task runs");
    }

    /// The next message for the test, within [`process::DEADLINE`].
    async fn next(&mut self) -> ServerMessage {
        tokio::time::timeout(process::DEADLINE, self.events.recv())
            .await
            .unwrap_or_else(|_| panic!("{}: no message in time", self.name))
            .unwrap_or_else(|| panic!("{}: socket closed", self.name))
    }

    /// Skips messages until one `matches`; returns it.
    async fn until(&mut self, matches: impl Fn(&ServerMessage) -> bool) -> ServerMessage {
        loop {
            let msg = self.next().await;
            if matches(&msg) {
                return msg;
            }
        }
    }

    /// The next error, skipping only news of the call's invitees (acceptances, who still
    /// rings): it must be what the last request got.
    async fn error(&mut self) -> ErrorCode {
        loop {
            match self.next().await {
                ServerMessage::Error(ErrorReply { code, .. }) => return code,
                ServerMessage::Accepted(_) | ServerMessage::InviteeList(_) => continue,
                other => panic!("{}: expected an error, got {other:?}", self.name),
            }
        }
    }

    /// Sends an `sfu` message of call `room`.
    fn signal_sfu(&self, room: RoomId, signal: Signal) {
        self.send(ClientMessage::Sfu {
            room_id: room,
            signal,
        });
    }

    /// Starts this user's media peer on the SFU of call `room`.
    async fn start_media(&mut self, room: RoomId, seen: mpsc::UnboundedSender<Seen>) -> Peer {
        let mut signalling = self.sfu.take().expect("one peer per user");
        signalling.room = room;
        Peer::start(signalling, &self.name, false, seen).await
    }
}

/// The media peer's signalling: `sfu` messages on its user's WebSocket.
struct WsSignalling {
    room: RoomId,
    send: mpsc::UnboundedSender<ClientMessage>,
    answers: mpsc::UnboundedReceiver<String>,
    offers: mpsc::UnboundedReceiver<String>,
}

impl Signalling for WsSignalling {
    async fn join(&mut self, offer: SdpOffer) -> Result<SdpAnswer, String> {
        let signal = Signal::Offer {
            sdp: offer.to_sdp_string(),
        };
        self.send
            .send(ClientMessage::Sfu {
                room_id: self.room,
                signal,
            })
            .map_err(|e| e.to_string())?;
        let sdp = tokio::time::timeout(process::DEADLINE, self.answers.recv())
            .await
            .map_err(|_| "no sfu answer in time".to_string())?
            .ok_or("socket closed")?;
        SdpAnswer::from_sdp_string(&sdp).map_err(|e| e.to_string())
    }

    async fn offer(&mut self) -> Option<SdpOffer> {
        let sdp = self.offers.recv().await?;
        Some(SdpOffer::from_sdp_string(&sdp).expect("the server's sfu offer parses"))
    }

    async fn answer(&mut self, answer: SdpAnswer) -> Result<(), String> {
        let signal = Signal::Answer {
            sdp: answer.to_sdp_string(),
        };
        self.send
            .send(ClientMessage::Sfu {
                room_id: self.room,
                signal,
            })
            .map_err(|e| e.to_string())
    }
}

/// `caller` invites `others` into a group call, which each accepts as the SDK would.
async fn group_call(caller: &mut User, others: &mut [&mut User]) -> RoomId {
    let user_ids = others.iter().map(|u| u.name.clone()).collect();
    caller.send(ClientMessage::Invite {
        request_id: 1,
        user_ids,
        call_type: CallType::Video,
        is_group: true,
        group_id: None,
        room_id: None,
    });
    let room = match caller.next().await {
        ServerMessage::InviteSent(InviteSent { room_id, .. }) => room_id,
        other => panic!("expected inviteSent, got {other:?}"),
    };
    for user in others.iter_mut() {
        let invite_id = match user.next().await {
            ServerMessage::Invited(Invited { invite_id, .. }) => invite_id,
            other => panic!("{}: expected invited, got {other:?}", user.name),
        };
        user.send(ClientMessage::Accept {
            request_id: 2,
            invite_id,
        });
        user.until(|m| matches!(m, ServerMessage::Joined(_))).await;
    }
    room
}

/// What the peers of one test saw.
struct Observer {
    seen: mpsc::UnboundedReceiver<Seen>,
    /// Frames per (receiver, origin, kind), the origin read from the forwarded track's msid.
    frames: HashMap<(String, String, MediaKind), usize>,
    /// (receiver, origin) of every forwarded track the SFU stopped.
    ended: Vec<(String, String)>,
}

impl Observer {
    fn new() -> (Observer, mpsc::UnboundedSender<Seen>) {
        let (tx, seen) = mpsc::unbounded_channel();
        let observer = Observer {
            seen,
            frames: HashMap::new(),
            ended: Vec::new(),
        };
        (observer, tx)
    }

    fn frames(&self, receiver: &str, origin: &str, kind: MediaKind) -> usize {
        let key = (receiver.to_string(), origin.to_string(), kind);
        self.frames.get(&key).copied().unwrap_or(0)
    }

    fn ended(&self, receiver: &str, origin: &str) -> usize {
        let pair = (receiver.to_string(), origin.to_string());
        self.ended.iter().filter(|e| **e == pair).count()
    }

    /// Reads what the peers see until `done`, or fails at the deadline saying `what`.
    async fn until(&mut self, what: &str, done: impl Fn(&Observer) -> bool) {
        let deadline = tokio::time::Instant::now() + MEDIA_DEADLINE;
        while !done(self) {
            let seen = tokio::time::timeout_at(deadline, self.seen.recv())
                .await
                .unwrap_or_else(|_| panic!("{what}: not within {MEDIA_DEADLINE:?}"))
                .expect("peers running");
            match seen {
                Seen::Frame {
                    receiver,
                    origin,
                    kind,
                    ..
                } => *self.frames.entry((receiver, origin, kind)).or_default() += 1,
                Seen::TrackEnded { receiver, origin } => self.ended.push((receiver, origin)),
                Seen::KeyframeRequested { .. } => {}
            }
        }
    }

    /// Every receiver has at least `n` audio and `n` video frames from every origin.
    fn all_receive(&self, pairs: &[(&str, &str)], n: usize) -> bool {
        pairs.iter().all(|(receiver, origin)| {
            self.frames(receiver, origin, MediaKind::Audio) >= n
                && self.frames(receiver, origin, MediaKind::Video) >= n
        })
    }
}

/// Every ordered pair of distinct names.
fn pairs<'a>(names: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    let mut pairs = Vec::new();
    for r in names {
        for o in names {
            if r != o {
                pairs.push((*r, *o));
            }
        }
    }
    pairs
}

/// One value of the server's `/metrics`.
async fn metric(addr: SocketAddr, name: &str) -> Option<f64> {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET /metrics HTTP/1.0\r\nHost: test\r\n\r\n")
        .await
        .expect("request");
    let mut text = String::new();
    tcp.read_to_string(&mut text).await.expect("response");
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} "))?.trim().parse().ok())
}

/// Three users in one call, each with a media peer on the SFU.
async fn three_in_the_sfu(server: &ServerProcess) -> (Vec<User>, Vec<Peer>, Observer, RoomId) {
    let mut alice = User::login(server.addr, "alice").await;
    let mut bob = User::login(server.addr, "bob").await;
    let mut cat = User::login(server.addr, "cat").await;
    assert!(alice.sfu_offered, "loginOk says the server runs an SFU");
    let room = group_call(&mut alice, &mut [&mut bob, &mut cat]).await;
    let (mut observer, seen) = Observer::new();
    let mut peers = Vec::new();
    for user in [&mut alice, &mut bob, &mut cat] {
        peers.push(user.start_media(room, seen.clone()).await);
    }
    let names = ["alice", "bob", "cat"];
    observer
        .until("everyone receives both others", |o| {
            o.all_receive(&pairs(&names), ENOUGH)
        })
        .await;
    (vec![alice, bob, cat], peers, observer, room)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_of_a_group_call_each_receive_both_others_through_the_sfu() {
    let server = ServerProcess::start(&SFU_FLAGS).await;
    let (_users, peers, observer, _room) = three_in_the_sfu(&server).await;
    // The origins are the msid stream ids of the tracks: the senders' user ids.
    let origins: std::collections::BTreeSet<&str> =
        observer.frames.keys().map(|(_, o, _)| o.as_str()).collect();
    assert_eq!(origins, ["alice", "bob", "cat"].into());
    assert_eq!(
        metric(server.addr, "calling_sfu_participants").await,
        Some(3.0)
    );
    assert_eq!(
        metric(server.addr, "calling_sfu_joins_total").await,
        Some(3.0)
    );
    for peer in peers {
        peer.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_who_hangs_up_stops_reaching_the_others() {
    let server = ServerProcess::start(&SFU_FLAGS).await;
    let (users, peers, mut observer, room) = three_in_the_sfu(&server).await;
    // cat hangs up; its peer goes on sending.
    users[2].send(ClientMessage::Hangup { room_id: room });
    observer
        .until("cat's audio and video stopped at alice and bob", |o| {
            o.ended("alice", "cat") == 2 && o.ended("bob", "cat") == 2
        })
        .await;
    let from_cat = |o: &Observer, r: &str| {
        o.frames(r, "cat", MediaKind::Audio) + o.frames(r, "cat", MediaKind::Video)
    };
    let before = [from_cat(&observer, "alice"), from_cat(&observer, "bob")];
    let (a, b) = (
        observer.frames("alice", "bob", MediaKind::Video),
        observer.frames("bob", "alice", MediaKind::Video),
    );
    observer
        .until("alice and bob go on receiving each other", |o| {
            o.frames("alice", "bob", MediaKind::Video) >= a + ENOUGH
                && o.frames("bob", "alice", MediaKind::Video) >= b + ENOUGH
        })
        .await;
    let after = [from_cat(&observer, "alice"), from_cat(&observer, "bob")];
    assert_eq!(before, after, "nothing of cat after its tracks stopped");
    assert_eq!(
        metric(server.addr, "calling_sfu_participants").await,
        Some(2.0)
    );
    for peer in peers {
        peer.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_socket_is_gone_for_good_leaves_the_sfu() {
    let server = ServerProcess::start(&SFU_FLAGS).await;
    let (users, peers, mut observer, _room) = three_in_the_sfu(&server).await;
    // Not resumable: the session ends with its socket, and with it cat's membership.
    users[2].vanish();
    observer
        .until("cat's audio and video stopped at alice and bob", |o| {
            o.ended("alice", "cat") == 2 && o.ended("bob", "cat") == 2
        })
        .await;
    assert_eq!(
        metric(server.addr, "calling_sfu_participants").await,
        Some(2.0)
    );
    for peer in peers {
        peer.stop().await;
    }
}

/// A well-formed offer of one video track, as a member would join with.
fn an_offer() -> String {
    let mut rtc = RtcConfig::new()
        .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
        .build(Instant::now());
    let addr = "127.0.0.1:9".parse().expect("an address");
    rtc.add_local_candidate(Candidate::host(addr, "udp").expect("a candidate"));
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    change.apply().expect("an offer").0.to_sdp_string()
}

/// After a refusal the socket and the call still work: alice's relay reaches bob.
async fn still_usable(alice: &User, bob: &mut User, room: RoomId) {
    let media = Signal::Media {
        audio: true,
        video: false,
    };
    alice.send(ClientMessage::Relay {
        room_id: room,
        to: "bob".into(),
        signal: media.clone(),
    });
    let is_signal = |m: &ServerMessage| matches!(m, ServerMessage::Signal(_));
    match bob.until(is_signal).await {
        ServerMessage::Signal(RelayedSignal { from, signal, .. }) => {
            assert_eq!((from.as_str(), signal), ("alice", media));
        }
        other => unreachable!("{other:?}"),
    }
}

#[tokio::test]
async fn sfu_messages_are_refused_with_a_clear_error_and_cost_nothing() {
    let server = ServerProcess::start(&SFU_FLAGS).await;
    let mut alice = User::login(server.addr, "alice").await;
    let mut bob = User::login(server.addr, "bob").await;
    let mut dave = User::login(server.addr, "dave").await;
    let room = group_call(&mut alice, &mut [&mut bob]).await;
    let offer = || Signal::Offer { sdp: an_offer() };

    // Not a member of that call.
    dave.signal_sfu(room, offer());
    assert_eq!(dave.error().await, ErrorCode::NotInCall);
    // Not a member of any call with that number either.
    alice.signal_sfu(room + 1, offer());
    assert_eq!(alice.error().await, ErrorCode::NotInCall);
    // An SDP that does not parse.
    alice.signal_sfu(
        room,
        Signal::Offer {
            sdp: "v=0\r\nnonsense".into(),
        },
    );
    assert_eq!(alice.error().await, ErrorCode::InvalidParam);
    // An answer when the SFU offered nothing: before joining, and after.
    alice.signal_sfu(room, Signal::Answer { sdp: an_offer() });
    assert_eq!(alice.error().await, ErrorCode::InvalidParam);
    // Neither an offer nor an answer.
    alice.signal_sfu(
        room,
        Signal::Media {
            audio: true,
            video: true,
        },
    );
    assert_eq!(alice.error().await, ErrorCode::InvalidParam);
    still_usable(&alice, &mut bob, room).await;

    // A member joins (alone in the SFU, so the SFU offers it nothing), then answers anyway.
    let mut signalling = alice.sfu.take().expect("alice's signalling");
    alice.signal_sfu(room, offer());
    let answer = tokio::time::timeout(process::DEADLINE, signalling.answers.recv())
        .await
        .expect("the SFU answers in time")
        .expect("socket open");
    assert!(SdpAnswer::from_sdp_string(&answer).is_ok(), "{answer}");
    alice.signal_sfu(room, Signal::Answer { sdp: answer });
    assert_eq!(alice.error().await, ErrorCode::InvalidParam);
    still_usable(&alice, &mut bob, room).await;
    assert_eq!(
        metric(server.addr, "calling_sfu_refusals_total").await,
        Some(6.0)
    );
}

#[tokio::test]
async fn without_the_flag_sfu_messages_are_refused_and_login_says_no_sfu() {
    let server = ServerProcess::start(&[]).await;
    let mut alice = User::login(server.addr, "alice").await;
    let mut bob = User::login(server.addr, "bob").await;
    assert!(!alice.sfu_offered);
    let room = group_call(&mut alice, &mut [&mut bob]).await;
    alice.signal_sfu(room, Signal::Offer { sdp: an_offer() });
    assert_eq!(alice.error().await, ErrorCode::NoSfu);
    still_usable(&alice, &mut bob, room).await;
    assert_eq!(metric(server.addr, "calling_sfu_participants").await, None);
}

/// Runs the binary with `flags`; returns its exit code and what it wrote to stderr.
async fn refused_start(flags: &[&str]) -> (Option<i32>, String) {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_calling-server"))
        .args(["--listen", "127.0.0.1:0"])
        .args(flags)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(process::DEADLINE, run)
        .await
        .expect("calling-server exits at once")
        .expect("calling-server runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn an_unusable_sfu_address_or_a_cluster_stops_the_server_at_startup() {
    let (code, stderr) = refused_start(&["--sfu-udp", "0.0.0.0:0"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--sfu-udp 0.0.0.0:0") && stderr.contains("specific IP"),
        "{stderr}"
    );
    // Refused before Redis is even reached.
    let flags = ["--sfu-udp", "127.0.0.1:0", "--redis", "redis://127.0.0.1:1"];
    let (code, stderr) = refused_start(&flags).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--sfu-udp cannot be used with --redis"),
        "{stderr}"
    );
}
