//! Harness for the hostile-client tests: the real `calling-server` binary in its own process
//! (so its memory can be read from /proc), clients that speak raw WebSocket frames, and a
//! probe that measures how fast a logged-in user's pings are answered meanwhile.
//!
//! Messages are read as JSON values by their `type`, not as `ServerMessage`, so these tests
//! check the wire as any client sees it.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use calling_protocol::{ClientMessage, PROTOCOL_VERSION};
use calling_server::usersig;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const APP: u64 = 1_400_000_001;
pub const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// Longest any single expected event may take.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// A `calling-server` process, killed when dropped.
pub struct ServerProcess {
    pub addr: SocketAddr,
    /// Its number in a cluster (`--redis`), as it logged it.
    pub node: Option<u64>,
    child: Child,
}

impl ServerProcess {
    /// Starts the binary on a free loopback port with one app and these extra flags.
    pub async fn start(flags: &[&str]) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_calling-server"))
            .args(["--listen", "127.0.0.1:0", "--app", &format!("{APP}={KEY}")])
            .args(flags)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("calling-server starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut lines = BufReader::new(stderr).lines();
        // A cluster node logs its number after it listens.
        let clustered = flags.contains(&"--redis");
        let (addr, node) = tokio::time::timeout(DEADLINE, async {
            let (mut addr, mut node) = (None, None);
            while let Some(line) = lines.next_line().await.expect("server log") {
                if line.contains("joined the cluster") {
                    node = line
                        .split("node=")
                        .nth(1)
                        .and_then(|rest| rest.split_whitespace().next()?.parse().ok());
                }
                if let Some(rest) = line.split("listen=").nth(1) {
                    let listen = rest.split_whitespace().next().unwrap_or_default();
                    addr = Some(listen.parse::<SocketAddr>().expect("listen address"));
                }
                if let Some(addr) = addr.filter(|_| node.is_some() || !clustered) {
                    return (addr, node);
                }
            }
            panic!("calling-server exited before listening");
        })
        .await
        .expect("calling-server listens within the deadline");
        // Keep draining its log so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        ServerProcess { addr, node, child }
    }

    /// Sends the process a signal by name (`TERM`, `INT`, …).
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("server is running");
        let sent = std::process::Command::new("kill")
            .args(["-s", name, &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -s {name} {pid}");
    }

    /// The process's exit status, if it exits within `within`.
    pub async fn exit_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(within, self.child.wait())
            .await
            .ok()
            .map(|status| status.expect("wait for calling-server"))
    }

    /// Whether the process has exited by now.
    pub fn has_exited(&mut self) -> bool {
        self.child
            .try_wait()
            .expect("poll calling-server")
            .is_some()
    }

    /// How many sockets the server process holds open (listening socket included).
    pub fn open_sockets(&self) -> usize {
        let pid = self.child.id().expect("server is running");
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("proc fd")
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .filter(|target| target.to_string_lossy().starts_with("socket:"))
            .count()
    }

    /// (current, peak) resident memory of the server, in KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        let pid = self.child.id().expect("server is running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .expect("memory field")
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn login_msg(user: &str) -> String {
    serde_json::to_string(&ClientMessage::Login {
        sdk_app_id: APP,
        user_id: user.into(),
        user_sig: usersig::generate(APP, KEY, user, now_unix(), 3600, None),
        protocol_version: PROTOCOL_VERSION,
        resumable: false,
    })
    .unwrap()
}

pub fn ping_msg() -> String {
    serde_json::to_string(&ClientMessage::Ping).unwrap()
}

/// The loopback address 127.0.0.`n` (all of 127/8 is on `lo`), to play distinct clients.
pub fn loopback(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// A TCP connection to `server` from the address `from`.
pub async fn tcp_from(from: IpAddr, server: SocketAddr) -> std::io::Result<TcpStream> {
    tcp_with(from, server, None).await
}

/// A TCP connection from `from`, with a receive buffer of about `recv_buffer` bytes if given.
pub async fn tcp_with(
    from: IpAddr,
    server: SocketAddr,
    recv_buffer: Option<u32>,
) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(bytes) = recv_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(server).await
}

/// How a connection ended, as the client saw it.
#[derive(Debug, PartialEq)]
pub enum Closed {
    Code(u16),
    /// Closed without a close frame.
    Abrupt,
}

pub struct Client {
    pub name: String,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    /// A WebSocket to `/ws` from 127.0.0.1.
    pub async fn connect(addr: SocketAddr) -> Client {
        Client::connect_from(loopback(1), addr).await
    }

    pub async fn connect_from(from: IpAddr, addr: SocketAddr) -> Client {
        Client::connect_with(from, addr, None).await
    }

    pub async fn connect_with(from: IpAddr, addr: SocketAddr, recv_buffer: Option<u32>) -> Client {
        Client::try_connect_with(from, addr, recv_buffer)
            .await
            .expect("websocket handshake")
    }

    /// Like [`Client::connect_from`], but a refused handshake (a connection cap) is retried
    /// for up to 5 s: the server frees a closed connection's slot only once it has seen
    /// the close, which a test cannot observe directly.
    pub async fn connect_when_admitted(from: IpAddr, addr: SocketAddr) -> Client {
        const PATIENCE: Duration = Duration::from_secs(5);
        let deadline = Instant::now() + PATIENCE;
        loop {
            match Client::try_connect_with(from, addr, None).await {
                Ok(c) => return c,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => panic!("not admitted within {PATIENCE:?}: {e}"),
            }
        }
    }

