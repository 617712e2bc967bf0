//! One WebSocket client connection over loopback: where it connects from, how it logs in to
//! either server, and the JSON framing of each protocol.
//!
//! Clients bind to 127.0.0.x source addresses in turn, because one source address only has the
//! ephemeral port range (about 28,000 ports) towards one server address.

use calling_protocol::{ClientMessage, ErrorReply, ServerMessage, PROTOCOL_VERSION};
use futures_util::{SinkExt, StreamExt};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{timeout_at, Instant};
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use calling_server::usersig;

/// A client WebSocket.
pub type Ws = WebSocketStream<TcpStream>;

/// Everything that can go wrong with one client.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("connection closed")]
    Closed,
    #[error("refused: {0}")]
    Refused(String),
    #[error("bad url: {0}")]
    Url(String),
}

/// Where the server is (or its nodes are) and which source addresses the clients use.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The server, or every node of a cluster: the `index`-th client goes to node
    /// `index % nodes.len()`, so the two clients of a pair (indices `2i`, `2i + 1`) are always on
    /// different nodes when there are several.
    nodes: Vec<Node>,
    /// Number of source addresses, 127.0.0.2 upwards; 0 means let the kernel pick (127.0.0.1).
    pub sources: u32,
    /// Clients per source address before moving on to the next one.
    pub per_source: u32,
}

#[derive(Debug, Clone)]
struct Node {
    /// The WebSocket URL without query (e.g. `ws://127.0.0.1:8080/ws`).
    url: String,
    addr: SocketAddr,
}

impl Endpoint {
    /// Parses each of `urls` (at least one) and refuses any host that is not a loopback IP
    /// address: load only ever goes to this machine.
    pub fn new(urls: &[String], sources: u32, per_source: u32) -> Result<Self, ConnError> {
        if urls.is_empty() {
            return Err(ConnError::Url("no server URL".into()));
        }
        let nodes = urls
            .iter()
            .map(|url| Node::new(url))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            nodes,
            sources,
            per_source: per_source.max(1),
        })
    }

    fn node(&self, index: u32) -> &Node {
        &self.nodes[index as usize % self.nodes.len()]
    }

    /// The URL (without query) of the node the `index`-th client connects to.
    pub fn url(&self, index: u32) -> &str {
        &self.node(index).url
    }

    /// Source address for the `index`-th client.
    fn source(&self, index: u32) -> Option<IpAddr> {
        if self.sources == 0 || !self.node(index).addr.is_ipv4() {
            return None;
        }
        let slot = (index / self.per_source) % self.sources;
        // 127.0.0.2 .. 127.0.(sources+1); every one of them is on `lo`.
        let n = 2 + slot;
        Some(IpAddr::V4(Ipv4Addr::new(
            127,
            0,
            (n >> 8) as u8,
            (n & 0xff) as u8,
        )))
    }

    /// TCP connect (from the client's source address) to the `index`-th client's node and
    /// WebSocket handshake to `url` there.
    pub async fn open(&self, index: u32, url: &str) -> Result<Ws, ConnError> {
        let addr = self.node(index).addr;
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(src) = self.source(index) {
            defer_port_choice(&socket)?;
            socket.bind(SocketAddr::new(src, 0))?;
        }
        let stream = socket.connect(addr).await?;
        stream.set_nodelay(true)?;
        // Small buffers: tens of thousands of mostly idle clients live in this one process.
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
        Ok(ws)
    }
}

impl Node {
    fn new(url: &str) -> Result<Self, ConnError> {
        let uri: Uri = url
            .parse()
            .map_err(|e| ConnError::Url(format!("{url}: {e}")))?;
        let host = uri
            .host()
            .ok_or_else(|| ConnError::Url(format!("{url}: no host")))?;
        let ip: IpAddr = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| ConnError::Url(format!("{url}: host must be a loopback IP address")))?;
        if !ip.is_loopback() {
            return Err(ConnError::Url(format!(
                "{url}: {ip} is not a loopback address"
            )));
        }
        let port = uri.port_u16().unwrap_or(80);
        Ok(Node {
            url: url.to_owned(),
            addr: SocketAddr::new(ip, port),
        })
    }
}

