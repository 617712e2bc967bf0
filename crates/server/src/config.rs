//! Server configuration: the apps it accepts, timing, and what it serves besides `/ws`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use calling_protocol::{IceServer, DEFAULT_RESUME_GRACE_SECS, HEARTBEAT_TIMEOUT_SECS};
use rand::RngCore;

use std::sync::Arc;

use crate::tls::Tls;
use crate::turn::TurnConfig;

/// SDKAppID of the single built-in app in dev mode.
pub const DEV_SDK_APP_ID: u64 = 1_400_000_000;

/// Default ring timeout (SPEC §6: the ring lasts 30 s).
pub const DEFAULT_RING_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything `app()` needs. `main.rs` builds it from flags; tests build it directly.
#[derive(Clone, Debug)]
pub struct Config {
    /// SDKAppID → secret key.
    pub apps: HashMap<u64, String>,
    /// True when no app was configured and the built-in dev app (with `/dev/usersig`) is used.
    pub dev_mode: bool,
    pub ring_timeout: Duration,
    /// How long a session may stay silent before it is dropped.
    pub heartbeat_timeout: Duration,
    /// How long a resumable session outlives a socket that dropped without a close.
    pub resume_grace: Duration,
    /// STUN/TURN servers handed out as they are (`--ice-server`).
    pub ice_servers: Vec<IceServer>,
    /// TURN servers whose credentials are minted per session (`--turn-secret`, `--turn-uri`).
    pub turn: Option<TurnConfig>,
    /// Served at `/`.
    pub www: Option<PathBuf>,
    /// Served at `/pkg/`.
    pub pkg: Option<PathBuf>,
    /// What one client may make the server hold.
    pub limits: Limits,
    /// How UserSigs are checked beyond their signature.
    pub sig_policy: SigPolicy,
    /// With a certificate, the listener serves `https://` and `wss://` only.
    pub tls: Option<Arc<Tls>>,
    /// Whether the main listener serves `/metrics` (not when it has a listener of its own).
    pub metrics_on_main: bool,
    /// How long a drain waits for the sockets to go before closing the rest (0: at once).
    pub drain_timeout: Duration,
    /// In a cluster, how long a node may be silent in Redis before the others take it for
    /// dead and reap its sessions.
    pub node_timeout: Duration,
}

/// Every resource a client can make the server hold, bounded. A limit of 0 means no limit for
/// the connection caps only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Time from the WebSocket upgrade to a successful login, whatever the client sends.
    pub login_timeout: Duration,
    /// Time a client has to send a request's headers, and that a kept-alive HTTP connection may
    /// wait for its next request.
    pub header_timeout: Duration,
    /// Time a read or write may make no progress before the connection is dropped.
    pub idle_timeout: Duration,
    /// Connections open at once (0: no limit).
    pub max_connections: usize,
    /// Connections not (yet) logged in at once: plain HTTP, and WebSockets before their login
    /// (0: no limit).
    pub max_pending_logins: usize,
    /// Connections open at once from one IP address (0: no limit).
    pub max_connections_per_address: usize,
    /// Bytes of messages queued for one session before it counts as too slow.
    pub outbox_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            login_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 50_000,
            max_pending_logins: 1_000,
            max_connections_per_address: 256,
            outbox_bytes: 1024 * 1024,
        }
    }
}

/// Checks on a UserSig's claimed times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigPolicy {
    /// How far in the future a UserSig's `TLS.time` may be (clocks of the issuer and this
    /// server differ a little; a sig from further ahead would outlive its stated lifetime).
    pub max_clock_skew_secs: u64,
    /// The longest `TLS.expire` accepted; `None` accepts any.
    pub max_lifetime_secs: Option<u64>,
}

impl Default for SigPolicy {
    fn default() -> Self {
        SigPolicy {
            max_clock_skew_secs: 300,
            max_lifetime_secs: None,
        }
    }
}

impl Config {
    /// A configuration for the given apps; with none, dev mode with a fresh random secret key.
    pub fn new(apps: Vec<AppCredential>) -> Self {
        let dev_mode = apps.is_empty();
        let apps = if dev_mode {
            HashMap::from([(DEV_SDK_APP_ID, random_secret_key())])
        } else {
            apps.into_iter()
                .map(|a| (a.sdk_app_id, a.secret_key))
                .collect()
        };
        Config {
            apps,
            dev_mode,
            ring_timeout: DEFAULT_RING_TIMEOUT,
            heartbeat_timeout: Duration::from_secs(u64::from(HEARTBEAT_TIMEOUT_SECS)),
            resume_grace: Duration::from_secs(u64::from(DEFAULT_RESUME_GRACE_SECS)),
            ice_servers: Vec::new(),
            turn: None,
            www: None,
            pkg: None,
            limits: Limits::default(),
            sig_policy: SigPolicy::default(),
            tls: None,
            metrics_on_main: true,
            drain_timeout: crate::drain::DEFAULT_DRAIN_TIMEOUT,
            node_timeout: crate::cluster::DEFAULT_NODE_TIMEOUT,
        }
    }

