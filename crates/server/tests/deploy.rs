//! `deploy/calling-server.service`: the sandboxing the README promises is in the unit, no secret
//! is, and systemd itself accepts the file (`systemd-analyze verify`, and an exposure score of at
//! most 2.0 from `systemd-analyze security`) when systemd's tools are on this machine.

use std::path::PathBuf;
use std::process::Command;

fn deploy(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(file)
}

fn unit() -> String {
    std::fs::read_to_string(deploy("calling-server.service")).expect("the unit file")
}

/// Every `key=value` of the unit, comments left out.
fn settings(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn the_unit_is_sandboxed_and_holds_no_secret() {
    let unit = unit();
    let settings = settings(&unit);
    let has = |key: &str, value: &str| settings.iter().any(|(k, v)| k == key && v == value);
    for (key, value) in [
        ("DynamicUser", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallFilter", "@system-service"),
        ("EnvironmentFile", "/etc/calling-server/calling-server.env"),
        ("KillSignal", "SIGTERM"),
    ] {
        assert!(has(key, value), "{key}={value} missing from the unit");
    }
    // Secrets only through the environment file.
    let exec = settings
        .iter()
        .find(|(k, _)| k == "ExecStart")
        .map(|(_, v)| v.clone())
        .expect("ExecStart");
    assert!(!exec.contains("--app"), "{exec}");
    assert!(!exec.contains("--dev-secret-key"), "{exec}");
    assert!(!settings
        .iter()
        .any(|(k, v)| k == "Environment" && v.contains("CALLING_APPS")));
    // The example environment file names every variable the server reads from it.
    let env = std::fs::read_to_string(deploy("calling-server.env.example")).unwrap();
    for var in [
        "CALLING_APPS=",
        "CALLING_METRICS_LISTEN=",
        "CALLING_LOG_FORMAT=",
    ] {
        assert!(
            env.contains(var),
            "{var} missing from the example environment file"
        );
    }
}

/// systemd waits for the drain: it kills only after the drain timeout and the close handshakes
/// after it.
#[test]
fn stopping_leaves_the_drain_its_time() {
    let settings = settings(&unit());
    let stop_secs: u64 = settings
        .iter()
        .find(|(k, _)| k == "TimeoutStopSec")
        .map(|(_, v)| v.parse().expect("TimeoutStopSec in whole seconds"))
        .expect("TimeoutStopSec");
    let env = std::fs::read_to_string(deploy("calling-server.env.example")).unwrap();
    let drain_secs = env
        .lines()
        .map(|l| l.trim_start_matches('#'))
        .find_map(|l| l.strip_prefix("CALLING_DRAIN_TIMEOUT="))
        .map(|v| v.parse::<u64>().expect("seconds"))
        .expect("CALLING_DRAIN_TIMEOUT in the example environment file");
    let default_secs = calling_server::drain::DEFAULT_DRAIN_TIMEOUT.as_secs();
    assert_eq!(drain_secs, default_secs, "the example shows the default");
    assert!(
        stop_secs >= drain_secs + 10,
        "TimeoutStopSec={stop_secs} leaves too little after a {drain_secs} s drain"
    );
}

/// The unit's command line is one the binary accepts (with an app from the environment, as the
/// environment file gives it).
#[test]
fn the_units_command_line_parses() {
    let unit = unit();
    let settings = settings(&unit);
    let exec = &settings.iter().find(|(k, _)| k == "ExecStart").unwrap().1;
    let args: Vec<&str> = exec.split_whitespace().skip(1).collect();
    // --help exits once every other flag parsed; a bad flag fails with code 2 instead.
    let out = Command::new(env!("CARGO_BIN_EXE_calling-server"))
        .args(&args)
        .arg("--help")
        .env("CALLING_APPS", "1=k")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_calling-server"))
        .args(&args)
        .args(["--no-such-flag", "--help"])
        .output()
        .unwrap();
    assert!(!bad.status.success(), "a bad flag is noticed");
}

#[test]
fn systemd_accepts_the_unit() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed: the unit is not checked by systemd here");
        return;
    }
    // verify also checks that ExecStart's binary exists: point it at the one just built.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calling-server.service");
    let unit = unit().replace(
        "/usr/local/bin/calling-server",
        env!("CARGO_BIN_EXE_calling-server"),
    );
    std::fs::write(&path, unit).unwrap();
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&verify.stderr);
    // An unknown key or a bad value is only a warning (exit 0): any output at all is a failure.
    assert!(
        verify.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}"
    );
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20", "--no-pager"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        security.status.success(),
        "exposure above 2.0:\n{}",
        String::from_utf8_lossy(&security.stdout)
    );
}
