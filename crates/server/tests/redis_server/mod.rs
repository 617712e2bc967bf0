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
