//! The SFU tests' users and peers: a user's WebSocket driven by its own task (the server's
//! `sfu` messages to the user's media peer, the rest to the test), the media peer's signalling
//! over it, and what the peers of a test saw.

#![allow(dead_code)]

// The SFU crate's own test peer, reached here through the server's signalling.
#[path = "../../../sfu/tests/peer/mod.rs"]
pub mod peer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use calling_protocol::{
    CallType, ClientMessage, ErrorCode, ErrorReply, InviteSent, Invited, LoginOk, RoomId,
    ServerMessage, SfuSignal, Signal, PROTOCOL_VERSION,
};
use calling_server::usersig;
use futures_util::{SinkExt, StreamExt};
use peer::{Peer, Seen, Signalling};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::MediaKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::process;

/// Generous: ICE and DTLS of debug builds on a loaded machine.
pub const MEDIA_DEADLINE: Duration = Duration::from_secs(60);

/// What a user's socket task is asked to do.
pub enum Out {
    Send(ClientMessage),
    /// Drop the WebSocket without a close frame and resume the session on a new one.
    Reconnect,
    /// The server's `sfu` answers and offers go to a new media peer from now on.
    NewPeer {
        answers: mpsc::UnboundedSender<String>,
        offers: mpsc::UnboundedSender<String>,
    },
}

/// A logged-in user's WebSocket, read and written by its own task: the server's `sfu` answers
/// and offers go to the user's media peer, everything else to the test.
pub struct User {
    pub name: String,
    pub send: mpsc::UnboundedSender<Out>,
    pub events: mpsc::UnboundedReceiver<ServerMessage>,
    /// Taken by the media peer.
    pub sfu: Option<WsSignalling>,
    /// What `loginOk` said of the SFU.
    pub sfu_offered: bool,
    /// The task holding the WebSocket.
    pub socket: tokio::task::AbortHandle,
    /// How many of the SFU's offers arrived while an answer to this user's own `sfu` offer was
    /// still awaited. An SDK, the impolite side, ignores such an offer: the SFU would then wait
    /// for its answer forever. (The media peer here takes either order.)
    pub offers_before_answer: Arc<AtomicUsize>,
}

impl User {
    pub async fn login(addr: SocketAddr, name: &str) -> User {
        User::connect(addr, name, false).await
    }

