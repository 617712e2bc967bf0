//! The `calling-server` binary: parses flags, sets up logging, binds and serves.

use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use calling_protocol::IceServer;
use calling_server::cluster::Cluster;
use calling_server::config::parse_seconds;
use calling_server::drain::{self, parse_drain_timeout, Ending, StopSignals};
use calling_server::tls::{self, Tls};
use calling_server::turn::{TurnConfig, DEFAULT_TURN_TTL};
use calling_server::{AppCredential, Config, Limits, SigPolicy};
use calling_sfu::runtime::{SfuConfig, SfuHandle};
use clap::{Parser, ValueEnum};
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
    /// How long a session whose socket dropped (no close frame) keeps its calls and
    /// invitations for the SDK to resume it (fractions allowed; 0: no resumption).
    #[arg(long, value_name = "SECONDS", env = "CALLING_RESUME_GRACE", default_value = "30", value_parser = parse_seconds)]
    resume_grace: Duration,
    /// Directory served at `/` (the demo app).
    #[arg(long, value_name = "DIR")]
    www: Option<PathBuf>,
    /// Directory served at `/pkg/` (the built SDK package).
    #[arg(long, value_name = "DIR")]
    pkg: Option<PathBuf>,
    /// STUN/TURN server URL handed to clients at login as it is (no credentials); repeatable.
    #[arg(long = "ice-server", value_name = "URL")]
    ice_servers: Vec<String>,
    /// The TURN server's shared secret (coturn's static-auth-secret): each session gets
    /// credentials minted from it for the --turn-uri servers, renewed before they expire.
    #[arg(
        long,
        value_name = "SECRET",
        env = "CALLING_TURN_SECRET",
        hide_env_values = true
    )]
    turn_secret: Option<String>,
    /// A TURN server for the minted credentials: turn:HOST[:PORT][?transport=udp|tcp] or
    /// turns:HOST[:PORT][?transport=tcp] (stun:HOST[:PORT] is passed without credentials);
    /// repeatable. Needs --turn-secret.
    #[arg(
        long = "turn-uri",
        value_name = "URI",
        env = "CALLING_TURN_URIS",
        value_delimiter = ','
    )]
    turn_uris: Vec<String>,
    /// Lifetime of minted TURN credentials; sessions get fresh ones at three quarters of it.
    #[arg(long, value_name = "SECONDS", env = "CALLING_TURN_TTL", default_value_t = DEFAULT_TURN_TTL.as_secs())]
    turn_ttl: u64,
    /// How long a WebSocket may stay open without logging in.
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = parse_seconds)]
    login_timeout: Duration,
    /// How long a client may take to send a request's headers, and how long a kept-alive HTTP
    /// connection may wait for its next request.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    header_timeout: Duration,
    /// How long a read or write on a connection may make no progress before it is dropped.
    #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = parse_seconds)]
    idle_timeout: Duration,
    /// Connections open at once; further ones are refused with 503 (0: no limit).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Connections that have not logged in (plain HTTP included) at once (0: no limit).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_pending_logins)]
    max_pending_logins: usize,
    /// Connections open at once from one IP address (0: no limit; behind a reverse proxy every
    /// connection comes from the proxy's address).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections_per_address)]
    max_connections_per_address: usize,
    /// Bytes of messages queued for one session before it is dropped as too slow.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().outbox_bytes)]
    outbox_bytes: usize,
    /// How far in the future a UserSig's issue time (TLS.time) may be.
    #[arg(long, value_name = "SECONDS", default_value_t = SigPolicy::default().max_clock_skew_secs)]
    max_clock_skew: u64,
    /// Refuse UserSigs whose lifetime (TLS.expire) is longer than this.
    #[arg(long, value_name = "SECONDS")]
    max_sig_lifetime: Option<u64>,
    /// Allow dev mode (no --app) on a non-loopback --listen address, where anyone who can reach
    /// the server can get UserSigs from /dev/usersig.
    #[arg(long)]
    dev_on_network: bool,
    /// PEM certificate chain: the listener then serves https:// and wss:// (with --tls-key).
    /// SIGHUP reloads it and the key from the same paths.
    #[arg(long, value_name = "PATH", env = "CALLING_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "PATH", env = "CALLING_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Dev mode's secret key, instead of a random one per start: UserSigs from /dev/usersig then
    /// stay valid across restarts, so SDKs log in again by themselves after one.
    #[arg(
        long,
        value_name = "KEY",
        env = "CALLING_DEV_SECRET_KEY",
        hide_env_values = true
    )]
    dev_secret_key: Option<String>,
    /// Serve `/metrics` on this address instead of on --listen.
    #[arg(long, value_name = "ADDR", env = "CALLING_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// On SIGTERM or SIGINT the server drains: it refuses new sockets, tells its clients to
    /// move, and exits once they have gone, or after this long, closing the rest (fractions
    /// allowed; 0: exit at once). A second signal exits at once.
    #[arg(long, value_name = "SECONDS", env = "CALLING_DRAIN_TIMEOUT", default_value = "30", value_parser = parse_drain_timeout)]
    drain_timeout: Duration,
    /// Join a cluster: nodes started with the same Redis (redis://HOST[:PORT][/DB] or
    /// redis+unix:///PATH) share sessions, invitations and calls. Without it the process
    /// decides alone, in memory.
    #[arg(
        long,
        value_name = "URL",
        env = "CALLING_REDIS_URL",
        hide_env_values = true
    )]
    redis: Option<String>,
    /// With --redis: how long a node may be silent in Redis (killed, frozen, or cut off from it)
    /// before the others take it for dead and reap its sessions (fractions allowed). Give every
    /// node the same value.
    #[arg(long, value_name = "SECONDS", env = "CALLING_NODE_TIMEOUT", default_value = "5", value_parser = parse_seconds)]
    node_timeout: Duration,
    /// Run the SFU for group calls in this process, on this UDP address (one port for every
    /// participant; open it in the firewall), e.g. 192.0.2.10:40000. The address is announced
    /// to browsers as the SFU's host candidate, so it must be a specific IP they can reach,
    /// not 0.0.0.0. Without it group calls are a mesh. With --redis, give every node its own:
    /// each call's SFU session lives on one node, and moves if that node dies.
    #[arg(long, value_name = "ADDR", env = "CALLING_SFU_UDP")]
    sfu_udp: Option<SocketAddr>,
    /// With --sfu-udp: also take the SFU's media over TCP on this address (ICE-TCP), for
    /// participants whose network blocks UDP. A specific IP too, announced like the UDP one.
    #[arg(
        long,
        value_name = "ADDR",
        env = "CALLING_SFU_TCP",
        requires = "sfu_udp"
    )]
    sfu_tcp: Option<SocketAddr>,
    /// With --sfu-udp: the IP browsers reach the SFU at, when it is not the one bound: a cloud
    /// VM's public IP (its provider's NAT maps it to the VM), or any IP with --sfu-udp
    /// 0.0.0.0:PORT. Announced with the bound ports.
    #[arg(
        long,
        value_name = "IP",
        env = "CALLING_SFU_ANNOUNCE",
        requires = "sfu_udp"
    )]
    sfu_announce: Option<IpAddr>,
    /// Log lines as text for people, or as one JSON object per line for a log collector.
    #[arg(long, value_enum, env = "CALLING_LOG_FORMAT", default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        // Fields at the top level of each object, next to "message", with the fields of the
        // spans it happened in ("spans"), so a collector indexes `room` directly.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_format);

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
    if let Some(key) = args.dev_secret_key {
        if !config.dev_mode || key.is_empty() {
            eprintln!("error: --dev-secret-key is a non-empty key for dev mode (no --app)");
            return ExitCode::from(2);
        }
        config.set_dev_secret_key(key);
    }
    config.metrics_on_main = args.metrics_listen.is_none();
    config.ring_timeout = args.ring_timeout;
    config.resume_grace = args.resume_grace;
    config.drain_timeout = args.drain_timeout;
    config.node_timeout = args.node_timeout;
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
    config.turn = match TurnConfig::from_flags(args.turn_secret, &args.turn_uris, args.turn_ttl) {
        Ok(turn) => turn,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    config.tls = match (&args.tls_cert, &args.tls_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => match Tls::load(cert, key) {
            Ok(tls) => Some(tls),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        (Some(_), None) => {
            eprintln!("error: --tls-cert needs --tls-key (CALLING_TLS_KEY), its private key");
            return ExitCode::from(2);
        }
        (None, Some(_)) => {
            eprintln!("error: --tls-key needs --tls-cert (CALLING_TLS_CERT), its certificate");
            return ExitCode::from(2);
        }
    };
    config.limits = Limits {
        login_timeout: args.login_timeout,
        header_timeout: args.header_timeout,
        idle_timeout: args.idle_timeout,
        max_connections: args.max_connections,
        max_pending_logins: args.max_pending_logins,
        max_connections_per_address: args.max_connections_per_address,
        outbox_bytes: args.outbox_bytes,
    };
    config.sig_policy = SigPolicy {
        max_clock_skew_secs: args.max_clock_skew,
        max_lifetime_secs: args.max_sig_lifetime,
    };

    if config.dev_mode && !args.listen.ip().is_loopback() && !args.dev_on_network {
        eprintln!(
            "error: dev mode (no --app) hands out UserSigs to anyone who can reach it, so it only \
             listens on loopback; --listen {} needs --dev-on-network (or configure an --app)",
            args.listen
        );
        return ExitCode::from(2);
    }

    if let Some((app, key)) = config.dev_app() {
        // Only a prefix: the full key would let whoever reads the terminal or a captured log
        // mint UserSigs; /dev/usersig is how dev mode hands them out.
        let prefix: String = key.chars().take(6).collect();
        println!("dev mode: SDKAppID {app}, secret key {prefix}… (not shown in full)");
        println!("dev mode: GET /dev/usersig?sdkAppID={app}&userID=<id> returns a UserSig");
    } else {
        let mut ids: Vec<u64> = config.apps.keys().copied().collect();
        ids.sort_unstable();
        info!(apps = ?ids, "configured apps");
    }

    // Started before the listener, so a bad --sfu-udp stops the server before it serves.
    let sfu = match start_sfu(args.sfu_udp, args.sfu_tcp, args.sfu_announce).await {
        Ok(sfu) => sfu,
        Err(code) => return code,
    };

    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            error!(listen = %args.listen, "cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().map_or(args.listen, |a| a);
    if let Some(turn) = &config.turn {
        let uris: Vec<&str> = turn.uris.iter().map(|u| u.as_str()).collect();
        info!(
            ?uris,
            ttl_secs = turn.ttl.as_secs(),
            "TURN credentials minted per session"
        );
    }
    if let Some(tls) = &config.tls {
        if let Err(err) = tls::reload_on_hangup(tls.clone()) {
            error!(%err, "cannot watch SIGHUP to reload the certificate");
            return ExitCode::FAILURE;
        }
    }
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    info!(listen = %local, scheme, ring_timeout = ?config.ring_timeout, dev_mode = config.dev_mode, "calling-server listening");
    let metrics_listener = match args.metrics_listen {
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => Some((l, addr)),
            Err(e) => {
                error!(listen = %addr, "cannot listen for metrics: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    // Watched before serving, so a stop signal never finds the process without a handler.
    let signals = match StopSignals::watch() {
        Ok(signals) => signals,
        Err(err) => {
            error!(%err, "cannot watch SIGTERM/SIGINT");
            return ExitCode::FAILURE;
        }
    };
    let (router, hub) = match &args.redis {
        None => calling_server::app_with_hub(config),
        Some(url) => match Cluster::connect(url, &config).await {
            Ok((cluster, reader)) => {
                info!(
                    node = cluster.node(),
                    "deciding in the cluster's shared registry"
                );
                calling_server::app_with_cluster(config, cluster, reader)
            }
            Err(err) => {
                error!(%err, "cannot join the cluster through --redis");
                return ExitCode::FAILURE;
            }
        },
    };
    if let Some(sfu) = sfu {
        hub.attach_sfu(sfu);
    }
    if let Some((listener, addr)) = metrics_listener {
        let addr = listener.local_addr().map_or(addr, |a| a);
        info!(listen = %addr, "metrics listening");
        let hub = hub.clone();
        tokio::spawn(async move {
            if let Err(e) = calling_server::serve_metrics(listener, hub).await {
                error!("metrics listener stopped: {e}");
            }
        });
    }
    tokio::select! {
        served = calling_server::serve_router(listener, router, hub.clone()) => match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                error!("server stopped: {e}");
                ExitCode::FAILURE
            }
        },
        ending = drain::on_stop_signal(hub, signals) => match ending {
            Ending::Drained => ExitCode::SUCCESS,
            Ending::Interrupted => ExitCode::FAILURE,
        },
    }
}

/// The SFU of `--sfu-udp` (and `--sfu-tcp`), started; an error line and the exit code when it
/// cannot be.
async fn start_sfu(
    udp: Option<SocketAddr>,
    tcp: Option<SocketAddr>,
    announce: Option<IpAddr>,
) -> Result<Option<SfuHandle>, ExitCode> {
    let Some(udp) = udp else {
        return Ok(None);
    };
    if announce.is_some_and(|ip| ip.is_unspecified()) {
        eprintln!(
            "error: --sfu-announce must be the IP browsers reach the SFU at, not an unspecified one"
        );
        return Err(ExitCode::from(2));
    }
    // Without --sfu-announce the bound addresses are the announced ones.
    let bound = [("--sfu-udp", Some(udp)), ("--sfu-tcp", tcp)];
    for (flag, addr) in bound.into_iter().filter(|_| announce.is_none()) {
        if let Some(addr) = addr.filter(|a| a.ip().is_unspecified()) {
            eprintln!(
                "error: {flag} {addr}: the SFU announces this address to browsers, so it must \
                 be a specific IP they reach it at (the server's LAN or public IP), not an \
                 unspecified one; or give that IP with --sfu-announce"
            );
            return Err(ExitCode::from(2));
        }
    }
    let mut config = SfuConfig::new(udp);
    config.tcp = tcp;
    config.announce = announce;
    match calling_sfu::runtime::start(config).await {
        Ok((handle, _task)) => {
            match handle.tcp_addr() {
                Some(tcp) => info!(udp = %handle.local_addr(), %tcp, "sfu listening"),
                None => info!(udp = %handle.local_addr(), "sfu listening"),
            }
            Ok(Some(handle))
        }
        Err(e) => {
            eprintln!("error: the SFU cannot start on --sfu-udp {udp}: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}
