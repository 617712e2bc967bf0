//! The `calling-server` binary: parses flags, sets up logging, binds and serves.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use calling_protocol::IceServer;
use calling_server::config::parse_seconds;
use calling_server::{AppCredential, Config};
use clap::Parser;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

/// Signaling server for trtc-calling-wasm: logins, invitations, calls and WebRTC relay.
#[derive(Parser, Debug)]
#[command(name = "calling-server", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// An application and its secret key; repeatable. Without any, runs in dev mode.
    #[arg(
        long = "app",
        value_name = "SDKAPPID=SECRETKEY",
        env = "CALLING_APPS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    // Parsed after clap so that a malformed entry is never echoed (it may hold a secret key).
    apps: Vec<String>,
    /// How long an invitation rings before it times out (fractions allowed).
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = parse_seconds)]
    ring_timeout: Duration,
    /// Directory served at `/` (the demo app).
    #[arg(long, value_name = "DIR")]
    www: Option<PathBuf>,
    /// Directory served at `/pkg/` (the built SDK package).
    #[arg(long, value_name = "DIR")]
    pkg: Option<PathBuf>,
    /// STUN/TURN server URL handed to clients at login; repeatable.
    #[arg(long = "ice-server", value_name = "URL")]
    ice_servers: Vec<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let mut apps = Vec::with_capacity(args.apps.len());
    for (n, entry) in args.apps.iter().enumerate() {
        match entry.parse::<AppCredential>() {
            Ok(app) => apps.push(app),
            Err(e) => {
                eprintln!("error: --app / CALLING_APPS entry {}: {e}", n + 1);
                return ExitCode::from(2);
            }
        }
    }
    let mut config = Config::new(apps);
    config.ring_timeout = args.ring_timeout;
    config.www = args.www;
    config.pkg = args.pkg;
    config.ice_servers = args
        .ice_servers
        .into_iter()
        .map(|url| IceServer {
            urls: vec![url],
            username: None,
            credential: None,
        })
        .collect();

    if let Some((app, key)) = config.dev_app() {
        // Dev mode has no other way to learn the key, so it goes to stdout, never to the log.
        println!("dev mode: SDKAppID {app}, secret key {key}");
        println!("dev mode: GET /dev/usersig?sdkAppID={app}&userID=<id> returns a UserSig");
    } else {
        let mut ids: Vec<u64> = config.apps.keys().copied().collect();
        ids.sort_unstable();
        info!(apps = ?ids, "configured apps");
    }

    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            error!(listen = %args.listen, "cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().map_or(args.listen, |a| a);
    info!(listen = %local, ring_timeout = ?config.ring_timeout, dev_mode = config.dev_mode, "calling-server listening");
    match calling_server::serve(listener, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("server stopped: {e}");
            ExitCode::FAILURE
        }
    }
}
