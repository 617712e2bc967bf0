//! TURN credentials in the "TURN REST API" form that coturn checks with `use-auth-secret` and
//! `static-auth-secret`: the username is `<unix expiry>:<userID>`, the password is the base64
//! HMAC-SHA1 of that username under the secret shared with the TURN server. The TURN server
//! recomputes it, so no per-user state is shared, and a leaked credential dies at its expiry.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use calling_protocol::IceServer;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Default lifetime of minted credentials (`--turn-ttl`): one day, coturn's usual.
pub const DEFAULT_TURN_TTL: Duration = Duration::from_secs(86_400);

/// The longest `--turn-ttl` accepted: a credential that outlives a month is hardly temporary.
pub const MAX_TURN_TTL_SECS: u64 = 30 * 86_400;

/// One validated `--turn-uri`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TurnUri(String);

impl TurnUri {
    /// A `stun:` URI takes no credentials.
    pub fn is_stun(&self) -> bool {
        self.0.starts_with("stun:")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TurnUriError {
    #[error("{0:?}: expected turn:HOST[:PORT][?transport=udp|tcp], turns:HOST[:PORT][?transport=tcp] or stun:HOST[:PORT]")]
    Scheme(String),
    #[error("{0:?}: the host is missing or not a host name or IP address")]
    Host(String),
    #[error("{0:?}: the port is not a number from 1 to 65535")]
    Port(String),
    #[error("{0:?}: the only query allowed is ?transport=udp or ?transport=tcp (turns: tcp only, stun: none)")]
    Query(String),
}

impl FromStr for TurnUri {
    type Err = TurnUriError;

    /// Checks the shape RFC 7065 gives TURN URIs (and RFC 7064 STUN URIs), so a typo is a
    /// start-up error rather than calls that silently never relay.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let uri = s.trim();
        let owned = || uri.to_string();
        let (scheme, rest) = uri
            .split_once(':')
            .ok_or_else(|| TurnUriError::Scheme(owned()))?;
        if !matches!(scheme, "turn" | "turns" | "stun") {
            return Err(TurnUriError::Scheme(owned()));
        }
        let (authority, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        match (scheme, query) {
            (_, None) | ("turn", Some("transport=udp" | "transport=tcp")) => {}
            ("turns", Some("transport=tcp")) => {}
            _ => return Err(TurnUriError::Query(owned())),
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| TurnUriError::Host(owned()))?;
        if !is_host(host) {
            return Err(TurnUriError::Host(owned()));
        }
        if let Some(port) = port {
            if !matches!(port.parse::<u16>(), Ok(p) if p != 0 && !port.starts_with('+')) {
                return Err(TurnUriError::Port(owned()));
            }
        }
        Ok(TurnUri(uri.to_string()))
    }
}

/// `host[:port]`, with an IPv6 literal in brackets.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (inside, after) = bracketed.split_once(']')?;
        inside.parse::<std::net::Ipv6Addr>().ok()?;
        return match after {
            "" => Some((authority, None)),
            _ => Some((
                &authority[..inside.len() + 2],
                Some(after.strip_prefix(':')?),
            )),
        };
    }
    match authority.split_once(':') {
        Some((host, port)) => Some((host, Some(port))),
        None => Some((authority, None)),
    }
}

/// A DNS name or an IP literal (IPv6 already checked in brackets).
fn is_host(host: &str) -> bool {
    if host.starts_with('[') {
        return true;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// The TURN part of the configuration: the shared secret, the servers, the credentials' life.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnConfig {
    secret: String,
    pub uris: Vec<TurnUri>,
    pub ttl: Duration,
}

// Hand-written so the secret never reaches a log through `{:?}` of the configuration.
impl fmt::Debug for TurnConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurnConfig")
            .field("secret", &"…")
            .field("uris", &self.uris)
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// A TURN flag that cannot be used. Never quotes the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TurnConfigError {
    #[error("--turn-secret / CALLING_TURN_SECRET is empty")]
    EmptySecret,
    #[error("--turn-secret needs at least one --turn-uri (CALLING_TURN_URIS): the TURN servers it opens")]
    NoUris,
    #[error("--turn-uri needs --turn-secret (CALLING_TURN_SECRET), the TURN server's static-auth-secret")]
    NoSecret,
    #[error("--turn-uri / CALLING_TURN_URIS entry {index}: {error}")]
    BadUri { index: usize, error: TurnUriError },
    #[error("--turn-ttl must be a whole number of seconds from 1 to {MAX_TURN_TTL_SECS}")]
    BadTtl,
}

