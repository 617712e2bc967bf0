//! The ids this server's registry hands out: random, so they cannot be guessed.

use calling_protocol::RoomId;
use calling_registry::IdSource;
use rand::Rng;

/// Room ids uniform over `1..=RoomId::MAX`; invitation ids of 128 random bits in hex, so
/// nobody can answer an invitation not meant for them even if checks elsewhere failed.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn room_id(&mut self) -> RoomId {
        rand::thread_rng().gen_range(1..=RoomId::MAX)
    }

    fn invite_id(&mut self) -> String {
        let n: u128 = rand::thread_rng().gen();
        format!("{n:032x}")
    }
}

/// A resume token: 128 random bits in hex. Whoever holds it can take over the session, so it
/// is never logged.
pub fn random_token() -> String {
    let n: u128 = rand::thread_rng().gen();
    format!("{n:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_ids_are_128_bits_of_hex_and_differ() {
        let (a, b) = (RandomIds.invite_id(), RandomIds.invite_id());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn room_ids_are_never_zero() {
        assert!((0..1000).all(|_| RandomIds.room_id() != 0));
    }
}
