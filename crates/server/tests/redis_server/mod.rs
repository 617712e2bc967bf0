//! A throwaway `redis-server` (Debian's package, installed by scripts/setup.sh) for the cluster
//! tests: in its own temporary directory, on a Unix socket there (no TCP port at all). Killed
//! when dropped.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Longest redis-server may take to start.
const STARTUP: Duration = Duration::from_secs(10);

pub struct RedisServer {
    child: Option<Child>,
    socket: PathBuf,
    /// Whether every write is on disk before it is acknowledged, so a restart keeps it all.
    durable: bool,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// A Redis that keeps nothing on disk.
    pub async fn start() -> RedisServer {
        RedisServer::start_with(false).await
    }

    /// A Redis whose append-only file is synced on every write: killed and started again, it
    /// has lost nothing.
    pub async fn start_durable() -> RedisServer {
        RedisServer::start_with(true).await
    }

    async fn start_with(durable: bool) -> RedisServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let socket = dir.path().join("redis.sock");
        let mut redis = RedisServer {
            child: None,
            socket,
            durable,
            dir,
        };
        redis.run().await;
        redis
    }

    async fn run(&mut self) {
        let persistence: &[&str] = if self.durable {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &["--appendonly", "no"]
        };
        let mut child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&self.socket)
            .args(["--save", ""])
            .args(persistence)
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts (scripts/setup.sh installs it)");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        tokio::time::timeout(STARTUP, async {
            while let Some(line) = lines.next_line().await.expect("redis-server log") {
                // "Ready to accept connections", or "… ready to accept connections at <socket>".
                if line
                    .to_ascii_lowercase()
                    .contains("ready to accept connections")
                {
                    return;
                }
            }
            panic!("redis-server exited before it was ready");
        })
        .await
        .expect("redis-server ready within the deadline");
        // Keep draining its log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child = Some(child);
    }

    /// Kills the server (SIGKILL) and waits for it to be gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill redis-server");
        }
    }

    /// Starts the server again on the same socket and directory.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.run().await;
    }

    /// The URL a node's `--redis` takes.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }
}

/// A front for the test's Redis, on a Unix socket of its own, that can hold back what Redis
/// answers on the connections that read streams (`XREAD`: a node reading its deliveries), as a
/// Redis or a network slow for that one connection would. Everything else passes untouched.
pub struct ReadStall {
    socket: PathBuf,
    held: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// A [`ReadStall`] in front of this Redis, holding nothing back yet.
    pub async fn read_stall(&self) -> ReadStall {
        let dir = tempfile::tempdir().expect("temporary directory");
        let socket = dir.path().join("front.sock");
        let listener = tokio::net::UnixListener::bind(&socket).expect("bind the front socket");
        let (held, _) = tokio::sync::watch::channel(false);
        let redis = self.socket.clone();
        let hold = held.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(upstream) = tokio::net::UnixStream::connect(&redis).await else {
                    continue;
                };
                carry(client, upstream, hold.subscribe());
            }
        });
        ReadStall {
            socket,
            held,
            _dir: dir,
        }
    }
}

/// Carries one connection both ways; once it has sent an `XREAD`, Redis's answers wait while
/// `held` is true.
fn carry(
    client: tokio::net::UnixStream,
    upstream: tokio::net::UnixStream,
    mut held: tokio::sync::watch::Receiver<bool>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut upstream_rx, mut upstream_tx) = upstream.into_split();
    let reads_streams = Arc::new(AtomicBool::new(false));
    let marks = reads_streams.clone();
    tokio::spawn(async move {
        let mut buf = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = client_rx.read(&mut buf).await {
            if buf[..n].windows(5).any(|w| w == b"XREAD") {
                marks.store(true, Ordering::Relaxed);
            }
            if upstream_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut buf = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = upstream_rx.read(&mut buf).await {
            if reads_streams.load(Ordering::Relaxed) && held.wait_for(|h| !*h).await.is_err() {
                break;
            }
            if client_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
}

impl ReadStall {
    /// The URL a node's `--redis` takes to go through this front.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    /// From now on, answers to stream reads wait.
    pub fn hold(&self) {
        self.held.send_replace(true);
    }

    /// The answers held back go on, and the next ones pass at once.
    pub fn release(&self) {
        self.held.send_replace(false);
    }
}
