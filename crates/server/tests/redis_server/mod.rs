//! A throwaway `redis-server` (Debian's package, installed by scripts/setup.sh) for the cluster
//! tests: in its own temporary directory, on a Unix socket there (no TCP port at all), with
//! nothing saved to disk. Killed when dropped.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Longest redis-server may take to start.
const STARTUP: Duration = Duration::from_secs(10);

pub struct RedisServer {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let socket = dir.path().join("redis.sock");
        let mut child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts (scripts/setup.sh installs it)");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        tokio::time::timeout(STARTUP, async {
            while let Some(line) = lines.next_line().await.expect("redis-server log") {
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
        RedisServer {
            child,
            socket,
            _dir: dir,
        }
    }

    /// The URL a node's `--redis` takes.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }
}
