//! Test harness: a real server bound to 127.0.0.1:0 and real WebSocket clients.
//!
//! Every wait has a deadline; nothing sleeps to synchronise. "Nothing else arrived" is checked
//! with a ping barrier: the server queues a session's replies behind everything already
//! delivered to it, so a `pong` that comes next proves no earlier message was pending.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use calling_protocol::{
    Accepted, CallEnded, CallType, ClientMessage, EndReason, ErrorCode, ErrorReply, InviteSent,
    Invited, InviteeList, Joined, LoginOk, ResumeGrant, RoomId, ServerMessage, Signal,
    PROTOCOL_VERSION,
};
use calling_server::{usersig, AppCredential, Config, Hub};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const APP: u64 = 1_400_000_001;
pub const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// Longest any single expected message may take.
pub const DEADLINE: Duration = Duration::from_secs(5);

pub struct Server {
    pub addr: SocketAddr,
    pub hub: Arc<Hub>,
}

pub fn config() -> Config {
    Config::new(vec![AppCredential {
        sdk_app_id: APP,
        secret_key: KEY.into(),
    }])
}

pub async fn start(config: Config) -> Server {
    // Server logs go to the test's captured output, so a failing test shows them.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_ansi(false)
        .with_env_filter("calling_server=debug")
        .try_init();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (router, hub) = calling_server::app_with_hub(config);
    tokio::spawn(calling_server::serve_router(listener, router, hub.clone()));
    Server { addr, hub }
}

/// Starts a server with this ring timeout.
pub async fn start_ringing(ring: Duration) -> Server {
    let mut c = config();
    c.ring_timeout = ring;
    start(c).await
}

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn sig(user: &str) -> String {
    usersig::generate(APP, KEY, user, now_unix(), 3600, None)
}

pub fn login_msg(user: &str) -> ClientMessage {
    ClientMessage::Login {
        sdk_app_id: APP,
        user_id: user.into(),
        user_sig: sig(user),
        protocol_version: PROTOCOL_VERSION,
        resumable: false,
    }
}

pub struct Client {
    pub name: String,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// One thing read from the server.
#[derive(Debug)]
pub enum Frame {
    Message(ServerMessage),
    Closed(Closed),
}

/// What ended a connection, as the client saw it.
#[derive(Debug, PartialEq)]
pub enum Closed {
    Code(u16),
    /// Closed without a close frame.
    Abrupt,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .unwrap();
        Client {
            name: String::new(),
            ws,
        }
    }

    /// Connects and logs in as `user`, checking `loginOk`.
    pub async fn login(addr: SocketAddr, user: &str) -> Client {
        let mut c = Client::connect(addr).await;
        c.name = user.into();
        c.send(&login_msg(user)).await;
        match c.recv().await {
            ServerMessage::LoginOk(LoginOk { user_id, .. }) => assert_eq!(user_id, user),
            other => panic!("{user}: expected loginOk, got {other:?}"),
        }
        c
    }

    /// Connects and logs in as `user` in a resumable session; returns the grant.
    pub async fn login_resumable(addr: SocketAddr, user: &str) -> (Client, ResumeGrant) {
        let mut c = Client::connect(addr).await;
        c.name = user.into();
        let ClientMessage::Login {
            sdk_app_id,
            user_id,
            user_sig,
            protocol_version,
            ..
        } = login_msg(user)
        else {
            unreachable!()
        };
        c.send(&ClientMessage::Login {
            sdk_app_id,
            user_id,
            user_sig,
            protocol_version,
            resumable: true,
        })
        .await;
        match c.recv().await {
            ServerMessage::LoginOk(LoginOk {
                resume: Some(grant),
                ..
            }) => (c, grant),
            other => panic!("{user}: expected a resumable loginOk, got {other:?}"),
        }
    }

    /// Connects and asks to resume `user`'s session after `last_seq` (the answer is not read).
    pub async fn resume(addr: SocketAddr, user: &str, token: &str, last_seq: u64) -> Client {
        let mut c = Client::connect(addr).await;
        c.name = format!("{user} (resumed)");
        c.send(&ClientMessage::Resume {
            sdk_app_id: APP,
            user_id: user.into(),
            token: token.into(),
            last_seq,
            protocol_version: PROTOCOL_VERSION,
        })
        .await;
        c
    }

