//! TLS on the server's own listener: `https://` and `wss://` with a certificate generated here,
//! its reload (new connections get the new certificate, open ones stay logged in, a broken file
//! keeps the old one), the handshake under the header timeout and the connection caps, and the
//! real binary's start-up errors and SIGHUP.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use calling_protocol::{ClientMessage, ServerMessage};
use calling_server::tls::Tls;
use common::{config, login_msg, start, DEADLINE};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// A self-signed certificate for `localhost` and 127.0.0.1, as PEM files in `dir`.
struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
}

fn generate() -> (String, String, CertificateDer<'static>) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    (cert.pem(), signing_key.serialize_pem(), cert.der().clone())
}

impl CertFiles {
    fn write(dir: &Path) -> (CertFiles, CertificateDer<'static>) {
        let files = CertFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        let der = files.replace();
        (files, der)
    }

    /// Writes a new certificate and key over the files; returns the certificate.
    fn replace(&self) -> CertificateDer<'static> {
        let (cert, key, der) = generate();
        std::fs::write(&self.cert, cert).unwrap();
        std::fs::write(&self.key, key).unwrap();
        der
    }
}

/// A TLS connection to `addr` trusting only `roots`; returns it and the certificate presented.
async fn connect_tls(
    addr: SocketAddr,
    roots: &[&CertificateDer<'static>],
) -> (TlsStream<TcpStream>, CertificateDer<'static>) {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add((*root).clone()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(store)
    .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = tokio::time::timeout(
        DEADLINE,
        TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .expect("handshake within the deadline")
    .expect("handshake");
    let presented = tls.get_ref().1.peer_certificates().expect("a certificate")[0].clone();
    (tls, presented)
}

struct Wss(WebSocketStream<TlsStream<TcpStream>>);

impl Wss {
    async fn login(
        addr: SocketAddr,
        roots: &[&CertificateDer<'static>],
        user: &str,
    ) -> (Wss, CertificateDer<'static>) {
        let (tls, presented) = connect_tls(addr, roots).await;
        let (ws, _) = tokio_tungstenite::client_async("wss://localhost/ws", tls)
            .await
            .unwrap();
        let mut wss = Wss(ws);
        wss.send(&login_msg(user)).await;
        match wss.recv().await {
            ServerMessage::LoginOk(ok) => assert_eq!(ok.user_id, user),
            other => panic!("{user}: expected loginOk, got {other:?}"),
        }
        (wss, presented)
    }

    async fn send(&mut self, msg: &ClientMessage) {
        let text = serde_json::to_string(msg).unwrap();
        self.0.send(Message::text(text)).await.unwrap();
    }

    async fn recv(&mut self) -> ServerMessage {
        tokio::time::timeout(DEADLINE, async {
            loop {
                match self.0.next().await {
                    Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).unwrap(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    other => panic!("expected a message, got {other:?}"),
                }
            }
        })
        .await
        .expect("a message within the deadline")
    }

    /// Still logged in: a ping is answered.
    async fn alive(&mut self) {
        self.send(&ClientMessage::Ping).await;
        assert_eq!(self.recv().await, ServerMessage::Pong);
    }
}

async fn tls_server(files: &CertFiles) -> (common::Server, Arc<Tls>) {
    let tls = Tls::load(&files.cert, &files.key).unwrap();
    let mut c = config();
    c.tls = Some(tls.clone());
    (start(c).await, tls)
}

#[tokio::test]
async fn https_and_wss_on_the_same_listener() {
    let dir = tempfile::tempdir().unwrap();
    let (files, cert) = CertFiles::write(dir.path());
    let (server, _tls) = tls_server(&files).await;
    let (mut tls, presented) = connect_tls(server.addr, &[&cert]).await;
    assert_eq!(presented, cert);
    tls.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    tokio::time::timeout(DEADLINE, tls.read_to_string(&mut reply))
        .await
        .expect("a reply")
        .ok();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    let (mut alice, _) = Wss::login(server.addr, &[&cert], "alice").await;
    let (mut bob, _) = Wss::login(server.addr, &[&cert], "bob").await;
    alice
        .send(&ClientMessage::Invite {
            request_id: 1,
            user_ids: vec!["bob".into()],
            call_type: calling_protocol::CallType::Video,
            is_group: false,
            group_id: None,
            room_id: None,
        })
        .await;
    assert!(matches!(alice.recv().await, ServerMessage::InviteSent(_)));
    assert!(matches!(bob.recv().await, ServerMessage::Invited(_)));
    // Plain WebSocket to a TLS listener gets nowhere.
    assert!(
        tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_reload_serves_the_new_certificate_and_keeps_open_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let (files, old) = CertFiles::write(dir.path());
    let (server, tls) = tls_server(&files).await;
    let (mut alice, presented) = Wss::login(server.addr, &[&old], "alice").await;
    assert_eq!(presented, old);

    let new = files.replace();
    tls.reload().unwrap();
    assert_eq!(tls.certificate(), new);
    let (mut bob, presented) = Wss::login(server.addr, &[&old, &new], "bob").await;
    assert_eq!(presented, new, "a new connection gets the new certificate");
    alice.alive().await;
    // The two can still call each other: alice's session is whole.
    bob.send(&ClientMessage::Invite {
        request_id: 1,
        user_ids: vec!["alice".into()],
        call_type: calling_protocol::CallType::Audio,
        is_group: false,
        group_id: None,
        room_id: None,
    })
    .await;
    assert!(matches!(bob.recv().await, ServerMessage::InviteSent(_)));
    assert!(matches!(alice.recv().await, ServerMessage::Invited(_)));
}

#[tokio::test]
async fn a_failed_reload_keeps_the_certificate_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let (files, cert) = CertFiles::write(dir.path());
    let (server, tls) = tls_server(&files).await;
    std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();
    let err = tls.reload().unwrap_err().to_string();
    assert!(err.contains("cert.pem"), "{err}");
    // A key that belongs to another certificate is refused too.
    let (other_cert, _, _) = generate();
    std::fs::write(&files.cert, other_cert).unwrap();
    let err = tls.reload().unwrap_err().to_string();
    assert!(err.contains("does not go with"), "{err}");
    std::fs::remove_file(&files.key).unwrap();
    assert!(tls.reload().unwrap_err().to_string().contains("key.pem"));

    let (mut alice, presented) = Wss::login(server.addr, &[&cert], "alice").await;
    assert_eq!(presented, cert);
    alice.alive().await;
}

#[tokio::test]
async fn a_stalled_handshake_holds_a_pending_slot_only_until_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (files, cert) = CertFiles::write(dir.path());
    let tls = Tls::load(&files.cert, &files.key).unwrap();
    let mut c = config();
    c.tls = Some(tls);
    c.limits.max_pending_logins = 1;
    c.limits.header_timeout = Duration::from_millis(500);
    let server = start(c).await;
    // Connects and sends nothing: no handshake.
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    let counted = tokio::time::timeout(DEADLINE, async {
        while server.hub.gate.counts() != (1, 1) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(counted.is_ok(), "the stalled connection counts as pending");
    // Meanwhile the cap is full: another connection is closed at once, without a handshake.
    let mut refused = TcpStream::connect(server.addr).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(DEADLINE, refused.read(&mut buf))
        .await
        .expect("closed at once");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    // The stalled one is closed at the header timeout, freeing the slot.
    let n = tokio::time::timeout(DEADLINE, stalled.read(&mut buf))
        .await
        .expect("closed at the header timeout");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    let freed = tokio::time::timeout(DEADLINE, async {
        while server.hub.gate.counts() != (0, 0) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(freed.is_ok(), "slot freed: {:?}", server.hub.gate.counts());
    let (mut alice, _) = Wss::login(server.addr, &[&cert], "alice").await;
    alice.alive().await;
}

/// The next log line containing `what`, within the deadline.
async fn wait_for_log(
    log: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    what: &str,
) -> String {
    tokio::time::timeout(DEADLINE, async {
        while let Some(line) = log.recv().await {
            if line.contains(what) {
                return line;
            }
        }
        panic!("the log ended before {what:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("no {what:?} in the log within {DEADLINE:?}"))
}

fn calling_server() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_calling-server"));
    command
        .args([
            "--listen",
            "127.0.0.1:0",
            "--app",
            &format!("{}={}", common::APP, common::KEY),
        ])
        .env_remove("CALLING_TLS_CERT")
        .env_remove("CALLING_TLS_KEY")
        .kill_on_drop(true);
    command
}

async fn start_up_error(args: &[&str]) -> String {
    let output = tokio::time::timeout(DEADLINE, calling_server().args(args).output())
        .await
        .expect("exits at once")
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn unusable_certificates_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let (files, _) = CertFiles::write(dir.path());
    let cert = files.cert.to_str().unwrap();
    let key = files.key.to_str().unwrap();
    let err = start_up_error(&["--tls-cert", cert]).await;
    assert!(err.contains("--tls-key"), "{err}");
    let err = start_up_error(&["--tls-key", key]).await;
    assert!(err.contains("--tls-cert"), "{err}");
    let missing = dir.path().join("missing.pem");
    let err = start_up_error(&["--tls-cert", missing.to_str().unwrap(), "--tls-key", key]).await;
    assert!(err.contains("missing.pem"), "{err}");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "hello").unwrap();
    let err = start_up_error(&["--tls-cert", cert, "--tls-key", garbage.to_str().unwrap()]).await;
    assert!(err.contains("garbage.pem"), "{err}");
    let err = start_up_error(&["--tls-cert", garbage.to_str().unwrap(), "--tls-key", key]).await;
    assert!(err.contains("garbage.pem"), "{err}");
}

#[tokio::test]
async fn sighup_reloads_the_certificate_of_the_running_binary() {
    let dir = tempfile::tempdir().unwrap();
    let (files, old) = CertFiles::write(dir.path());
    let mut child = calling_server()
        .args(["--tls-cert", files.cert.to_str().unwrap()])
        .env("CALLING_TLS_KEY", &files.key)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (log_tx, mut log) = tokio::sync::mpsc::unbounded_channel::<String>();
    let addr: SocketAddr = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.split("listen=").nth(1) {
                return rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        }
        panic!("exited before listening");
    })
    .await
    .expect("listening");
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = log_tx.send(line);
        }
    });
    let hangup = |pid: u32| async move {
        // The shell's own kill: no procps needed.
        let status = Command::new("sh")
            .args(["-c", &format!("kill -HUP {pid}")])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    };
    let pid = child.id().unwrap();

    let (mut alice, presented) = Wss::login(addr, &[&old], "alice").await;
    assert_eq!(presented, old);
    let new = files.replace();
    hangup(pid).await;
    wait_for_log(&mut log, "certificate reloaded").await;
    let (mut bob, presented) = Wss::login(addr, &[&old, &new], "bob").await;
    assert_eq!(presented, new);
    alice.alive().await;
    bob.alive().await;

    std::fs::write(&files.key, "not a key").unwrap();
    hangup(pid).await;
    let line = wait_for_log(&mut log, "not reloaded").await;
    assert!(line.contains("key.pem"), "{line}");
    let (_, presented) = Wss::login(addr, &[&old, &new], "carol").await;
    assert_eq!(presented, new, "the failed reload kept the certificate");
    alice.alive().await;
}
