//! The WebSocket to `calling-server`: gloo-net's futures `WebSocket`, read by one task that
//! queues every server message, then the loss of the connection, on the driver's [`Sink`] as
//! inputs. [`Signaling::send`] writes at once when it can (the frame leaves before whatever
//! the caller does next, such as closing connections after a hangup), else queues it for the
//! task, which writes it in order.
//!
//! Messages cross as JSON text made and parsed by the browser's `JSON`, from and to the JS
//! values serde-wasm-bindgen converts the protocol types to and from (server messages through
//! `calling-protocol`'s decoder by tag).

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use calling_core::Input;
use calling_protocol::{ClientMessage, ServerMessage, RECONNECT_CLOSE_CODE};
use futures_core::Stream;
use futures_sink::Sink as _;
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, State, WebSocketError};
use js_sys::JSON;

use crate::convert;
use crate::driver::Sink;
use crate::error::{js_message, Error};
use crate::log;
use crate::task;

/// The open connection. Dropping it ends the socket task: frames already queued are still
/// written, then the socket closes, and neither a message received meanwhile nor the close is
/// reported, so a deliberate close never reads as a lost connection.
pub struct Signaling {
    outbox: Rc<Outbox>,
}

/// The frames [`Signaling::send`] queued for the socket task. Everything runs on one thread,
/// so a `RefCell` and the task's waker do the work of a channel, without the atomics of
/// futures-channel's thread-safe one (which cost more wasm than this whole module).
#[derive(Default)]
struct Outbox {
    /// The socket; borrowed by the task while it polls, and by `send` to write at once.
    socket: RefCell<Option<WebSocket>>,
    /// Oldest first; a `Vec` rather than a `VecDeque`, which costs more wasm for a few frames.
    frames: RefCell<Vec<String>>,
    /// The socket task, when it waits for frames.
    task: Cell<Option<Waker>>,
    /// The [`Signaling`] was dropped: the task writes what is queued, then ends quietly.
    dropped: Cell<bool>,
    /// It was given up for a new socket ([`Signaling::abandon`]): closed with
    /// [`RECONNECT_CLOSE_CODE`], so the server keeps the session for the resume.
    abandoned: Cell<bool>,
    /// The task has ended: nothing more can be sent.
    ended: Cell<bool>,
}

impl Outbox {
    fn wake_task(&self) {
        if let Some(task) = self.task.take() {
            task.wake();
        }
    }
}

impl Drop for Signaling {
    fn drop(&mut self) {
        self.outbox.dropped.set(true);
        self.outbox.wake_task();
    }
}

impl Signaling {
    /// Opens the socket and waits for it to be open (failing if it closes first), then starts
    /// the task that owns it. Every server message is queued on `sink` as [`Input::Server`], an
    /// unrequested close as [`Input::SignalingClosed`] (the core answers with `Disconnect`,
    /// which drops this handle).
    pub async fn connect(url: &str, sink: Sink) -> Result<Signaling, Error> {
        Signaling::open(url, move |input| sink.queue(input)).await
    }

    /// [`Signaling::connect`] with any receiver of the inputs (tests record them).
    async fn open(url: &str, deliver: impl FnMut(Input) + 'static) -> Result<Signaling, Error> {
        let unreachable = || Error::Unreachable(url.to_owned());
        let mut ws = WebSocket::open(url).map_err(|_| unreachable())?;
        // Ready once the socket left CONNECTING: open, or closed after an `error` event.
        poll_fn(|cx| Pin::new(&mut ws).poll_ready(cx))
            .await
            .map_err(|_| unreachable())?;
        if !matches!(ws.state(), State::Open) {
            return Err(unreachable());
        }
        let outbox = Rc::new(Outbox::default());
        outbox.socket.replace(Some(ws));
        task::spawn(run(outbox.clone(), deliver));
        Ok(Signaling { outbox })
    }

    /// `Effect::Farewell`: a throwaway socket to `url` that writes `frames` in order, then
    /// closes with a close frame; nothing it receives is reported, and a socket that cannot be
    /// had is given up.
    pub fn farewell(url: String, frames: Vec<ClientMessage>) {
        task::spawn(async move {
            // `connect` with a sink that reaches nobody, rather than `open` with a closure of its
            // own, which would compile a second copy of the socket task into the package.
            let Ok(socket) = Signaling::connect(&url, Sink::nowhere()).await else {
                return;
            };
            for frame in &frames {
                if socket.send(frame).is_err() {
                    return;
                }
            }
            // Dropped: its task writes what is queued, then closes deliberately.
        });
    }