    /// Sends a close frame, as a page does when it goes away on purpose.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// Sends a close frame with `code` (the SDK abandoning a socket it believes dead uses
    /// `RECONNECT_CLOSE_CODE`).
    pub async fn close_with(mut self, code: u16) {
        use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: "".into(),
        };
        let _ = self.ws.close(Some(frame)).await;
    }

    /// The next server message with its `seq` (absent on unnumbered ones), within [`DEADLINE`].
    pub async fn recv_numbered(&mut self) -> (Option<u64>, ServerMessage) {
        let name = self.name.clone();
        let next = tokio::time::timeout(DEADLINE, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(t))) => {
                        let value: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                        let seq = value.get("seq").and_then(|s| s.as_u64());
                        return (seq, serde_json::from_value::<ServerMessage>(value).unwrap());
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    other => panic!("{name}: expected a message, got {other:?}"),
                }
            }
        })
        .await;
        next.unwrap_or_else(|_| panic!("{name}: no message within {DEADLINE:?}"))
    }

    pub async fn send(&mut self, msg: &ClientMessage) {
        let json = serde_json::to_string(msg).unwrap();
        self.send_text(&json).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// Sends without caring whether the server has already closed (for abusive clients).
    pub async fn try_send_text(&mut self, text: &str) -> bool {
        self.ws.send(Message::text(text)).await.is_ok()
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::binary(bytes)).await.unwrap();
    }

    /// The next server message, within [`DEADLINE`].
    pub async fn recv(&mut self) -> ServerMessage {
        let name = self.name.clone();
        let next = tokio::time::timeout(DEADLINE, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(t))) => {
                        return serde_json::from_str::<ServerMessage>(t.as_str()).unwrap()
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    other => panic!("{name}: expected a message, got {other:?}"),
                }
            }
        })
        .await;
        next.unwrap_or_else(|_| panic!("{name}: no message within {DEADLINE:?}"))
    }

    /// The next message or the close, within [`DEADLINE`].
    pub async fn next_frame(&mut self) -> Frame {
        let name = self.name.clone();
        tokio::time::timeout(DEADLINE, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(t))) => {
                        return Frame::Message(serde_json::from_str(t.as_str()).unwrap())
                    }
                    Some(Ok(Message::Close(Some(frame)))) => {
                        return Frame::Closed(Closed::Code(frame.code.into()))
                    }
                    Some(Ok(Message::Close(None))) | None | Some(Err(_)) => {
                        return Frame::Closed(Closed::Abrupt)
                    }
                    Some(Ok(_)) => continue,
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{name}: nothing within {DEADLINE:?}"))
    }

    /// Asserts that nothing else is queued for this client.
    pub async fn expect_nothing(&mut self) {
        self.send(&ClientMessage::Ping).await;
        match self.recv().await {
            ServerMessage::Pong => {}
            other => panic!("{}: expected nothing more, got {other:?}", self.name),
        }
    }

    /// Reads until the server closes the connection; returns how.
    pub async fn closed(&mut self) -> Closed {
        let name = self.name.clone();
        tokio::time::timeout(DEADLINE, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(Some(frame)))) => {
                        return Closed::Code(frame.code.into())
                    }
                    Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return Closed::Abrupt,
                    Some(Ok(_)) => continue,
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{name}: not closed within {DEADLINE:?}"))
    }

    /// Reads until an `Error` arrives; returns its code and request id.
    pub async fn expect_error(&mut self) -> (ErrorCode, Option<u32>, String) {
        match self.recv().await {
            ServerMessage::Error(ErrorReply {
                code,
                request_id,
                message,
            }) => (code, request_id, message),
            other => panic!("{}: expected an error, got {other:?}", self.name),
        }
    }

    /// Closes the TCP connection without a close handshake, like a crashed tab.
    pub fn vanish(self) {
        drop(self.ws);
    }

    pub async fn invite(&mut self, users: &[&str], room: Option<RoomId>) -> (RoomId, String) {
        self.send(&ClientMessage::Invite {
            request_id: 11,
            user_ids: users.iter().map(|s| s.to_string()).collect(),
            call_type: CallType::Video,
            is_group: users.len() > 1,
            group_id: None,
            room_id: room,
        })
        .await;
        match self.recv().await {
            ServerMessage::InviteSent(InviteSent {
                request_id: 11,
                room_id,
                invite_id,
                ..
            }) => (room_id, invite_id),
            other => panic!("{}: expected inviteSent, got {other:?}", self.name),
        }
    }

    /// Expects an `Invited` and returns its invite id.
    pub async fn invited(&mut self) -> String {
        match self.recv().await {
            ServerMessage::Invited(Invited { invite_id, .. }) => invite_id,
            other => panic!("{}: expected invited, got {other:?}", self.name),
        }
    }

    pub async fn accept(&mut self, invite_id: &str) -> ServerMessage {
        self.send(&ClientMessage::Accept {
            request_id: 12,
            invite_id: invite_id.into(),
        })
        .await;
        self.recv().await
    }

    pub async fn relay(&mut self, room: RoomId, to: &str, signal: Signal) {
        self.send(&ClientMessage::Relay {
            room_id: room,
            to: to.into(),
            signal,
        })
        .await;
    }
}

pub fn invitee_list(room: RoomId, users: &[&str]) -> ServerMessage {
    ServerMessage::InviteeList(InviteeList {
        room_id: room,
        user_ids: users.iter().map(|s| s.to_string()).collect(),
    })
}

/// alice calls bob and bob accepts; every message on the way is checked.
pub async fn connected_pair(server: &Server) -> (Client, Client, RoomId, String) {
    let mut alice = Client::login(server.addr, "alice").await;
    let mut bob = Client::login(server.addr, "bob").await;
    let (room, invite_id) = alice.invite(&["bob"], None).await;
    assert_eq!(alice.recv().await, invitee_list(room, &["bob"]));
    assert_eq!(
        bob.recv().await,
        ServerMessage::Invited(Invited {
            invite_id: invite_id.clone(),
            room_id: room,
            sponsor: "alice".into(),
            user_ids: vec!["bob".into()],
            call_type: CallType::Video,
            is_group: false,
            group_id: None,
        })
    );
    assert_eq!(
        bob.accept(&invite_id).await,
        ServerMessage::Joined(Joined {
            request_id: 12,
            room_id: room,
            call_type: CallType::Video,
            members: vec!["alice".into()],
            pending: vec![],
        })
    );
    assert_eq!(
        alice.recv().await,
        ServerMessage::Accepted(Accepted {
            room_id: room,
            invite_id: invite_id.clone(),
            user_id: "bob".into()
        })
    );
    assert_eq!(alice.recv().await, invitee_list(room, &[]));
    (alice, bob, room, invite_id)
}

/// A predicate matching the `CallEnded` of `room` ended by `by` for `reason`.
pub fn call_ended(room: RoomId, by: &str, reason: EndReason) -> impl Fn(ServerMessage) -> bool {
    let by = by.to_string();
    move |m| matches!(m, ServerMessage::CallEnded(CallEnded { room_id, user_id, reason: r, .. }) if room_id == room && user_id == by && r == reason)
}