    /// Dev mode's secret key, chosen instead of the random one (`--dev-secret-key`).
    pub fn set_dev_secret_key(&mut self, key: String) {
        if self.dev_mode {
            self.apps.insert(DEV_SDK_APP_ID, key);
        }
    }

    /// The ICE servers for a session of `user_id` at `now_unix`: the static ones, then those
    /// with credentials minted for it.
    pub fn ice_servers_for(&self, user_id: &str, now_unix: u64) -> Vec<IceServer> {
        let mut servers = self.ice_servers.clone();
        if let Some(turn) = &self.turn {
            servers.extend(turn.ice_servers(user_id, now_unix));
        }
        servers
    }

    /// The dev app's (id, secret key), when in dev mode.
    pub fn dev_app(&self) -> Option<(u64, &str)> {
        if !self.dev_mode {
            return None;
        }
        self.apps
            .get(&DEV_SDK_APP_ID)
            .map(|key| (DEV_SDK_APP_ID, key.as_str()))
    }
}

/// 32 random bytes as 64 hex digits, the shape of a TRTC console secret key.
fn random_secret_key() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One `--app SDKAPPID=SECRETKEY`.
#[derive(Clone, PartialEq, Eq)]
pub struct AppCredential {
    pub sdk_app_id: u64,
    pub secret_key: String,
}

// Hand-written so a secret key never reaches a log through `{:?}`.
impl std::fmt::Debug for AppCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AppCredential({}=…)", self.sdk_app_id)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("expected SDKAPPID=SECRETKEY")]
    MissingEquals,
    #[error("SDKAppID must be a positive integer")]
    BadAppId,
    #[error("the secret key is empty")]
    EmptyKey,
    #[error("expected a positive number of seconds (at most one day)")]
    BadRingTimeout,
}

impl FromStr for AppCredential {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (id, key) = s.trim().split_once('=').ok_or(ConfigError::MissingEquals)?;
        let sdk_app_id: u64 = id.trim().parse().map_err(|_| ConfigError::BadAppId)?;
        if sdk_app_id == 0 {
            return Err(ConfigError::BadAppId);
        }
        let secret_key = key.trim().to_string();
        if secret_key.is_empty() {
            return Err(ConfigError::EmptyKey);
        }
        Ok(AppCredential {
            sdk_app_id,
            secret_key,
        })
    }
}

/// Parses `--ring-timeout` and the other durations: seconds, fractions allowed (tests use `0.5`).
pub fn parse_seconds(s: &str) -> Result<Duration, ConfigError> {
    let secs: f64 = s.trim().parse().map_err(|_| ConfigError::BadRingTimeout)?;
    if !secs.is_finite() || secs <= 0.0 || secs > 86_400.0 {
        return Err(ConfigError::BadRingTimeout);
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Whole seconds for the wire (`ringTimeoutSecs`), rounded up so a client never gives up early.
pub fn whole_seconds(d: Duration) -> u32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_credentials_parse() {
        let a: AppCredential = "1400000001=abc".parse().unwrap();
        assert_eq!(a.sdk_app_id, 1_400_000_001);
        assert_eq!(a.secret_key, "abc");
        assert_eq!(
            "1400000001".parse::<AppCredential>(),
            Err(ConfigError::MissingEquals)
        );
        assert_eq!("x=abc".parse::<AppCredential>(), Err(ConfigError::BadAppId));
        assert_eq!("0=abc".parse::<AppCredential>(), Err(ConfigError::BadAppId));
        assert_eq!("1=".parse::<AppCredential>(), Err(ConfigError::EmptyKey));
        assert!(!format!("{a:?}").contains("abc"));
    }

    #[test]
    fn ring_timeout_accepts_fractions() {
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_seconds("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_seconds("0"), Err(ConfigError::BadRingTimeout));
        assert_eq!(parse_seconds("-1"), Err(ConfigError::BadRingTimeout));
        assert_eq!(parse_seconds("abc"), Err(ConfigError::BadRingTimeout));
        assert_eq!(whole_seconds(Duration::from_millis(500)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(30)), 30);
    }

    #[test]
    fn no_app_means_dev_mode_with_a_random_key() {
        let a = Config::new(Vec::new());
        let b = Config::new(Vec::new());
        let (id, key) = a.dev_app().unwrap();
        assert_eq!(id, DEV_SDK_APP_ID);
        assert_eq!(key.len(), 64);
        assert_ne!(Some(key), b.dev_app().map(|(_, k)| k));
        let mut chosen = Config::new(Vec::new());
        chosen.set_dev_secret_key("fixed".into());
        assert_eq!(chosen.dev_app(), Some((DEV_SDK_APP_ID, "fixed")));
        let configured = Config::new(vec!["7=k".parse().unwrap()]);
        assert!(configured.dev_app().is_none());
        assert_eq!(configured.apps.get(&7).map(String::as_str), Some("k"));
    }
}