/// Sets `IP_BIND_ADDRESS_NO_PORT`: binding to a source address then leaves the port to
/// `connect`, which picks it per destination in constant time. Without it, `bind` searches the
/// whole ephemeral range for a free port and, with tens of thousands bound, that search was
/// most of the load generator's CPU time.
fn defer_port_choice(socket: &TcpSocket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid open socket descriptor, and a pointer/length pair to a live c_int.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            std::ptr::addr_of!(on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Seconds since the Unix epoch, for UserSig issue times.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Sends one text frame.
pub async fn send_text(ws: &mut Ws, text: String) -> Result<(), ConnError> {
    ws.send(Message::Text(text.into())).await?;
    Ok(())
}

/// Next text frame; control frames are skipped, a close or end of stream is [`ConnError::Closed`].
pub async fn recv_text(ws: &mut Ws) -> Result<String, ConnError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_owned()),
            Some(Ok(Message::Close(_))) | None => return Err(ConnError::Closed),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

/// calling-server's protocol.
pub mod ours {
    use super::*;

    /// An app on the server: its SDKAppID and secret key.
    #[derive(Debug, Clone)]
    pub struct App {
        pub id: u64,
        pub key: String,
    }

    pub async fn send(ws: &mut Ws, msg: &ClientMessage) -> Result<(), ConnError> {
        send_text(ws, serde_json::to_string(msg)?).await
    }

    pub async fn recv(ws: &mut Ws) -> Result<ServerMessage, ConnError> {
        Ok(serde_json::from_str(&recv_text(ws).await?)?)
    }

    /// Reads until `pick` returns `Some`, skipping everything else, or fails at `deadline`.
    pub async fn recv_until<T>(
        ws: &mut Ws,
        deadline: Instant,
        what: &'static str,
        mut pick: impl FnMut(ServerMessage) -> Option<T>,
    ) -> Result<T, ConnError> {
        loop {
            let msg = timeout_at(deadline, recv(ws))
                .await
                .map_err(|_| ConnError::Timeout(what))??;
            if let Some(v) = pick(msg) {
                return Ok(v);
            }
        }
    }

    async fn connect(ep: &Endpoint, index: u32, deadline: Instant) -> Result<Ws, ConnError> {
        timeout_at(deadline, ep.open(index, ep.url(index)))
            .await
            .map_err(|_| ConnError::Timeout("connect"))?
    }

    /// Connects and logs in as `user_id`, waiting for `loginOk`.
    pub async fn login(
        ep: &Endpoint,
        index: u32,
        app: &App,
        user_id: &str,
        within: Duration,
    ) -> Result<Ws, ConnError> {
        let (ws, _) = login_with(ep, index, app, user_id, false, within).await?;
        Ok(ws)
    }

    /// [`login`] of a resumable session: also its resume token.
    pub async fn login_resumable(
        ep: &Endpoint,
        index: u32,
        app: &App,
        user_id: &str,
        within: Duration,
    ) -> Result<(Ws, String), ConnError> {
        let (ws, token) = login_with(ep, index, app, user_id, true, within).await?;
        let token = token.ok_or_else(|| ConnError::Refused("no resume token offered".into()))?;
        Ok((ws, token))
    }

    async fn login_with(
        ep: &Endpoint,
        index: u32,
        app: &App,
        user_id: &str,
        resumable: bool,
        within: Duration,
    ) -> Result<(Ws, Option<String>), ConnError> {
        let deadline = Instant::now() + within;
        let mut ws = connect(ep, index, deadline).await?;
        let user_sig = usersig::generate(app.id, &app.key, user_id, unix_now(), 86_400, None);
        let login = ClientMessage::Login {
            sdk_app_id: app.id,
            user_id: user_id.to_owned(),
            user_sig,
            protocol_version: PROTOCOL_VERSION,
            resumable,
        };
        send(&mut ws, &login).await?;
        let outcome = recv_until(&mut ws, deadline, "loginOk", |m| match m {
            ServerMessage::LoginOk(ok) => Some(Ok(ok.resume.map(|grant| grant.token))),
            ServerMessage::Error(ErrorReply { code, message, .. }) => {
                Some(Err(format!("{code:?}: {message}")))
            }
            _ => None,
        })
        .await?;
        let token = outcome.map_err(ConnError::Refused)?;
        Ok((ws, token))
    }

    /// Connects as the `index`-th client and resumes `user_id`'s session with `token` (nothing
    /// received yet), waiting for `resumed`.
    pub async fn resume(
        ep: &Endpoint,
        index: u32,
        app: &App,
        user_id: &str,
        token: &str,
        within: Duration,
    ) -> Result<Ws, ConnError> {
        let deadline = Instant::now() + within;
        let mut ws = connect(ep, index, deadline).await?;
        let resume = ClientMessage::Resume {
            sdk_app_id: app.id,
            user_id: user_id.to_owned(),
            token: token.to_owned(),
            last_seq: 0,
            protocol_version: PROTOCOL_VERSION,
        };
        send(&mut ws, &resume).await?;
        let outcome = recv_until(&mut ws, deadline, "resumed", |m| match m {
            ServerMessage::Resumed(_) => Some(Ok(())),
            ServerMessage::Error(ErrorReply { code, message, .. }) => {
                Some(Err(format!("{code:?}: {message}")))
            }
            ServerMessage::Kicked => Some(Err("kicked".into())),
            _ => None,
        })
        .await?;
        outcome.map_err(ConnError::Refused)?;
        Ok(ws)
    }
}

/// PeerJS's server protocol (`peer` on npm): identity in the URL, JSON `{type, dst, payload}`.
pub mod peerjs {
    use super::*;
    use serde_json::{json, Value};

    /// Connects as `id` and waits for the server's `OPEN`.
    pub async fn login(
        ep: &Endpoint,
        index: u32,
        key: &str,
        id: &str,
        within: Duration,
    ) -> Result<Ws, ConnError> {
        let deadline = Instant::now() + within;
        let url = format!("{}?key={key}&id={id}&token=t{index}", ep.url(index));
        let mut ws = timeout_at(deadline, ep.open(index, &url))
            .await
            .map_err(|_| ConnError::Timeout("connect"))??;
        loop {
            let text = timeout_at(deadline, recv_text(&mut ws))
                .await
                .map_err(|_| ConnError::Timeout("OPEN"))??;
            let v: Value = serde_json::from_str(&text)?;
            match v.get("type").and_then(Value::as_str) {
                Some("OPEN") => return Ok(ws),
                Some("ERROR") | Some("ID-TAKEN") => return Err(ConnError::Refused(text)),
                _ => continue,
            }
        }
    }

    /// The client's keep-alive (PeerJS sends it every 5 s).
    pub fn heartbeat() -> String {
        json!({"type": "HEARTBEAT"}).to_string()
    }

    /// An ICE candidate for `dst`, as the PeerJS client sends it; `stamp` rides in the candidate.
    pub fn candidate(dst: &str, stamp: u128) -> String {
        json!({
            "type": "CANDIDATE",
            "dst": dst,
            "payload": {
                "candidate": {
                    "candidate": super::candidate_line(stamp),
                    "sdpMid": "0",
                    "sdpMLineIndex": 0
                },
                "type": "media",
                "connectionId": "mc_loadgen"
            }
        })
        .to_string()
    }

    /// The stamp of a relayed candidate, if `text` is one.
    pub fn stamp_of(text: &str) -> Option<u128> {
        let v: Value = serde_json::from_str(text).ok()?;
        if v.get("type")?.as_str()? != "CANDIDATE" {
            return None;
        }
        super::stamp_of_line(
            v.get("payload")?
                .get("candidate")?
                .get("candidate")?
                .as_str()?,
        )
    }
}

/// A host candidate line whose foundation carries `stamp` (nanoseconds since the run's start), so
/// the receiver can compute one-way latency without shared state.
pub fn candidate_line(stamp: u128) -> String {
    format!("candidate:{stamp} 1 udp 2122260223 127.0.0.1 50000 typ host generation 0 ufrag loadgen network-id 1")
}

/// Inverse of [`candidate_line`].
pub fn stamp_of_line(line: &str) -> Option<u128> {
    line.strip_prefix("candidate:")?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(urls: &[&str], sources: u32, per_source: u32) -> Result<Endpoint, ConnError> {
        let urls: Vec<String> = urls.iter().map(|u| u.to_string()).collect();
        Endpoint::new(&urls, sources, per_source)
    }

    #[test]
    fn refuses_non_loopback_targets() {
        assert!(endpoint(&["ws://127.0.0.1:8080/ws"], 0, 1).is_ok());
        assert!(endpoint(&["ws://[::1]:8080/ws"], 0, 1).is_ok());
        assert!(endpoint(&["ws://10.0.0.1:8080/ws"], 0, 1).is_err());
        assert!(endpoint(&["ws://example.com/ws"], 0, 1).is_err());
        assert!(endpoint(&["ws://127.0.0.1:8080/ws", "ws://10.0.0.1:8080/ws"], 0, 1).is_err());
        assert!(endpoint(&[], 0, 1).is_err());
    }

    #[test]
    fn spreads_clients_over_source_addresses() {
        let ep = endpoint(&["ws://127.0.0.1:8080/ws"], 3, 2).expect("endpoint");
        let got: Vec<_> = (0..7).map(|i| ep.source(i)).collect();
        let a = |n| Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)));
        assert_eq!(got, vec![a(2), a(2), a(3), a(3), a(4), a(4), a(2)]);
        assert_eq!(
            endpoint(&["ws://127.0.0.1:1/ws"], 0, 2)
                .expect("endpoint")
                .source(5),
            None
        );
    }

    #[test]
    fn spreads_clients_over_nodes_with_each_pair_on_two() {
        let urls = [
            "ws://127.0.0.1:1/ws",
            "ws://127.0.0.1:2/ws",
            "ws://127.0.0.1:3/ws",
        ];
        let ep = endpoint(&urls, 0, 1).expect("endpoint");
        let got: Vec<&str> = (0..6).map(|i| ep.url(i)).collect();
        assert_eq!(got, [urls[0], urls[1], urls[2], urls[0], urls[1], urls[2]]);
        for pair in 0..30 {
            assert_ne!(ep.url(2 * pair), ep.url(2 * pair + 1), "pair {pair}");
        }
    }

    #[test]
    fn stamps_round_trip_through_both_protocols() {
        assert_eq!(
            stamp_of_line(&candidate_line(123_456_789)),
            Some(123_456_789)
        );
        let relayed = peerjs::candidate("b", 42).replace("\"dst\":\"b\"", "\"src\":\"a\"");
        assert_eq!(peerjs::stamp_of(&relayed), Some(42));
        assert_eq!(peerjs::stamp_of(&peerjs::heartbeat()), None);
    }
}