    /// Logs in, asking for a resumable session if `resumable`.
    pub async fn connect(addr: SocketAddr, name: &str, resumable: bool) -> User {
        let url = format!("ws://{addr}/ws");
        let (mut ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .expect("connect");
        let login = ClientMessage::Login {
            sdk_app_id: process::APP,
            user_id: name.into(),
            user_sig: usersig::generate(
                process::APP,
                process::KEY,
                name,
                process::now_unix(),
                3600,
                None,
            ),
            protocol_version: PROTOCOL_VERSION,
            resumable,
        };
        let login = serde_json::to_string(&login).expect("serializes");
        ws.send(Message::text(login)).await.expect("send login");
        let (send, mut outgoing) = mpsc::unbounded_channel::<Out>();
        let user_id = name.to_string();
        let (events_tx, events) = mpsc::unbounded_channel();
        let (mut answers_tx, answers) = mpsc::unbounded_channel();
        let (mut offers_tx, offers) = mpsc::unbounded_channel();
        let offers_before_answer = Arc::new(AtomicUsize::new(0));
        let overtaking = offers_before_answer.clone();
        let socket = tokio::spawn(async move {
            // Whether an `sfu` offer of ours waits for its answer.
            let mut awaiting_answer = false;
            // The server drops a session silent for its heartbeat timeout.
            let mut heartbeat = tokio::time::interval(Duration::from_secs(2));
            // The resume token, and the seq of the last message read, for a resume.
            let (mut token, mut last_seq) = (None, 0);
            loop {
                tokio::select! {
                    frame = ws.next() => {
                        let Some(Ok(frame)) = frame else { return };
                        let Message::Text(text) = frame else { continue };
                        let value: serde_json::Value =
                            serde_json::from_str(text.as_str()).expect("JSON");
                        if let Some(seq) = value.get("seq").and_then(|s| s.as_u64()) {
                            last_seq = seq;
                        }
                        let msg: ServerMessage =
                            serde_json::from_value(value).expect("a server message");
                        if let ServerMessage::LoginOk(LoginOk { resume: Some(grant), .. }) = &msg {
                            token = Some(grant.token.clone());
                        }
                        let _ = match msg {
                            ServerMessage::Pong => Ok(()),
                            ServerMessage::Sfu(SfuSignal { signal: Signal::Answer { sdp }, .. }) => {
                                awaiting_answer = false;
                                answers_tx.send(sdp).map_err(|_| ())
                            }
                            ServerMessage::Sfu(SfuSignal { signal: Signal::Offer { sdp }, .. }) => {
                                if awaiting_answer {
                                    overtaking.fetch_add(1, Ordering::Relaxed);
                                }
                                offers_tx.send(sdp).map_err(|_| ())
                            }
                            other => events_tx.send(other).map_err(|_| ()),
                        };
                    }
                    out = outgoing.recv() => match out {
                        None => return,
                        Some(Out::Send(msg)) => {
                            if matches!(msg, ClientMessage::Sfu { signal: Signal::Offer { .. }, .. }) {
                                awaiting_answer = true;
                            }
                            let json = serde_json::to_string(&msg).expect("serializes");
                            if ws.send(Message::text(json)).await.is_err() {
                                return;
                            }
                        }
                        Some(Out::NewPeer { answers, offers }) => {
                            (answers_tx, offers_tx) = (answers, offers);
                            awaiting_answer = false;
                        }
                        Some(Out::Reconnect) => {
                            let token = token.clone().expect("a resumable session");
                            // Dropped without a close frame: the connection was lost.
                            drop(ws);
                            ws = tokio_tungstenite::connect_async(&url).await.expect("reconnect").0;
                            let resume = ClientMessage::Resume {
                                sdk_app_id: process::APP,
                                user_id: user_id.clone(),
                                token,
                                last_seq,
                                protocol_version: PROTOCOL_VERSION,
                            };
                            let resume = serde_json::to_string(&resume).expect("serializes");
                            ws.send(Message::text(resume)).await.expect("send resume");
                        }
                    },
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
            offers_before_answer,
        };
        match user.next().await {
            ServerMessage::LoginOk(LoginOk { sfu, .. }) => user.sfu_offered = sfu,
            other => panic!("{name}: expected loginOk, got {other:?}"),
        }
        user.sfu = Some(WsSignalling {
            room: 0,
            joined: false,
            send,
            answers,
            offers,
        });
        user
    }

    /// Drops the WebSocket without a close frame, like a tab that crashed.
    pub fn vanish(&self) {
        self.socket.abort();
    }

    pub fn send(&self, msg: ClientMessage) {
        self.send
            .send(Out::Send(msg))
            .expect("the user's socket task runs");
    }

    /// Loses the WebSocket and resumes the session on a new one.
    pub async fn reconnect(&mut self) {
        self.send
            .send(Out::Reconnect)
            .expect("the user's socket task runs");
        self.until(|m| matches!(m, ServerMessage::Resumed(_))).await;
    }

    /// The next message for the test, within [`process::DEADLINE`].
    pub async fn next(&mut self) -> ServerMessage {
        tokio::time::timeout(process::DEADLINE, self.events.recv())
            .await
            .unwrap_or_else(|_| panic!("{}: no message in time", self.name))
            .unwrap_or_else(|| panic!("{}: socket closed", self.name))
    }

    /// Skips messages until one `matches`; returns it.
    pub async fn until(&mut self, matches: impl Fn(&ServerMessage) -> bool) -> ServerMessage {
        loop {
            let msg = self.next().await;
            if matches(&msg) {
                return msg;
            }
        }
    }

    /// The next error, skipping only news of the call's invitees (acceptances, who still
    /// rings): it must be what the last request got.
    pub async fn error(&mut self) -> ErrorCode {
        loop {
            match self.next().await {
                ServerMessage::Error(ErrorReply { code, .. }) => return code,
                ServerMessage::Accepted(_) | ServerMessage::InviteeList(_) => continue,
                other => panic!("{}: expected an error, got {other:?}", self.name),
            }
        }
    }

    /// Sends an `sfu` message of call `room`; an offer is the first of a new connection.
    pub fn signal_sfu(&self, room: RoomId, signal: Signal) {
        let join = matches!(signal, Signal::Offer { .. });
        self.send(ClientMessage::Sfu {
            room_id: room,
            signal,
            join,
        });
    }

    /// Sends a renegotiating `sfu` offer of call `room`, as for an ICE restart.
    pub fn renegotiate_sfu(&self, room: RoomId, sdp: String) {
        self.send(ClientMessage::Sfu {
            room_id: room,
            signal: Signal::Offer { sdp },
            join: false,
        });
    }

    /// Lets this user start another media peer, as an SDK whose connection to the SFU was
    /// lost with the SFU's node starts one: the server's `sfu` messages go to it from now on.
    pub fn replace_media_peer(&mut self) {
        let (answers_tx, answers) = mpsc::unbounded_channel();
        let (offers_tx, offers) = mpsc::unbounded_channel();
        self.send
            .send(Out::NewPeer {
                answers: answers_tx,
                offers: offers_tx,
            })
            .expect("the user's socket task runs");
        self.sfu = Some(WsSignalling {
            room: 0,
            joined: false,
            send: self.send.clone(),
            answers,
            offers,
        });
    }

    /// Starts this user's media peer on the SFU of call `room`.
    pub async fn start_media(&mut self, room: RoomId, seen: mpsc::UnboundedSender<Seen>) -> Peer {
        self.start_media_with(room, seen, false).await
    }

    /// The same, its video sent as three simulcast layers if `simulcast`.
    pub async fn start_media_with(
        &mut self,
        room: RoomId,
        seen: mpsc::UnboundedSender<Seen>,
        simulcast: bool,
    ) -> Peer {
        let mut signalling = self.sfu.take().expect("one peer per user");
        signalling.room = room;
        Peer::start(signalling, &self.name, simulcast, seen).await
    }
}

/// The media peer's signalling: `sfu` messages on its user's WebSocket.
pub struct WsSignalling {
    pub room: RoomId,
    /// Whether this peer's first offer (its join) went out.
    pub joined: bool,
    pub send: mpsc::UnboundedSender<Out>,
    pub answers: mpsc::UnboundedReceiver<String>,
    pub offers: mpsc::UnboundedReceiver<String>,
}

impl Signalling for WsSignalling {
    async fn join(&mut self, offer: SdpOffer) -> Result<SdpAnswer, String> {
        let signal = Signal::Offer {
            sdp: offer.to_sdp_string(),
        };
        let join = !std::mem::replace(&mut self.joined, true);
        self.send
            .send(Out::Send(ClientMessage::Sfu {
                room_id: self.room,
                signal,
                join,
            }))
            .map_err(|_| "socket task gone")?;
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
            .send(Out::Send(ClientMessage::Sfu {
                room_id: self.room,
                signal,
                join: false,
            }))
            .map_err(|_| "socket task gone".to_string())
    }
}

/// A well-formed offer of one video track, as a member would join with.
pub fn an_offer() -> String {
    let mut rtc = str0m::RtcConfig::new()
        .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
        .build(std::time::Instant::now());
    let addr = "127.0.0.1:9".parse().expect("an address");
    rtc.add_local_candidate(str0m::Candidate::host(addr, "udp").expect("a candidate"));
    let mut change = rtc.sdp_api();
    change.add_media(
        MediaKind::Video,
        str0m::media::Direction::SendOnly,
        None,
        None,
        None,
    );
    change.apply().expect("an offer").0.to_sdp_string()
}

/// `caller` invites `others` into a group call, which each accepts as the SDK would.
pub async fn group_call(caller: &mut User, others: &mut [&mut User]) -> RoomId {
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
pub struct Observer {
    pub seen: mpsc::UnboundedReceiver<Seen>,
    /// For the peers.
    pub tx: mpsc::UnboundedSender<Seen>,
    /// Frames per (receiver, origin, kind), the origin read from the forwarded track's msid.
    pub frames: HashMap<(String, String, MediaKind), usize>,
    /// Video frames per (receiver, origin, simulcast layer tag).
    pub layers: HashMap<(String, String, u8), usize>,
    /// (receiver, origin) of every forwarded track the SFU stopped.
    pub ended: Vec<(String, String)>,
}

impl Observer {
    pub fn new() -> Observer {
        let (tx, seen) = mpsc::unbounded_channel();
        Observer {
            seen,
            tx,
            frames: HashMap::new(),
            layers: HashMap::new(),
            ended: Vec::new(),
        }
    }

    /// Where a peer tells what it sees.
    pub fn sender(&self) -> mpsc::UnboundedSender<Seen> {
        self.tx.clone()
    }

    pub fn frames(&self, receiver: &str, origin: &str, kind: MediaKind) -> usize {
        let key = (receiver.to_string(), origin.to_string(), kind);
        self.frames.get(&key).copied().unwrap_or(0)
    }

    /// Video frames `receiver` got of `origin`'s simulcast layer `layer`.
    pub fn layer_frames(&self, receiver: &str, origin: &str, layer: &str) -> usize {
        let key = (
            receiver.to_string(),
            origin.to_string(),
            layer.as_bytes()[0],
        );
        self.layers.get(&key).copied().unwrap_or(0)
    }

    pub fn ended(&self, receiver: &str, origin: &str) -> usize {
        let pair = (receiver.to_string(), origin.to_string());
        self.ended.iter().filter(|e| **e == pair).count()
    }

    /// Reads what the peers see until `done`, or fails at the deadline saying `what`.
    pub async fn until(&mut self, what: &str, done: impl Fn(&Observer) -> bool) {
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
                    layer,
                    ..
                } => {
                    if kind == MediaKind::Video {
                        let key = (receiver.clone(), origin.clone(), layer);
                        *self.layers.entry(key).or_default() += 1;
                    }
                    *self.frames.entry((receiver, origin, kind)).or_default() += 1
                }
                Seen::TrackEnded { receiver, origin } => self.ended.push((receiver, origin)),
                Seen::KeyframeRequested { .. } | Seen::Gone { .. } => {}
            }
        }
    }

    /// Every receiver has at least `n` audio and `n` video frames from every origin.
    pub fn all_receive(&self, pairs: &[(&str, &str)], n: usize) -> bool {
        pairs.iter().all(|(receiver, origin)| {
            self.frames(receiver, origin, MediaKind::Audio) >= n
                && self.frames(receiver, origin, MediaKind::Video) >= n
        })
    }

    /// Waits until each of `a` and `b` has received `more` video frames of the other than now.
    pub async fn go_on_receiving(&mut self, a: &str, b: &str, more: usize) {
        let (from_b, from_a) = (
            self.frames(a, b, MediaKind::Video),
            self.frames(b, a, MediaKind::Video),
        );
        self.until(&format!("{a} and {b} go on receiving each other"), |o| {
            o.frames(a, b, MediaKind::Video) >= from_b + more
                && o.frames(b, a, MediaKind::Video) >= from_a + more
        })
        .await;
    }
}

/// Every ordered pair of distinct names.
pub fn pairs<'a>(names: &[&'a str]) -> Vec<(&'a str, &'a str)> {
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
pub async fn metric(addr: SocketAddr, name: &str) -> Option<f64> {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET /metrics HTTP/1.0\r\nHost: test\r\n\r\n")
        .await
        .expect("request");
    let mut text = String::new();
    tcp.read_to_string(&mut text).await.expect("response");
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} "))?.trim().parse().ok())
}
