//! TLSSigAPIv2 UserSig generation (SPEC §7), so the load generator can log in to an app whose
//! secret key it was given, exactly as an application backend would.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::Write;

/// Why a UserSig could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum SigError {
    #[error("HMAC key rejected: {0}")]
    Key(#[from] hmac::digest::InvalidLength),
    #[error("compressing the UserSig failed: {0}")]
    Compress(#[from] std::io::Error),
    #[error("encoding the UserSig JSON failed: {0}")]
    Json(#[from] serde_json::Error),
}

/// `TLS.sig`: base64 of HMAC-SHA256 over the signed text, keyed with the secret's ASCII text.
pub fn tls_sig(
    key: &str,
    app_id: u64,
    user_id: &str,
    time: u64,
    expire: u64,
) -> Result<String, SigError> {
    let text = format!(
        "TLS.identifier:{user_id}\nTLS.sdkappid:{app_id}\nTLS.time:{time}\nTLS.expire:{expire}\n"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes())?;
    mac.update(text.as_bytes());
    Ok(STANDARD.encode(mac.finalize().into_bytes()))
}

/// A complete UserSig: the signed JSON, zlib-compressed, in TLS's URL-safe base64 variant.
pub fn generate(
    key: &str,
    app_id: u64,
    user_id: &str,
    time: u64,
    expire: u64,
) -> Result<String, SigError> {
    let sig = tls_sig(key, app_id, user_id, time, expire)?;
    let json = serde_json::to_vec(&serde_json::json!({
        "TLS.ver": "2.0",
        "TLS.identifier": user_id,
        "TLS.sdkappid": app_id,
        "TLS.expire": expire,
        "TLS.time": time,
        "TLS.sig": sig,
    }))?;
    let mut z = ZlibEncoder::new(Vec::new(), Compression::fast());
    z.write_all(&json)?;
    let packed = STANDARD.encode(z.finish()?);
    Ok(packed.replace('+', "*").replace('/', "-").replace('=', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::ZlibDecoder;
    use std::io::Read;

    const KEY: &str = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";
    const KNOWN: &str = "eJyrVgrxCdYrSy1SslIy0jNQ0gHzM1NS80oy0zLBwhWZiflZpXlQqeKU7MSCgswUJStDEwMogMiUZOamKlkZmqGKplYUZBaBxE1NTY3gosWZ6UpWSoZRpgF56S5Z7omlaanBmQH5TqUVKR6R5q7exl4hKY5ZvgGWxsEm3mVhxr62SrUAnj0xuw__";

    fn unpack(user_sig: &str) -> serde_json::Value {
        let b64 = user_sig
            .replace('*', "+")
            .replace('-', "/")
            .replace('_', "=");
        let raw = STANDARD.decode(b64).expect("base64");
        let mut text = String::new();
        ZlibDecoder::new(&raw[..])
            .read_to_string(&mut text)
            .expect("zlib");
        serde_json::from_str(&text).expect("json")
    }

    #[test]
    fn tls_sig_matches_the_known_answer() {
        let sig = tls_sig(KEY, 1_400_000_000, "xiaojun", 1_600_000_000, 15_552_000).expect("sig");
        assert_eq!(sig, "1Z5PngDjGaufeSiPoBuxdHY7EK3JTdAjMP93S4KvV3M=");
    }

    #[test]
    fn generated_user_sig_carries_the_same_claims_as_the_known_one() {
        let ours = generate(KEY, 1_400_000_000, "xiaojun", 1_600_000_000, 15_552_000).expect("sig");
        assert_eq!(unpack(&ours), unpack(KNOWN));
    }
}