impl TurnConfig {
    /// The TURN configuration the flags describe: `None` when neither `--turn-secret` nor
    /// `--turn-uri` is given, an error naming the flag when only one is or a URI is malformed.
    pub fn from_flags(
        secret: Option<String>,
        uris: &[String],
        ttl_secs: u64,
    ) -> Result<Option<Self>, TurnConfigError> {
        let secret = match (secret, uris.is_empty()) {
            (None, true) => return Ok(None),
            (None, false) => return Err(TurnConfigError::NoSecret),
            (Some(secret), _) => secret,
        };
        let uris = uris
            .iter()
            .enumerate()
            .map(|(n, u)| {
                u.parse().map_err(|error| TurnConfigError::BadUri {
                    index: n + 1,
                    error,
                })
            })
            .collect::<Result<Vec<TurnUri>, _>>()?;
        TurnConfig::new(secret, uris, Duration::from_secs(ttl_secs)).map(Some)
    }

    pub fn new(secret: String, uris: Vec<TurnUri>, ttl: Duration) -> Result<Self, TurnConfigError> {
        if secret.is_empty() {
            return Err(TurnConfigError::EmptySecret);
        }
        if uris.is_empty() {
            return Err(TurnConfigError::NoUris);
        }
        if ttl < Duration::from_secs(1) || ttl.as_secs() > MAX_TURN_TTL_SECS {
            return Err(TurnConfigError::BadTtl);
        }
        Ok(TurnConfig { secret, uris, ttl })
    }

    /// When a session's credentials minted now should be replaced: at three quarters of their
    /// life, so a peer connection that needs a fresh allocation never holds expired ones.
    pub fn renew_after(&self) -> Duration {
        self.ttl * 3 / 4
    }

    /// The ICE servers for `user_id` at `now_unix`: the `stun:` URIs as they are, and one entry
    /// with every `turn:`/`turns:` URI and credentials valid until `now_unix + ttl`.
    pub fn ice_servers(&self, user_id: &str, now_unix: u64) -> Vec<IceServer> {
        let (stun, turn): (Vec<&TurnUri>, Vec<&TurnUri>) =
            self.uris.iter().partition(|u| u.is_stun());
        let mut servers = Vec::with_capacity(2);
        if !stun.is_empty() {
            servers.push(IceServer {
                urls: stun.iter().map(|u| u.0.clone()).collect(),
                username: None,
                credential: None,
            });
        }
        if !turn.is_empty() {
            let (username, credential) = mint(
                &self.secret,
                user_id,
                now_unix.saturating_add(self.ttl.as_secs()),
            );
            servers.push(IceServer {
                urls: turn.iter().map(|u| u.0.clone()).collect(),
                username: Some(username),
                credential: Some(credential),
            });
        }
        servers
    }
}

