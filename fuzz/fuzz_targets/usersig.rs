//! The UserSig parser and verifier. Arbitrary text never panics and is never accepted unless it
//! really is a sig for that app, user and key, within its times; and any sig made by the
//! generator verifies exactly while it is valid under the policy.

#![no_main]

use arbitrary::Arbitrary;
use calling_server::usersig::{decode, generate, verify_with, SigPolicy, UserSigError};
use libfuzzer_sys::fuzz_target;

const APP: u64 = 1_400_000_001;
const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[derive(Arbitrary, Debug)]
enum Case {
    /// Text from the network, checked for one user at one time.
    Text {
        user_sig: String,
        user_id: String,
        now: u64,
        max_skew: u16,
        max_lifetime: Option<u64>,
    },
    /// A sig from the generator with arbitrary claims, checked at an arbitrary time.
    Generated {
        user_id: String,
        time: u64,
        expire: u64,
        userbuf: Option<Vec<u8>>,
        now: u64,
        max_skew: u16,
        max_lifetime: Option<u64>,
        /// Flip one character of the sig (`None`: leave it intact).
        tamper: Option<(u16, u8)>,
    },
}

fuzz_target!(|case: Case| match case {
    Case::Text {
        user_sig,
        user_id,
        now,
        max_skew,
        max_lifetime,
    } => {
        let _ = decode(&user_sig);
        let policy = SigPolicy {
            max_clock_skew_secs: u64::from(max_skew),
            max_lifetime_secs: max_lifetime,
        };
        if let Ok(claims) = verify_with(&user_sig, APP, &user_id, KEY, now, &policy) {
            assert_eq!(claims.identifier, user_id);
            assert_eq!(claims.sdk_app_id, APP);
            assert!(claims.time <= now.saturating_add(policy.max_clock_skew_secs));
            assert!(now <= claims.time.saturating_add(claims.expire));
        }
    }
    Case::Generated {
        user_id,
        time,
        expire,
        userbuf,
        now,
        max_skew,
        max_lifetime,
        tamper,
    } => {
        let policy = SigPolicy {
            max_clock_skew_secs: u64::from(max_skew),
            max_lifetime_secs: max_lifetime,
        };
        let mut user_sig = generate(APP, KEY, &user_id, time, expire, userbuf.as_deref());
        let mut tampered = false;
        if let Some((at, byte)) = tamper {
            let mut bytes = user_sig.clone().into_bytes();
            if !bytes.is_empty() {
                let at = usize::from(at) % bytes.len();
                // Stay in the sig's alphabet so the change reaches the decoder.
                let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-_";
                let replacement = alphabet[usize::from(byte) % alphabet.len()];
                tampered = bytes[at] != replacement;
                bytes[at] = replacement;
                user_sig = String::from_utf8(bytes).expect("ASCII");
            }
        }
        let result = verify_with(&user_sig, APP, &user_id, KEY, now, &policy);
        if tampered {
            // A changed sig may still decode to the same claims (base64 padding bits, zlib
            // slack), but never to different ones that verify.
            if let Ok(claims) = result {
                assert_eq!(claims.identifier, user_id);
                assert_eq!((claims.time, claims.expire), (time, expire));
            }
            return;
        }
        // Only size limits may refuse the generator's own output before the checks.
        match decode(&user_sig) {
            Ok(claims) => {
                assert_eq!(claims.identifier, user_id);
                assert_eq!((claims.time, claims.expire), (time, expire));
            }
            Err(err) => {
                assert!(
                    matches!(
                        err,
                        UserSigError::Malformed("length") | UserSigError::Malformed("too large")
                    ),
                    "{err:?}: {user_sig}"
                );
                assert_eq!(result, Err(err));
                return;
            }
        }
        let expected = if time > now.saturating_add(policy.max_clock_skew_secs) {
            Err(UserSigError::IssuedInTheFuture)
        } else if max_lifetime.is_some_and(|max| expire > max) {
            Err(UserSigError::LifetimeTooLong)
        } else if now > time.saturating_add(expire) {
            Err(UserSigError::Expired)
        } else {
            Ok(())
        };
        assert_eq!(result.map(|_| ()), expected, "{user_sig}");
    }
});
