//! Dev mode's own safeguards, checked on the real binary: it stays on loopback unless told
//! otherwise, and it never prints its whole secret key.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const DEADLINE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn dev_mode_refuses_a_non_loopback_address() {
    // Refused before binding, so nothing ever listens on the network.
    let output = tokio::time::timeout(
        DEADLINE,
        Command::new(env!("CARGO_BIN_EXE_calling-server"))
            .args(["--listen", "0.0.0.0:0"])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("exits at once")
    .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--dev-on-network"), "{stderr}");
}

#[tokio::test]
async fn dev_mode_does_not_print_its_secret_key() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_calling-server"))
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(DEADLINE, lines.next_line())
        .await
        .expect("prints at start")
        .unwrap()
        .expect("a line");
    assert!(first.contains("dev mode: SDKAppID 1400000000"), "{first}");
    // The key is 64 hex digits; no run of more than a few may appear.
    let longest_hex_run = first
        .split(|c: char| !c.is_ascii_hexdigit())
        .map(str::len)
        .filter(|&n| n != 10) // the SDKAppID
        .max()
        .unwrap_or(0);
    assert!(longest_hex_run <= 8, "{first}");
}
