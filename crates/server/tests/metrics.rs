//! `GET /metrics`: scraped over HTTP and read with a Prometheus text-format parser; each
//! counter and gauge must move with the flow that should move it, and only with it.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use calling_protocol::{ClientMessage, ErrorCode, RelayedSignal, ServerMessage, Signal};
use common::*;
use prometheus_parse::{Sample, Scrape, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One scrape: every sample by metric name and its labels.
struct Metrics {
    samples: Vec<Sample>,
    text: String,
}

impl Metrics {
    /// The value of `name` whose labels include `labels` (a counter, gauge or untyped sample);
    /// for a histogram, its count (the `+Inf` bucket).
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<f64> = self
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match &s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
                Value::Histogram(buckets) => buckets
                    .iter()
                    .find(|b| b.less_than.is_infinite())
                    .map(|b| b.count)
                    .expect("a +Inf bucket"),
                Value::Summary(_) => panic!("{name} is a summary"),
            })
            .collect();
        assert_eq!(found.len(), 1, "{name}{labels:?} in\n{}", self.text);
        found[0]
    }

    fn outcome(&self, outcome: &str) -> f64 {
        self.get("calling_invitation_outcomes_total", &[("outcome", outcome)])
    }

    fn limit(&self, limit: &str) -> f64 {
        self.get("calling_limit_hits_total", &[("limit", limit)])
    }

    fn sessions(&self) -> f64 {
        self.get("calling_sessions", &[("app", &APP.to_string())])
    }
}

/// `GET /metrics` on `addr` over a plain HTTP/1.1 connection.
async fn scrape(addr: SocketAddr) -> Metrics {
    let response = tokio::time::timeout(DEADLINE, async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /metrics HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        tcp.read_to_string(&mut response).await.unwrap();
        response
    })
    .await
    .expect("/metrics answers within the deadline");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let scrape = Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap();
    Metrics {
        samples: scrape.samples,
        text: body.to_string(),
    }
}