    /// Gives the socket up for a new one: nothing more is sent or reported, and it closes with
    /// [`RECONNECT_CLOSE_CODE`] (a plain close would end the session on the server).
    pub fn abandon(self) {
        self.outbox.abandoned.set(true);
        self.outbox.frames.borrow_mut().clear();
    }

    /// Queues `msg` and writes it (after anything queued before it) before returning, unless
    /// the socket is not open or the task is polling it; the task then writes it in order.
    pub fn send(&self, msg: &ClientMessage) -> Result<(), Error> {
        if self.outbox.ended.get() {
            return Err(Error::Browser("the connection is closed".into()));
        }
        self.outbox.frames.borrow_mut().push(encode(msg)?);
        // Written now when the socket is open and not being polled by the task (it is when a
        // server message being handled caused this one: the task writes it right after). An
        // open socket is ready at once, so the waker that does nothing is never kept.
        if let Ok(mut socket) = self.outbox.socket.try_borrow_mut() {
            if let Some(ws) = socket
                .as_mut()
                .filter(|ws| matches!(ws.state(), State::Open))
            {
                if write_queued(ws, &self.outbox, &mut Context::from_waker(Waker::noop())) {
                    return Ok(());
                }
            }
        }
        self.outbox.wake_task();
        Ok(())
    }
}

/// The socket task. Each turn first writes what is queued (or stops, silently, once the
/// [`Signaling`] is dropped and its frames are written), then reads at most one frame, so a
/// message is never handed on after the input of the one before it dropped the connection.
async fn run(outbox: Rc<Outbox>, mut deliver: impl FnMut(Input)) {
    let lost = poll_fn(|cx| {
        let mut socket = outbox.socket.borrow_mut();
        let Some(ws) = socket.as_mut() else {
            return Poll::Ready(false);
        };
        poll_socket(ws, &outbox, &mut deliver, cx)
    })
    .await;
    outbox.ended.set(true);
    outbox.frames.borrow_mut().clear();
    let Some(ws) = outbox.socket.take() else {
        return;
    };
    if outbox.abandoned.get() {
        // A socket believed dead may still be alive: say this is a reconnect, not a goodbye.
        let _ = ws.close(Some(RECONNECT_CLOSE_CODE), Some("reconnecting"));
    } else {
        // gloo-net's drop closes the socket (`close()` without a code cannot throw) and
        // removes its listeners.
        drop(ws);
    }
    if lost {
        deliver(Input::SignalingClosed);
    }
}

