//! The protocol's unit enums ([`CallType`], [`EndReason`], [`ErrorCode`]) read from their
//! camelCase names through one small visitor and a table per enum. serde's derived decoder
//! would add, for each enum and each deserializer, an enum access, a variant identifier and a
//! unit variant, which in the SDK's wasm cost more than the rest of these enums' decoding. They
//! serialize as derived; the golden tests pin that both directions agree for every variant.

use std::fmt;

use serde::de::{Error, Unexpected, Visitor};
use serde::{Deserialize, Deserializer};

use crate::{CallType, EndReason, ErrorCode};

/// Reads a name and gives its value from `table`, `other` for a name not listed, or an error
/// when there is no `other`.
struct Names<T: 'static> {
    what: &'static str,
    table: &'static [(&'static str, T)],
    other: Option<T>,
}

impl<T: Copy> Names<T> {
    fn read<'de, D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_str(self)
    }
}

impl<T: Copy> Visitor<'_> for Names<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.what)
    }

    fn visit_str<E: Error>(self, name: &str) -> Result<T, E> {
        match self.table.iter().find(|(n, _)| *n == name) {
            Some((_, value)) => Ok(*value),
            None => self
                .other
                .ok_or_else(|| E::invalid_value(Unexpected::Str(name), &self)),
        }
    }
}

impl<'de> Deserialize<'de> for CallType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Names {
            what: "a call type",
            table: &[("audio", CallType::Audio), ("video", CallType::Video)],
            other: None,
        }
        .read(d)
    }
}

impl<'de> Deserialize<'de> for EndReason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use EndReason::*;
        Names {
            what: "an end reason",
            table: &[
                ("hangup", Hangup),
                ("rejected", Rejected),
                ("busy", Busy),
                ("noResponse", NoResponse),
            ],
            other: None,
        }
        .read(d)
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use ErrorCode::*;
        Names {
            what: "an error code",
            table: &[
                ("malformed", Malformed),
                ("unknownType", UnknownType),
                ("notLoggedIn", NotLoggedIn),
                ("alreadyLoggedIn", AlreadyLoggedIn),
                ("unsupportedVersion", UnsupportedVersion),
                ("unknownApp", UnknownApp),
                ("invalidUserId", InvalidUserId),
                ("invalidUserSig", InvalidUserSig),
                ("expiredUserSig", ExpiredUserSig),
                ("invalidParam", InvalidParam),
                ("busy", Busy),
                ("notInCall", NotInCall),
                ("noSuchInvitation", NoSuchInvitation),
                ("notAParticipant", NotAParticipant),
                ("rateLimited", RateLimited),
                ("resumeRefused", ResumeRefused),
                ("unavailable", Unavailable),
                ("noSfu", NoSfu),
                ("sfuRejoin", SfuRejoin),
            ],
            // `other` too, and any code this version does not know.
            other: Some(Other),
        }
        .read(d)
    }
}
