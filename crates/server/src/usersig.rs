//! UserSig (TLSSigAPIv2) verification and generation, as SPEC §7 describes.
//!
//! Sigs made by Tencent's public generators must verify here, so the decoder is lenient where
//! those generators differ (key order, numbers written as strings, padding) and strict where
//! security needs it (HMAC compared in constant time, bounded input and inflated sizes).

use std::io::Read;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

pub use crate::config::SigPolicy;

type HmacSha256 = Hmac<Sha256>;

/// A UserSig longer than this is refused before decoding (real ones are ~200–400 chars).
const MAX_USER_SIG_CHARS: usize = 4096;
/// The inflated JSON is never allowed to grow past this (guards against zlib bombs).
const MAX_INFLATED_BYTES: u64 = 16 * 1024;

/// Standard base64 that accepts input with or without `=` padding.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a UserSig was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserSigError {
    #[error("the UserSig is not a valid TLSSigAPIv2 signature ({0})")]
    Malformed(&'static str),
    #[error("the UserSig was issued for another SDKAppID")]
    WrongApp,
    #[error("the UserSig was issued for another userID")]
    WrongUser,
    #[error("the UserSig signature does not match this app's secret key")]
    BadSignature,
    #[error("the UserSig has expired")]
    Expired,
    #[error("the UserSig was issued in the future (TLS.time is ahead of this server's clock by more than it allows)")]
    IssuedInTheFuture,
    #[error("the UserSig's lifetime is longer than this server allows")]
    LifetimeTooLong,
}

/// The signed fields of a decoded UserSig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub identifier: String,
    pub sdk_app_id: u64,
    /// Unix seconds when it was issued.
    pub time: u64,
    /// Lifetime in seconds.
    pub expire: u64,
    /// Base64 text of the optional user buffer, exactly as signed.
    pub userbuf: Option<String>,
    /// The base64 HMAC carried in `TLS.sig`.
    pub sig: String,
}

/// The text the HMAC covers (SPEC §7 step 1).
fn signed_content(
    identifier: &str,
    sdk_app_id: u64,
    time: u64,
    expire: u64,
    userbuf: Option<&str>,
) -> String {
    let mut text = format!(
        "TLS.identifier:{identifier}\nTLS.sdkappid:{sdk_app_id}\nTLS.time:{time}\nTLS.expire:{expire}\n"
    );
    if let Some(buf) = userbuf {
        text.push_str("TLS.userbuf:");
        text.push_str(buf);
        text.push('\n');
    }
    text
}

fn mac_for(secret_key: &str) -> HmacSha256 {
    // HMAC accepts keys of any length, so this constructor cannot fail; fall back to an empty
    // key only to satisfy the type (a wrong key never verifies anything real).
    HmacSha256::new_from_slice(secret_key.as_bytes())
        .unwrap_or_else(|_| <HmacSha256 as Mac>::new(&Default::default()))
}

