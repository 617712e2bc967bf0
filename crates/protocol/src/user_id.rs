//! The one rule for user IDs (SPEC §3), shared by the SDK, its core, the registry and the
//! server, so a userID one of them accepts is never refused by another.

/// Longest userID, in bytes (TRTC's limit).
pub const MAX_LEN: usize = 32;

/// The rule in words, for error messages.
pub const RULE: &str = "1-32 letters, digits, '-' or '_'";

/// A userID is 1 to [`MAX_LEN`] ASCII letters, digits, `-` or `_`.
pub fn is_valid(user_id: &str) -> bool {
    !user_id.is_empty()
        && user_id.len() <= MAX_LEN
        && user_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_digits_dash_and_underscore_up_to_the_limit() {
        for good in ["a", "Z9", "a-b_c", "007", "user_1-A", &"x".repeat(MAX_LEN)] {
            assert!(is_valid(good), "{good:?} refused");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        let too_long = "x".repeat(MAX_LEN + 1);
        for bad in ["", " a", "a b", "a.b", "a@b", "é", "a/b", "a\0", &too_long] {
            assert!(!is_valid(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_rule_in_words_names_the_limit() {
        assert!(RULE.starts_with(&format!("1-{MAX_LEN} ")));
    }
}