/// Scrapes until `check` holds (counts of work a socket task finishes after the client saw
/// its effect, such as the end of a connection), within the deadline.
async fn scrape_until(addr: SocketAddr, check: impl Fn(&Metrics) -> bool) -> Metrics {
    let started = tokio::time::Instant::now();
    loop {
        let m = scrape(addr).await;
        if check(&m) {
            return m;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "metrics never matched:\n{}",
            m.text
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn sessions_calls_outcomes_and_relays_are_counted() {
    let server = start(config()).await;
    let addr = server.addr;
    let m0 = scrape(addr).await;
    assert_eq!(m0.sessions(), 0.0);
    assert_eq!(m0.get("calling_logins_total", &[]), 0.0);
    assert_eq!(m0.get("calling_calls", &[]), 0.0);
    // A single process has no Redis, nor its metrics.
    assert!(!m0.text.contains("calling_redis_"), "{}", m0.text);

    // Accepted: a call with its latencies.
    let (mut alice, mut bob, room, _) = connected_pair(&server).await;
    let m1 = scrape(addr).await;
    assert_eq!(m1.sessions(), 2.0);
    assert_eq!(m1.get("calling_logins_total", &[]), 2.0);
    assert_eq!(m1.get("calling_calls", &[]), 1.0);
    assert_eq!(m1.get("calling_invitations_ringing", &[]), 0.0);
    assert_eq!(m1.outcome("accepted"), 1.0);
    assert_eq!(m1.get("calling_ring_latency_seconds", &[]), 1.0);
    assert_eq!(m1.get("calling_accept_latency_seconds", &[]), 1.0);

    // Relayed signals: messages, and bytes as the recipient got them.
    let signal = Signal::Offer { sdp: "v=0".into() };
    let mut bytes = 0;
    for _ in 0..3 {
        alice.relay(room, "bob", signal.clone()).await;
        let got = bob.recv().await;
        assert_eq!(
            got,
            ServerMessage::Signal(RelayedSignal {
                room_id: room,
                from: "alice".into(),
                signal: signal.clone()
            })
        );
        bytes += serde_json::to_string(&got).unwrap().len();
    }
    let m2 = scrape(addr).await;
    assert_eq!(m2.get("calling_relayed_signals_total", &[]), 3.0);
    assert_eq!(
        m2.get("calling_relayed_signal_bytes_total", &[]),
        bytes as f64
    );

    // Busy: dave calls bob, who is in a call.
    let mut dave = Client::login(addr, "dave").await;
    dave.invite(&["bob"], None).await;
    assert!(matches!(dave.recv().await, ServerMessage::Busy(_)));
    // Rejected: alice invites carol into the call, carol declines.
    let mut carol = Client::login(addr, "carol").await;
    alice.invite(&["carol"], Some(room)).await;
    let invite = carol.invited().await;
    let m3 = scrape(addr).await;
    assert_eq!(m3.outcome("busy"), 1.0);
    assert_eq!(m3.get("calling_invitations_ringing", &[]), 1.0);
    carol
        .send(&ClientMessage::Reject {
            invite_id: invite.clone(),
        })
        .await;
    loop {
        if let ServerMessage::Rejected(r) = alice.recv().await {
            assert_eq!(r.invite_id, invite);
            break;
        }
    }
    let m4 = scrape(addr).await;
    assert_eq!(m4.outcome("rejected"), 1.0);
    assert_eq!(m4.get("calling_invitations_ringing", &[]), 0.0);

    // Cancelled: bob hangs up, alice invites carol again and hangs up while it rings.
    bob.send(&ClientMessage::Hangup { room_id: room }).await;
    loop {
        if let ServerMessage::CallEnded(_) = alice.recv().await {
            break;
        }
    }
    assert_eq!(scrape(addr).await.get("calling_calls", &[]), 0.0);
    let (room2, _) = alice.invite(&["carol"], None).await;
    carol.invited().await;
    alice.send(&ClientMessage::Hangup { room_id: room2 }).await;
    assert!(matches!(carol.recv().await, ServerMessage::Cancelled(_)));
    let m5 = scrape(addr).await;
    assert_eq!(m5.outcome("cancelled"), 1.0);
    assert_eq!(m5.get("calling_calls", &[]), 0.0);
    // Nothing else moved the other outcomes.
    assert_eq!(m5.outcome("accepted"), 1.0);
    assert_eq!(m5.outcome("timed_out"), 0.0);
    assert_eq!(m5.get("calling_ring_latency_seconds", &[]), 3.0);

    // Logout: the session leaves the gauge.
    assert_eq!(m5.sessions(), 4.0);
    dave.send(&ClientMessage::Logout).await;
    dave.closed().await;
    scrape_until(addr, |m| m.sessions() == 3.0).await;
    // Labels never carry a user or room.
    let text = scrape(addr).await.text;
    for secret in ["alice", "bob", "carol", &room.to_string(), KEY] {
        assert!(!text.contains(secret), "{secret} in\n{text}");
    }
}

#[tokio::test]
async fn an_invitation_that_times_out_is_counted_once_per_invitee() {
    let server = start_ringing(Duration::from_millis(300)).await;
    let mut alice = Client::login(server.addr, "alice").await;
    let mut bob = Client::login(server.addr, "bob").await;
    // carol is offline: her invitation times out too, and the inviter hears of both.
    alice.invite(&["bob", "carol"], None).await;
    bob.invited().await;
    assert!(matches!(bob.recv().await, ServerMessage::InviteTimeout(_)));
    loop {
        if let ServerMessage::NoResponse(n) = alice.recv().await {
            assert_eq!(n.user_ids.len(), 2);
            break;
        }
    }
    let m = scrape(server.addr).await;
    assert_eq!(m.outcome("timed_out"), 2.0);
    assert_eq!(m.outcome("cancelled"), 0.0);
    assert_eq!(m.get("calling_invitations_ringing", &[]), 0.0);
}

#[tokio::test]
async fn outcomes_nobody_online_hears_of_are_counted_too() {
    let server = start_ringing(Duration::from_secs(30)).await;
    let addr = server.addr;
    let mut alice = Client::login(addr, "alice").await;
    let mut bob = Client::login(addr, "bob").await;
    let mut carol = Client::login(addr, "carol").await;

    // Cancelled, offline: dave is not logged in; his invitation ends with erin's hangup.
    let mut erin = Client::login(addr, "erin").await;
    let (room, _) = erin.invite(&["dave"], None).await;
    erin.send(&ClientMessage::Hangup { room_id: room }).await;
    scrape_until(addr, |m| m.outcome("cancelled") == 1.0).await;

    // Rejected, inviter gone: alice invites bob and carol, bob joins, alice leaves the group
    // call (bob keeps it going), then carol declines: nobody is left to tell, yet it counts.
    let (room, invite) = alice.invite(&["bob", "carol"], None).await;
    bob.invited().await;
    carol.invited().await;
    bob.send(&ClientMessage::Accept {
        request_id: 9,
        invite_id: invite.clone(),
    })
    .await;
    loop {
        if let ServerMessage::Accepted(_) = alice.recv().await {
            break;
        }
    }
    alice.send(&ClientMessage::Hangup { room_id: room }).await;
    loop {
        if let ServerMessage::MemberLeft(_) = bob.recv().await {
            break;
        }
    }
    carol
        .send(&ClientMessage::Reject {
            invite_id: invite.clone(),
        })
        .await;
    let m = scrape_until(addr, |m| m.outcome("rejected") == 1.0).await;
    assert_eq!(m.outcome("accepted"), 1.0);
    assert_eq!(m.outcome("cancelled"), 1.0);
    assert_eq!(m.outcome("busy") + m.outcome("timed_out"), 0.0);
}

#[tokio::test]
async fn limit_hits_are_counted_by_kind() {
    let mut config = config();
    config.limits.login_timeout = Duration::from_millis(300);
    config.limits.max_connections_per_address = 2;
    config.limits.header_timeout = Duration::from_millis(300);
    let server = start(config).await;
    let addr = server.addr;

    // A socket that never logs in counts as pending until the login deadline closes it.
    let mut idle = Client::connect(addr).await;
    let m = scrape(addr).await;
    // The scrape's own connection is not logged in either.
    assert_eq!(m.get("calling_pending_connections", &[]), 2.0);
    assert_eq!(idle.closed().await, Closed::Code(1008));
    scrape_until(addr, |m| {
        m.limit("login_timeout") == 1.0 && m.get("calling_pending_connections", &[]) == 1.0
    })
    .await;

    // The rate limit: every message gets one reply, a pong or a refusal; each refusal is a hit.
    let mut flood = Client::login(addr, "flood").await;
    let sent = 260;
    for _ in 0..sent {
        flood.send(&ClientMessage::Ping).await;
    }
    let mut refused = 0;
    for _ in 0..sent {
        match flood.recv().await {
            ServerMessage::Pong => {}
            ServerMessage::Error(e) if e.code == ErrorCode::RateLimited => refused += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(refused > 0, "the burst went over the limit");
    let m = scrape(addr).await;
    assert_eq!(m.limit("rate_limited"), f64::from(refused));

    // The header timeout: half a request, then nothing, until the server hangs up.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: te")
        .await
        .unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(DEADLINE, slow.read_to_end(&mut rest))
        .await
        .expect("the server hangs up on a slow request")
        .ok();
    let m = scrape_until(addr, |m| m.limit("header_timeout") >= 1.0).await;
    assert_eq!(m.limit("header_timeout"), 1.0);
    // The per-address cap: two connections from 127.0.0.2 fill it, its third is refused.
    let from = |_n: u8| async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        socket.connect(addr).await.unwrap()
    };
    let _a = from(1).await;
    let _b = from(2).await;
    scrape_until(addr, |m| m.get("calling_pending_connections", &[]) >= 3.0).await;
    let mut third = from(3).await;
    let mut reply = String::new();
    tokio::time::timeout(DEADLINE, third.read_to_string(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    let m = scrape(addr).await;
    assert_eq!(m.limit("max_connections_per_address"), 1.0);
    // Limits that were not hit stay at zero.
    assert_eq!(m.limit("flood"), 0.0);
    assert_eq!(m.limit("frame_too_big"), 0.0);
    assert_eq!(m.limit("max_connections"), 0.0);
}

#[tokio::test]
async fn resumes_are_counted_by_result() {
    let server = start(config()).await;
    let addr = server.addr;
    let (alice, grant) = Client::login_resumable(addr, "alice").await;
    alice.vanish();
    let mut back = Client::resume(addr, "alice", &grant.token, 0).await;
    assert!(matches!(back.recv().await, ServerMessage::Resumed(_)));
    let mut stranger = Client::resume(addr, "alice", "not-a-token", 0).await;
    assert_eq!(stranger.expect_error().await.0, ErrorCode::ResumeRefused);
    let m = scrape(addr).await;
    assert_eq!(
        m.get("calling_resumes_total", &[("result", "resumed")]),
        1.0
    );
    assert_eq!(
        m.get("calling_resumes_total", &[("result", "refused")]),
        1.0
    );
    // A resume is not a login.
    assert_eq!(m.get("calling_logins_total", &[]), 1.0);
    assert_eq!(m.sessions(), 1.0);
}

/// With `--metrics-listen`, `/metrics` is served there and not on the main listener.
#[tokio::test]
async fn metrics_on_their_own_listener_leave_the_main_one() {
    let mut config = config();
    config.metrics_on_main = false;
    let server = start(config).await;
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = metrics.local_addr().unwrap();
    tokio::spawn(calling_server::serve_metrics(metrics, server.hub.clone()));
    let _alice = Client::login(server.addr, "alice").await;
    assert_eq!(scrape(metrics_addr).await.sessions(), 1.0);

    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(DEADLINE, tcp.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
}