/// `TLS.sig`: standard base64 of HMAC-SHA256 over the signed text, keyed with the secret's ASCII.
pub fn tls_sig(
    secret_key: &str,
    identifier: &str,
    sdk_app_id: u64,
    time: u64,
    expire: u64,
    userbuf: Option<&str>,
) -> String {
    let mut mac = mac_for(secret_key);
    mac.update(signed_content(identifier, sdk_app_id, time, expire, userbuf).as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Makes a UserSig the way TLSSigAPIv2 generators do (used by dev mode and tests).
pub fn generate(
    sdk_app_id: u64,
    secret_key: &str,
    user_id: &str,
    time: u64,
    expire: u64,
    userbuf: Option<&[u8]>,
) -> String {
    let userbuf = userbuf.map(|b| STANDARD.encode(b));
    let sig = tls_sig(
        secret_key,
        user_id,
        sdk_app_id,
        time,
        expire,
        userbuf.as_deref(),
    );
    let mut doc = Map::new();
    doc.insert("TLS.ver".into(), Value::from("2.0"));
    doc.insert("TLS.identifier".into(), Value::from(user_id));
    doc.insert("TLS.sdkappid".into(), Value::from(sdk_app_id));
    doc.insert("TLS.expire".into(), Value::from(expire));
    doc.insert("TLS.time".into(), Value::from(time));
    doc.insert("TLS.sig".into(), Value::from(sig));
    if let Some(buf) = userbuf {
        doc.insert("TLS.userbuf".into(), Value::from(buf));
    }
    let json = Value::Object(doc).to_string();
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
    // Writing into a Vec cannot fail.
    let compressed = std::io::Write::write_all(&mut encoder, json.as_bytes())
        .and_then(|()| encoder.finish())
        .unwrap_or_default();
    to_url_alphabet(&STANDARD.encode(compressed))
}

fn to_url_alphabet(b64: &str) -> String {
    b64.chars()
        .map(|c| match c {
            '+' => '*',
            '/' => '-',
            '=' => '_',
            other => other,
        })
        .collect()
}

/// Reads a numeric claim that generators write either as a JSON number or as a string.
fn number(doc: &Map<String, Value>, key: &'static str) -> Result<u64, UserSigError> {
    match doc.get(key) {
        Some(Value::Number(n)) => n.as_u64().ok_or(UserSigError::Malformed(key)),
        Some(Value::String(s)) => s.trim().parse().map_err(|_| UserSigError::Malformed(key)),
        _ => Err(UserSigError::Malformed(key)),
    }
}

fn text(doc: &Map<String, Value>, key: &'static str) -> Result<String, UserSigError> {
    match doc.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(UserSigError::Malformed(key)),
    }
}

/// Undoes the transport encoding (SPEC §7 step 4) and reads the claims, without checking them.
pub fn decode(user_sig: &str) -> Result<Claims, UserSigError> {
    if user_sig.is_empty() || user_sig.len() > MAX_USER_SIG_CHARS {
        return Err(UserSigError::Malformed("length"));
    }
    let b64: String = user_sig
        .trim()
        .chars()
        .map(|c| match c {
            '*' => '+',
            '-' => '/',
            '_' => '=',
            other => other,
        })
        .collect();
    let compressed = LENIENT
        .decode(b64.as_bytes())
        .map_err(|_| UserSigError::Malformed("base64"))?;
    let mut json = Vec::new();
    ZlibDecoder::new(compressed.as_slice())
        .take(MAX_INFLATED_BYTES + 1)
        .read_to_end(&mut json)
        .map_err(|_| UserSigError::Malformed("zlib"))?;
    if json.len() as u64 > MAX_INFLATED_BYTES {
        return Err(UserSigError::Malformed("too large"));
    }
    let doc: Map<String, Value> =
        serde_json::from_slice(&json).map_err(|_| UserSigError::Malformed("json"))?;
    let userbuf = match doc.get("TLS.userbuf") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(UserSigError::Malformed("TLS.userbuf")),
    };
    Ok(Claims {
        identifier: text(&doc, "TLS.identifier")?,
        sdk_app_id: number(&doc, "TLS.sdkappid")?,
        time: number(&doc, "TLS.time")?,
        expire: number(&doc, "TLS.expire")?,
        userbuf,
        sig: text(&doc, "TLS.sig")?,
    })
}

/// Checks a login's UserSig against the app's secret key at `now_unix` (seconds), with the
/// default [`SigPolicy`].
pub fn verify(
    user_sig: &str,
    sdk_app_id: u64,
    user_id: &str,
    secret_key: &str,
    now_unix: u64,
) -> Result<Claims, UserSigError> {
    verify_with(
        user_sig,
        sdk_app_id,
        user_id,
        secret_key,
        now_unix,
        &SigPolicy::default(),
    )
}

