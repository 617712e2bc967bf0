//! Decoding a relayed [`Signal`] without buffering: the signal object is read into one flat
//! struct holding every kind's fields, in whatever order they come, then built by its `kind`.
//! The derived `Deserialize` of an internally tagged enum first buffers the whole object
//! through serde's generic `Content`, which in the SDK's wasm outweighed every other server
//! message's decoder together.
//!
//! One difference from the derived decoder: a field named like one of another kind's must have
//! that field's type. So a signal of a future kind that reuses such a name with another type
//! fails to decode instead of reading as [`Signal::Unknown`]; the SDK ignores either. Both
//! decoders read every signal serde writes alike; the golden tests pin that.

use serde::de::Error;
use serde::{Deserialize, Deserializer};

use crate::{CallType, IceCandidate, Signal};

/// Every field any kind has.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fields {
    kind: String,
    sdp: Option<String>,
    candidate: Option<String>,
    sdp_mid: Option<String>,
    #[serde(rename = "sdpMLineIndex")]
    sdp_m_line_index: Option<u16>,
    audio: Option<bool>,
    video: Option<bool>,
    call_type: Option<CallType>,
    ok: Option<bool>,
}

/// `deserialize_with` for [`crate::RelayedSignal::signal`] and `SfuSignal::signal`.
pub(crate) fn signal<'de, D: Deserializer<'de>>(d: D) -> Result<Signal, D::Error> {
    let f = Fields::deserialize(d)?;
    Ok(match f.kind.as_str() {
        "offer" => Signal::Offer {
            sdp: required(f.sdp, "sdp")?,
        },
        "answer" => Signal::Answer {
            sdp: required(f.sdp, "sdp")?,
        },
        "candidate" => Signal::Candidate(IceCandidate {
            candidate: required(f.candidate, "candidate")?,
            sdp_mid: f.sdp_mid,
            sdp_m_line_index: f.sdp_m_line_index,
        }),
        "media" => Signal::Media {
            audio: required(f.audio, "audio")?,
            video: required(f.video, "video")?,
        },
        "switchMode" => Signal::SwitchMode {
            call_type: required(f.call_type, "callType")?,
        },
        "switchModeAck" => Signal::SwitchModeAck {
            call_type: required(f.call_type, "callType")?,
            ok: required(f.ok, "ok")?,
        },
        _ => Signal::Unknown,
    })
}

fn required<T, E: Error>(value: Option<T>, field: &'static str) -> Result<T, E> {
    value.ok_or_else(|| E::missing_field(field))
}