/// One poll of the socket task: write what is queued, then read frames until none is ready.
/// `Ready(lost)` when it is over: `false` once the [`Signaling`] is dropped and its frames
/// are written, `true` when the connection closed by itself.
fn poll_socket(
    ws: &mut WebSocket,
    outbox: &Outbox,
    deliver: &mut impl FnMut(Input),
    cx: &mut Context,
) -> Poll<bool> {
    loop {
        if write_queued(ws, outbox, cx) {
            if outbox.dropped.get() {
                return Poll::Ready(false);
            }
            outbox.task.set(Some(cx.waker().clone()));
        }
        match Pin::new(&mut *ws).poll_next(cx) {
            Poll::Ready(Some(Ok(Message::Text(text)))) => match decode(&text) {
                Ok(input) => deliver(input),
                Err(e) => log::warn(&format!("ignoring unreadable server message: {e}")),
            },
            Poll::Ready(Some(Ok(Message::Bytes(_)))) => {
                log::warn("ignoring a binary frame from the server")
            }
            // An `error` event is always followed by `close`, which ends the stream.
            Poll::Ready(Some(Err(WebSocketError::ConnectionError))) => {}
            Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(true),
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// Writes the queued frames, oldest first, while the socket takes them; `true` once none is left.
fn write_queued(ws: &mut WebSocket, outbox: &Outbox, cx: &mut Context) -> bool {
    while let Poll::Ready(Ok(())) = Pin::new(&mut *ws).poll_ready(cx) {
        let next = {
            let mut frames = outbox.frames.borrow_mut();
            (!frames.is_empty()).then(|| frames.remove(0))
        };
        let Some(text) = next else {
            return true;
        };
        if Pin::new(&mut *ws).start_send(Message::Text(text)).is_err() {
            log::warn("cannot send to the server");
        }
    }
    false
}

/// A client frame: the JSON text of the message's JS value, which is serde_json's text of it
/// (the protocol's golden JSON).
fn encode(msg: &ClientMessage) -> Result<String, Error> {
    Ok(JSON::stringify(&convert::to_js(msg)?)?.into())
}

/// A server frame: the browser parses the JSON, the protocol crate decodes it by its `type`.
/// A message of a resumable session carries its `seq` beside its fields.
fn decode(text: &str) -> Result<Input, String> {
    let value = JSON::parse(text).map_err(|e| js_message(&e))?;
    let Some(tag) = convert::field(&value, "type").as_string() else {
        return Err(format!("no type in {text}"));
    };
    let seq = convert::field(&value, "seq").as_f64();
    let message = ServerMessage::from_tagged(&tag, serde_wasm_bindgen::Deserializer::from(value))
        .map_err(|e| format!("{} in {text}", js_message(&e.into())))?;
    Ok(match seq {
        // Seqs count messages of one session: far below 2^53, so exact as a JS number.
        Some(seq) => Input::Sequenced {
            seq: seq as u64,
            message,
        },
        None => Input::Server(message),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;
    use wasm_bindgen_test::*;

    wasm_bindgen_test_configure!(run_in_browser);

    /// Client frames are the golden JSON the server expects, `null` where a candidate lacks a
    /// field, no key where an optional field is skipped.
    #[wasm_bindgen_test]
    fn frames_encode_as_the_golden_json() {
        use calling_protocol::{CallType, IceCandidate, Signal};
        let s = |x: &str| x.to_owned();
        let candidate = |mid: Option<&str>, line| {
            Signal::Candidate(IceCandidate {
                candidate: s("candidate:1 1 udp 1 127.0.0.1 9 typ host"),
                sdp_mid: mid.map(s),
                sdp_m_line_index: line,
            })
        };
        for msg in [
            ClientMessage::Login {
                sdk_app_id: 1_400_000_000,
                user_id: s("alice"),
                user_sig: s("eJyrVgrx"),
                protocol_version: 1,
                resumable: false,
            },
            ClientMessage::Ping,
            ClientMessage::Invite {
                request_id: 3,
                user_ids: vec![s("bob"), s("é\n\"")],
                call_type: CallType::Video,
                is_group: false,
                group_id: None,
                room_id: None,
            },
            ClientMessage::Invite {
                request_id: 4,
                user_ids: vec![],
                call_type: CallType::Audio,
                is_group: true,
                group_id: Some(s("g")),
                room_id: Some(u32::MAX),
            },
            ClientMessage::Accept {
                request_id: 5,
                invite_id: s("i"),
            },
            ClientMessage::Reject { invite_id: s("i") },
            ClientMessage::Hangup { room_id: 7 },
            ClientMessage::Relay {
                room_id: 7,
                to: s("bob"),
                signal: candidate(None, None),
            },
            ClientMessage::Relay {
                room_id: 7,
                to: s("bob"),
                signal: candidate(Some("0"), Some(1)),
            },
            ClientMessage::Relay {
                room_id: 7,
                to: s("bob"),
                signal: Signal::SwitchModeAck {
                    call_type: CallType::Audio,
                    ok: true,
                },
            },
            ClientMessage::Logout,
        ] {
            let golden = serde_json::to_string(&msg).expect("json");
            assert_eq!(encode(&msg).expect("encode"), golden);
        }
        let nulls = ClientMessage::Relay {
            room_id: 3,
            to: s("v"),
            signal: candidate(None, None),
        };
        assert!(encode(&nulls)
            .expect("encode")
            .ends_with(r#""sdpMid":null,"sdpMLineIndex":null}}"#));
    }

    /// Every server message type, decoded through serde-wasm-bindgen as serde_json parses it.
    #[wasm_bindgen_test]
    fn frames_decode_as_serde_json_parses_them() {
        for json in [
            r#"{"type":"loginOk","userId":"a","iceServers":[{"urls":["stun:127.0.0.1:3478"]},{"urls":["turn:x"],"username":"u","credential":"c"}],"ringTimeoutSecs":30,"heartbeatTimeoutSecs":10}"#,
            r#"{"type":"pong"}"#,
            r#"{"type":"error","requestId":4,"code":"invalidParam","message":"m"}"#,
            r#"{"type":"error","code":"brandNew","message":"m"}"#,
            r#"{"type":"inviteSent","requestId":1,"inviteId":"i","roomId":4000000000,"userIds":["b"]}"#,
            r#"{"type":"invited","inviteId":"i","roomId":1,"sponsor":"s","userIds":["b","c"],"callType":"audio","isGroup":true,"groupId":"g"}"#,
            r#"{"type":"joined","requestId":1,"roomId":1,"callType":"video","members":["a"],"pending":[]}"#,
            r#"{"type":"accepted","roomId":1,"inviteId":"i","userId":"u"}"#,
            r#"{"type":"rejected","roomId":1,"inviteId":"i","userId":"u"}"#,
            r#"{"type":"busy","roomId":1,"inviteId":"i","userId":"u"}"#,
            r#"{"type":"noResponse","roomId":1,"inviteId":"i","userIds":["u"]}"#,
            r#"{"type":"cancelled","roomId":1,"inviteId":"i","sponsor":"s"}"#,
            r#"{"type":"inviteTimeout","roomId":1,"inviteId":"i","sponsor":"s"}"#,
            r#"{"type":"inviteeList","roomId":1,"userIds":[]}"#,
            r#"{"type":"memberLeft","roomId":1,"userId":"u"}"#,
            r#"{"type":"callEnded","roomId":1,"userId":"u","durationSecs":65,"reason":"noResponse"}"#,
            r#"{"type":"signal","roomId":1,"from":"a","signal":{"kind":"candidate","candidate":"c","sdpMid":null,"sdpMLineIndex":null}}"#,
            r#"{"type":"signal","roomId":1,"from":"a","signal":{"kind":"candidate","candidate":"c","sdpMid":"0","sdpMLineIndex":1}}"#,
            r#"{"type":"signal","roomId":1,"from":"a","signal":{"kind":"switchModeAck","callType":"audio","ok":true}}"#,
            r#"{"type":"signal","roomId":1,"from":"a","signal":{"sdp":"v=0","kind":"offer"}}"#,
            r#"{"type":"signal","roomId":1,"from":"a","signal":{"kind":"answer","sdp":"v=0","audio":true}}"#,
            r#"{"type":"signal","roomId":1,"from":"a","signal":{"video":false,"kind":"media","audio":true}}"#,
            r#"{"type":"signal","roomId":1,"from":"a","signal":{"kind":"switchMode","callType":"video"}}"#,
            r#"{"type":"signal","roomId":1,"from":"a","signal":{"kind":"fromTheFuture"}}"#,
            r#"{"type":"kicked"}"#,
            r#"{"type":"fromTheFuture","x":[1]}"#,
        ] {
            let expected: ServerMessage = serde_json::from_str(json).expect(json);
            assert_eq!(decode(json).expect(json), Input::Server(expected), "{json}");
        }
        assert_eq!(
            decode(r#"{"type":"fromTheFuture"}"#).expect("unknown"),
            Input::Server(ServerMessage::Unknown)
        );
        // A resumable session's message: its seq beside its own fields.
        assert_eq!(
            decode(r#"{"seq":12,"type":"memberLeft","roomId":7,"userId":"bob"}"#).expect("seq"),
            Input::Sequenced {
                seq: 12,
                message: serde_json::from_str(r#"{"type":"memberLeft","roomId":7,"userId":"bob"}"#)
                    .expect("memberLeft"),
            }
        );
    }

    #[wasm_bindgen_test]
    fn unreadable_frames_are_errors() {
        for bad in [
            r#"{"type":"memberLeft","roomId":-1,"userId":"u"}"#,
            r#"{"type":"memberLeft","roomId":1.5,"userId":"u"}"#,
            r#"{"type":"memberLeft","roomId":1}"#,
            r#"{"type":"inviteeList","roomId":1,"userIds":[1]}"#,
            r#"{"type":"callEnded","roomId":1,"userId":"u","durationSecs":1,"reason":"meteor"}"#,
            r#"{"type":"signal","roomId":1,"from":"a","signal":{"kind":"offer"}}"#,
            r#"{"type":"signal","roomId":1,"from":"a","signal":{"kind":"media","audio":"yes","video":true}}"#,
            r#"{"type":"signal","roomId":1,"from":"a","signal":{"kind":"candidate","sdpMid":"0"}}"#,
            r#"{"type":"signal","roomId":1,"from":"a","signal":{"kind":"switchMode","callType":"hologram"}}"#,
            r#"{"type":7}"#,
            r#"{"noType":1}"#,
            r#"[1]"#,
            r#"not json"#,
        ] {
            assert!(decode(bad).is_err(), "{bad} decoded");
        }
    }

    /// The server refuses a bad login and closes the socket: its error arrives, then the loss,
    /// and nothing after it.
    #[wasm_bindgen_test]
    async fn a_close_by_the_server_is_reported_once_after_its_messages() {
        let Some(server) = option_env!("CALLING_SERVER") else {
            return;
        };
        let seen = Rc::new(RefCell::new(Vec::new()));
        let record = seen.clone();
        let signaling = Signaling::open(&format!("ws://{server}/ws"), move |i| {
            record.borrow_mut().push(match i {
                Input::Server(ServerMessage::Error(e)) => format!("error {:?}", e.code),
                Input::SignalingClosed => "lost".to_owned(),
                other => format!("{other:?}"),
            })
        })
        .await
        .expect("connect");
        let login = ClientMessage::Login {
            sdk_app_id: 1,
            user_id: "u".into(),
            user_sig: "x".into(),
            protocol_version: calling_protocol::PROTOCOL_VERSION,
            resumable: false,
        };
        signaling.send(&login).expect("send");
        let start = js_sys::Date::now();
        while seen.borrow().last().map(String::as_str) != Some("lost") {
            assert!(
                js_sys::Date::now() - start < 10_000.0,
                "{:?}",
                seen.borrow()
            );
            next_turn().await;
        }
        assert_eq!(seen.borrow().len(), 2, "{:?}", seen.borrow());
        assert!(seen.borrow()[0].starts_with("error"), "{:?}", seen.borrow());
        // Sending after the loss is an error, not a panic.
        next_turn().await;
        assert!(signaling.send(&ClientMessage::Ping).is_err());
    }

    #[wasm_bindgen::prelude::wasm_bindgen(inline_js = "
        let written = 0;
        export function countWrites() {
          if (WebSocket.prototype.countedSend) return;
          const send = WebSocket.prototype.send;
          WebSocket.prototype.send = function (data) { written += 1; return send.call(this, data); };
          WebSocket.prototype.countedSend = true;
        }
        export function writes() { return written; }
    ")]
    extern "C" {
        /// From now on, every frame any page's socket is given is counted.
        #[wasm_bindgen(js_name = countWrites)]
        fn count_writes();
        fn writes() -> u32;
    }

    /// A frame sent on an open socket is in the browser's hands when `send` returns, not
    /// after whatever the caller does next (a hangup's frame before its connections close).
    #[wasm_bindgen_test]
    async fn a_frame_is_written_before_send_returns() {
        let Some(server) = option_env!("CALLING_SERVER") else {
            return;
        };
        let signaling = Signaling::open(&format!("ws://{server}/ws"), |_| {})
            .await
            .expect("connect");
        count_writes();
        for n in 1..=3 {
            let before = writes();
            signaling.send(&ClientMessage::Ping).expect("send");
            assert_eq!(writes(), before + 1, "frame {n} was not written by send");
        }
    }

    /// Dropping the connection from inside the handler of a message (as a logout or a kick
    /// does) ends it there: the message queued behind it is not handed on, nor is the close.
    #[wasm_bindgen_test]
    async fn dropping_the_connection_in_a_handler_stops_everything_after() {
        let Some(server) = option_env!("CALLING_SERVER") else {
            return;
        };
        let url = format!("ws://{server}/ws");
        let seen = Rc::new(RefCell::new(Vec::new()));
        let holder: Rc<RefCell<Option<Signaling>>> = Rc::default();
        let (record, hold) = (seen.clone(), holder.clone());
        let signaling = Signaling::open(&url, move |i| {
            record
                .borrow_mut()
                .push(matches!(i, Input::SignalingClosed));
            drop(hold.borrow_mut().take());
        })
        .await
        .expect("connect");
        // Before login every frame but login is refused: two frames, two error replies.
        signaling.send(&ClientMessage::Ping).expect("send");
        signaling.send(&ClientMessage::Ping).expect("send");
        holder.replace(Some(signaling));
        // A second connection gets the same two replies; once it has them, so would the first.
        let control = Rc::new(RefCell::new(0));
        let count = control.clone();
        let other = Signaling::open(&url, move |_| *count.borrow_mut() += 1)
            .await
            .expect("connect");
        other.send(&ClientMessage::Ping).expect("send");
        other.send(&ClientMessage::Ping).expect("send");
        let start = js_sys::Date::now();
        while *control.borrow() < 2 || seen.borrow().is_empty() {
            assert!(js_sys::Date::now() - start < 10_000.0, "no replies");
            next_turn().await;
        }
        next_turn().await;
        assert_eq!(*seen.borrow(), vec![false], "only the first reply");
        assert!(holder.borrow().is_none());
    }

    /// Yields to the browser's event loop once (a zero-delay timer).
    async fn next_turn() {
        let turn = js_sys::Promise::new(&mut |resolve, _| {
            let window = web_sys::window().expect("window");
            window
                .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0)
                .expect("setTimeout");
        });
        wasm_bindgen_futures::JsFuture::from(turn)
            .await
            .expect("timer");
    }
}