/// Checks a login's UserSig against the app's secret key at `now_unix` (seconds).
///
/// The signature is checked before the times so that "expired" is only ever said of a genuine
/// sig; a forged one is always reported as a bad signature. A sig issued further in the future
/// than the allowed clock skew is refused: it would stay valid longer than it says.
pub fn verify_with(
    user_sig: &str,
    sdk_app_id: u64,
    user_id: &str,
    secret_key: &str,
    now_unix: u64,
    policy: &SigPolicy,
) -> Result<Claims, UserSigError> {
    let claims = decode(user_sig)?;
    if claims.sdk_app_id != sdk_app_id {
        return Err(UserSigError::WrongApp);
    }
    if claims.identifier != user_id {
        return Err(UserSigError::WrongUser);
    }
    let expected = STANDARD
        .decode(claims.sig.as_bytes())
        .map_err(|_| UserSigError::Malformed("TLS.sig"))?;
    let mut mac = mac_for(secret_key);
    mac.update(
        signed_content(
            &claims.identifier,
            claims.sdk_app_id,
            claims.time,
            claims.expire,
            claims.userbuf.as_deref(),
        )
        .as_bytes(),
    );
    mac.verify_slice(&expected)
        .map_err(|_| UserSigError::BadSignature)?;
    if claims.time > now_unix.saturating_add(policy.max_clock_skew_secs) {
        return Err(UserSigError::IssuedInTheFuture);
    }
    if policy
        .max_lifetime_secs
        .is_some_and(|max| claims.expire > max)
    {
        return Err(UserSigError::LifetimeTooLong);
    }
    if now_unix > claims.time.saturating_add(claims.expire) {
        return Err(UserSigError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";
    const APP: u64 = 1_400_000_000;
    const VECTOR: &str = "eJyrVgrxCdYrSy1SslIy0jNQ0gHzM1NS80oy0zLBwhWZiflZpXlQqeKU7MSCgswUJStDEwMogMiUZOamKlkZmqGKplYUZBaBxE1NTY3gosWZ6UpWSoZRpgF56S5Z7omlaanBmQH5TqUVKR6R5q7exl4hKY5ZvgGWxsEm3mVhxr62SrUAnj0xuw__";

    fn real_now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(u64::MAX)
    }

    #[test]
    fn known_answer_tls_sig() {
        assert_eq!(
            tls_sig(KEY, "xiaojun", APP, 1_600_000_000, 15_552_000, None),
            "1Z5PngDjGaufeSiPoBuxdHY7EK3JTdAjMP93S4KvV3M="
        );
    }

    #[test]
    fn known_answer_user_sig_decodes_and_verifies_within_its_lifetime() {
        let claims = decode(VECTOR).unwrap();
        assert_eq!(claims.identifier, "xiaojun");
        assert_eq!(claims.sdk_app_id, APP);
        assert_eq!(claims.time, 1_600_000_000);
        assert_eq!(claims.expire, 15_552_000);
        assert_eq!(claims.sig, "1Z5PngDjGaufeSiPoBuxdHY7EK3JTdAjMP93S4KvV3M=");
        assert!(verify(VECTOR, APP, "xiaojun", KEY, 1_600_000_100).is_ok());
        // The last second of its lifetime still counts.
        assert!(verify(VECTOR, APP, "xiaojun", KEY, 1_615_552_000).is_ok());
        assert_eq!(
            verify(VECTOR, APP, "xiaojun", KEY, 1_615_552_001),
            Err(UserSigError::Expired)
        );
    }

    #[test]
    fn known_answer_user_sig_is_expired_now() {
        assert_eq!(
            verify(VECTOR, APP, "xiaojun", KEY, real_now()),
            Err(UserSigError::Expired)
        );
    }

    #[test]
    fn wrong_app_user_and_key_are_refused() {
        let at = 1_600_000_100;
        assert_eq!(
            verify(VECTOR, APP + 1, "xiaojun", KEY, at),
            Err(UserSigError::WrongApp)
        );
        assert_eq!(
            verify(VECTOR, APP, "xiaojun2", KEY, at),
            Err(UserSigError::WrongUser)
        );
        let other_key = KEY.replace('5', "6");
        assert_eq!(
            verify(VECTOR, APP, "xiaojun", &other_key, at),
            Err(UserSigError::BadSignature)
        );
    }

    #[test]
    fn tampered_claims_fail_the_signature() {
        // Re-encode the vector's JSON with a longer lifetime but the original TLS.sig.
        let forged_json = format!(
            r#"{{"TLS.ver":"2.0","TLS.identifier":"xiaojun","TLS.sdkappid":{APP},"TLS.expire":999999999,"TLS.time":1600000000,"TLS.sig":"1Z5PngDjGaufeSiPoBuxdHY7EK3JTdAjMP93S4KvV3M="}}"#
        );
        let mut enc = ZlibEncoder::new(Vec::new(), Compression::best());
        std::io::Write::write_all(&mut enc, forged_json.as_bytes()).unwrap();
        let forged = to_url_alphabet(&STANDARD.encode(enc.finish().unwrap()));
        assert_eq!(
            verify(&forged, APP, "xiaojun", KEY, real_now()),
            Err(UserSigError::BadSignature)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        for bad in ["", "not base64 !!", "eJyrVgrx", "AAAA"] {
            assert!(
                matches!(decode(bad), Err(UserSigError::Malformed(_))),
                "{bad:?} decoded"
            );
        }
        let huge = "A".repeat(MAX_USER_SIG_CHARS + 1);
        assert!(matches!(decode(&huge), Err(UserSigError::Malformed(_))));
    }

    #[test]
    fn zlib_bomb_is_refused() {
        let mut enc = ZlibEncoder::new(Vec::new(), Compression::best());
        std::io::Write::write_all(&mut enc, &vec![b' '; 1_000_000]).unwrap();
        let bomb = to_url_alphabet(&STANDARD.encode(enc.finish().unwrap()));
        assert!(bomb.len() < MAX_USER_SIG_CHARS);
        assert_eq!(decode(&bomb), Err(UserSigError::Malformed("too large")));
    }

    #[test]
    fn generated_sigs_verify_with_and_without_userbuf() {
        let now = real_now();
        let sig = generate(APP, KEY, "alice_1", now, 3600, None);
        assert!(verify(&sig, APP, "alice_1", KEY, now).is_ok());
        let with_buf = generate(APP, KEY, "alice_1", now, 3600, Some(b"room 42"));
        let claims = verify(&with_buf, APP, "alice_1", KEY, now).unwrap();
        assert_eq!(claims.userbuf.as_deref(), Some("cm9vbSA0Mg=="));
        assert_eq!(
            verify(&with_buf, APP, "alice_1", KEY, now + 3601),
            Err(UserSigError::Expired)
        );
    }

    #[test]
    fn sigs_from_the_future_are_refused_beyond_the_clock_skew() {
        let now = 1_700_000_000;
        let policy = SigPolicy::default();
        let skew = policy.max_clock_skew_secs;
        let ahead = generate(APP, KEY, "bob", now + skew, 3600, None);
        assert!(verify_with(&ahead, APP, "bob", KEY, now, &policy).is_ok());
        let too_far = generate(APP, KEY, "bob", now + skew + 1, 3600, None);
        assert_eq!(
            verify_with(&too_far, APP, "bob", KEY, now, &policy),
            Err(UserSigError::IssuedInTheFuture)
        );
        // Near the end of time, no overflow lets one through.
        let end = generate(APP, KEY, "bob", u64::MAX, u64::MAX, None);
        assert_eq!(
            verify_with(&end, APP, "bob", KEY, now, &policy),
            Err(UserSigError::IssuedInTheFuture)
        );
    }

    #[test]
    fn lifetimes_over_the_maximum_are_refused() {
        let now = 1_700_000_000;
        let policy = SigPolicy {
            max_lifetime_secs: Some(86_400),
            ..SigPolicy::default()
        };
        let day = generate(APP, KEY, "bob", now, 86_400, None);
        assert!(verify_with(&day, APP, "bob", KEY, now, &policy).is_ok());
        let year = generate(APP, KEY, "bob", now, 365 * 86_400, None);
        assert_eq!(
            verify_with(&year, APP, "bob", KEY, now, &policy),
            Err(UserSigError::LifetimeTooLong)
        );
        assert!(
            verify(&year, APP, "bob", KEY, now).is_ok(),
            "no maximum by default"
        );
    }

    #[test]
    fn numbers_written_as_strings_and_unpadded_base64_are_accepted() {
        let sig = tls_sig(KEY, "bob", APP, 1_700_000_000, 86400, None);
        let json = format!(
            r#"{{"TLS.sig":"{sig}","TLS.time":"1700000000","TLS.expire":"86400","TLS.sdkappid":"{APP}","TLS.identifier":"bob","TLS.ver":"2.0"}}"#
        );
        let mut enc = ZlibEncoder::new(Vec::new(), Compression::fast());
        std::io::Write::write_all(&mut enc, json.as_bytes()).unwrap();
        let user_sig = to_url_alphabet(&STANDARD.encode(enc.finish().unwrap()));
        let unpadded = user_sig.trim_end_matches('_');
        assert!(verify(unpadded, APP, "bob", KEY, 1_700_000_001).is_ok());
    }
}