/// (username, credential) for `user_id`, valid until `expiry_unix`.
pub fn mint(secret: &str, user_id: &str, expiry_unix: u64) -> (String, String) {
    let username = format!("{expiry_unix}:{user_id}");
    // HMAC accepts keys of any length, so this constructor cannot fail; the fallback only
    // satisfies the type.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| <Hmac<Sha1> as Mac>::new(&Default::default()));
    mac.update(username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, credential)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Result<TurnUri, TurnUriError> {
        s.parse()
    }

    #[test]
    fn mint_matches_the_turn_rest_api_known_answer() {
        // Pinned from an independent computation:
        // python3 -c 'import hmac,hashlib,base64;
        //   print(base64.b64encode(hmac.new(b"north-wind-42", b"1767225600:alice",
        //   hashlib.sha1).digest()).decode())'
        let (username, credential) = mint("north-wind-42", "alice", 1_767_225_600);
        assert_eq!(username, "1767225600:alice");
        assert_eq!(credential, "fjpH4ti7wfTtwtp49AVdqk2Zma0=");
    }

    #[test]
    fn ice_servers_group_turn_uris_under_one_credential_and_leave_stun_bare() {
        let config = TurnConfig::new(
            "north-wind-42".into(),
            vec![
                uri("turn:turn.example.com:3478?transport=udp").unwrap(),
                uri("stun:turn.example.com").unwrap(),
                uri("turns:turn.example.com:5349?transport=tcp").unwrap(),
            ],
            Duration::from_secs(600),
        )
        .unwrap();
        let servers = config.ice_servers("alice", 1_767_225_000);
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].urls, ["stun:turn.example.com"]);
        assert_eq!(
            (servers[0].username.as_ref(), servers[0].credential.as_ref()),
            (None, None)
        );
        assert_eq!(
            servers[1].urls,
            [
                "turn:turn.example.com:3478?transport=udp",
                "turns:turn.example.com:5349?transport=tcp"
            ]
        );
        assert_eq!(servers[1].username.as_deref(), Some("1767225600:alice"));
        assert_eq!(
            servers[1].credential.as_deref(),
            Some("fjpH4ti7wfTtwtp49AVdqk2Zma0=")
        );
        assert_eq!(config.renew_after(), Duration::from_secs(450));
    }

    #[test]
    fn the_secret_stays_out_of_debug_output() {
        let config = TurnConfig::new(
            "north-wind-42".into(),
            vec![uri("turn:t.example").unwrap()],
            DEFAULT_TURN_TTL,
        )
        .unwrap();
        let shown = format!("{config:?} {config:#?}");
        assert!(!shown.contains("north-wind-42"), "{shown}");
        assert!(shown.contains("turn:t.example"), "{shown}");
    }

    #[test]
    fn turn_uris_are_checked() {
        for good in [
            "turn:turn.example.com",
            "turn:turn.example.com:3478",
            "turn:203.0.113.5:3478?transport=udp",
            "turn:turn.example.com?transport=tcp",
            "turns:turn.example.com:5349?transport=tcp",
            "turns:turn.example.com",
            "turn:[2001:db8::1]:3478",
            "turn:[2001:db8::1]",
            "stun:stun.example.com:3478",
        ] {
            assert_eq!(uri(good).map(|u| u.0), Ok(good.to_string()), "{good}");
        }
        for (bad, want) in [
            (
                "http://turn.example.com",
                TurnUriError::Scheme as fn(String) -> TurnUriError,
            ),
            ("turn.example.com:3478", TurnUriError::Scheme),
            ("turn://turn.example.com", TurnUriError::Host),
            ("turn:", TurnUriError::Host),
            ("turn:bad_host", TurnUriError::Host),
            ("turn:[not-v6]:3478", TurnUriError::Host),
            ("turn:turn.example.com:0", TurnUriError::Port),
            ("turn:turn.example.com:70000", TurnUriError::Port),
            ("turn:turn.example.com:x", TurnUriError::Port),
            ("turns:turn.example.com?transport=udp", TurnUriError::Query),
            ("turn:turn.example.com?transport=sctp", TurnUriError::Query),
            ("stun:stun.example.com?transport=udp", TurnUriError::Query),
        ] {
            assert_eq!(uri(bad), Err(want(bad.to_string())), "{bad}");
        }
    }

    #[test]
    fn config_needs_a_secret_uris_and_a_sane_ttl() {
        let uris = vec![uri("turn:t.example").unwrap()];
        let new = |secret: &str, uris: &[TurnUri], secs| {
            TurnConfig::new(secret.into(), uris.to_vec(), Duration::from_secs(secs))
        };
        assert_eq!(new("", &uris, 60), Err(TurnConfigError::EmptySecret));
        assert_eq!(new("s", &[], 60), Err(TurnConfigError::NoUris));
        assert_eq!(new("s", &uris, 0), Err(TurnConfigError::BadTtl));
        assert_eq!(
            new("s", &uris, MAX_TURN_TTL_SECS + 1),
            Err(TurnConfigError::BadTtl)
        );
        assert!(new("s", &uris, 1).is_ok());
    }

    #[test]
    fn flags_name_what_is_missing() {
        let uris = ["turn:t.example:3478".to_string()];
        assert_eq!(TurnConfig::from_flags(None, &[], 60), Ok(None));
        assert_eq!(
            TurnConfig::from_flags(None, &uris, 60),
            Err(TurnConfigError::NoSecret)
        );
        assert_eq!(
            TurnConfig::from_flags(Some("s".into()), &[], 60),
            Err(TurnConfigError::NoUris)
        );
        let bad = ["turn:t.example".to_string(), "turn:t.example:x".to_string()];
        let err = TurnConfig::from_flags(Some("north-wind-42".into()), &bad, 60).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--turn-uri / CALLING_TURN_URIS entry 2: \"turn:t.example:x\": the port is not a number from 1 to 65535"
        );
        let config = TurnConfig::from_flags(Some("s".into()), &uris, 60)
            .unwrap()
            .unwrap();
        assert_eq!(config.ttl, Duration::from_secs(60));
        assert!(TurnConfig::from_flags(None, &uris, 60)
            .unwrap_err()
            .to_string()
            .contains("--turn-secret"));
        assert!(TurnConfig::from_flags(Some("s".into()), &[], 60)
            .unwrap_err()
            .to_string()
            .contains("--turn-uri"));
    }
}