    async fn try_connect_with(
        from: IpAddr,
        addr: SocketAddr,
        recv_buffer: Option<u32>,
    ) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
        let tcp = tcp_with(from, addr, recv_buffer)
            .await
            .expect("tcp connect");
        let (ws, _) =
            tokio_tungstenite::client_async(format!("ws://{addr}/ws"), MaybeTlsStream::Plain(tcp))
                .await?;
        Ok(Client {
            name: String::new(),
            ws,
        })
    }

    /// Connects and logs in as `user`, checking `loginOk`.
    pub async fn login(addr: SocketAddr, user: &str) -> Client {
        Client::connect(addr).await.logged_in_as(user).await
    }

    /// Logs this connection in as `user`, checking `loginOk`.
    pub async fn logged_in_as(self, user: &str) -> Client {
        let mut c = self;
        c.name = user.into();
        c.send_text(&login_msg(user)).await;
        let reply = c.recv().await;
        assert_eq!(reply["type"], "loginOk", "{user}: {reply}");
        c
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// Sends without caring whether the server has already closed (for abusive clients).
    pub async fn try_send(&mut self, msg: Message) -> bool {
        self.ws.send(msg).await.is_ok()
    }

    /// Writes bytes straight onto the TCP stream, under the WebSocket layer.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> bool {
        let MaybeTlsStream::Plain(tcp) = self.ws.get_mut() else {
            unreachable!("plain TCP only")
        };
        tcp.write_all(bytes).await.is_ok()
    }

    /// The next server message as JSON, within [`DEADLINE`].
    pub async fn recv(&mut self) -> Value {
        self.recv_within(DEADLINE).await
    }

    /// The next server message as JSON, within `within`.
    pub async fn recv_within(&mut self, within: Duration) -> Value {
        let name = self.name.clone();
        let next = tokio::time::timeout(within, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).unwrap(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    other => panic!("{name}: expected a message, got {other:?}"),
                }
            }
        })
        .await;
        next.unwrap_or_else(|_| panic!("{name}: no message within {within:?}"))
    }

    /// Closes the connection with a close frame (code 1000) and waits for the server's answer.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        let _ = tokio::time::timeout(DEADLINE, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    /// Reads until the server closes the connection, within `within`; returns how.
    pub async fn closed_within(&mut self, within: Duration) -> Option<Closed> {
        tokio::time::timeout(within, async {
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
        .ok()
    }

    /// One ping's round trip.
    pub async fn ping_rtt(&mut self) -> Duration {
        let started = Instant::now();
        self.send_text(&ping_msg()).await;
        let reply = self.recv().await;
        assert_eq!(reply["type"], "pong", "{}: {reply}", self.name);
        started.elapsed()
    }
}

/// A masked client frame (RFC 6455 §5.2) with an all-zero mask, so the payload goes as is.
/// `declared` is the length in the header, which may exceed the payload actually sent.
pub fn raw_frame(opcode: u8, fin: bool, payload: &[u8], declared: usize) -> Vec<u8> {
    let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
    match declared {
        0..=125 => frame.push(0x80 | declared as u8),
        126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(declared as u16).to_be_bytes());
        }
        _ => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(declared as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(payload);
    frame
}

pub const OP_CONTINUATION: u8 = 0;
pub const OP_TEXT: u8 = 1;
pub const OP_PING: u8 = 9;

/// Ping round trips of a logged-in user, measured while something else goes on. The user
/// runs on its own thread and runtime, so the attackers' client-side work in the test does not
/// delay it; only the server can.
pub struct Probe {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Vec<Duration>>>,
    pub samples: Vec<Duration>,
}

impl Probe {
    /// Logs in `user` and starts pinging every 50 ms (under the rate limit).
    pub async fn start(addr: SocketAddr, user: &str) -> Probe {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let (ready, is_ready) = tokio::sync::oneshot::channel();
        let user = user.to_string();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("probe runtime");
            runtime.block_on(async move {
                let mut client = Client::login(addr, &user).await;
                let _ = ready.send(());
                let mut samples = Vec::new();
                let mut pace = tokio::time::interval(Duration::from_millis(50));
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        _ = pace.tick() => samples.push(client.ping_rtt().await),
                    }
                }
                samples.push(client.ping_rtt().await);
                samples
            })
        });
        is_ready.await.expect("the probe logged in");
        Probe {
            stop: Some(stop),
            thread: Some(thread),
            samples: Vec::new(),
        }
    }

    /// Stops pinging; the round trips seen (at least one, after the stop).
    pub fn finish(mut self) -> Probe {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let samples = self
            .thread
            .take()
            .map(|t| t.join().expect("probe thread"))
            .unwrap_or_default();
        Probe {
            stop: None,
            thread: None,
            samples,
        }
    }

    pub fn max(&self) -> Duration {
        self.samples.iter().copied().max().unwrap_or_default()
    }

    pub fn median(&self) -> Duration {
        let mut sorted = self.samples.clone();
        sorted.sort();
        sorted[sorted.len() / 2]
    }

    /// Asserts the pings stayed fast: a few milliseconds typically (medians of 0.7–4 ms were
    /// measured under these attacks), never a stall a user would notice. The bounds leave room
    /// for the attackers running on the same two cores, often shared with other builds; a
    /// stalled server misses them by seconds.
    pub fn assert_fast(&self, what: &str) {
        eprintln!(
            "{what}: {} pings, median {:?}, max {:?}",
            self.samples.len(),
            self.median(),
            self.max()
        );
        assert!(
            self.median() < Duration::from_millis(15),
            "{what}: median ping {:?}",
            self.median()
        );
        assert!(
            self.max() < Duration::from_millis(250),
            "{what}: slowest ping {:?}",
            self.max()
        );
    }
}
