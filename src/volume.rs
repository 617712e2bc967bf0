//! Audio levels for `USER_VOICE_VOLUME`: when the core asks (once a second while connected),
//! every peer connection's statistics are read and the levels (0–100) reported as an input.

use std::rc::Rc;

use calling_core::Input;
use js_sys::{Map, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::driver::Sink;
use crate::peer::PeerConnection;
use crate::task;

/// Reads the levels of these connections and queues [`Input::AudioLevels`]. On the SFU
/// connection each received track's level is its participant's.
pub fn read(peers: Vec<(String, Rc<PeerConnection>)>, sink: Sink) {
    task::spawn(async move {
        let mut local = 0;
        let mut remote = Vec::with_capacity(peers.len());
        for (user_id, peer) in peers {
            let Ok(stats) = JsFuture::from(peer.connection().get_stats()).await else {
                continue;
            };
            let (received, sent) = levels(&stats);
            local = local.max(sent);
            match peer.remotes() {
                None => {
                    let loudest = received.iter().map(|(_, level)| *level).max();
                    remote.push((user_id, loudest.unwrap_or(0)));
                }
                Some(remotes) => remote.extend(
                    received
                        .into_iter()
                        .filter_map(|(track, level)| Some((remotes.user_of_track(&track)?, level))),
                ),
            }
        }
        sink.queue(Input::AudioLevels { local, remote });
    });
}

/// The audio levels in one `RTCStatsReport`, as 0–100: each received track's (by track ID),
/// and the loudest we send.
fn levels(stats: &JsValue) -> (Vec<(String, u8)>, u8) {
    let mut received = Vec::new();
    let mut sent = 0.0f64;
    let mut visit = |entry: JsValue, _key: JsValue| {
        let field = |k: &str| Reflect::get(&entry, &k.into()).unwrap_or(JsValue::UNDEFINED);
        if field("kind").as_string().as_deref() != Some("audio") {
            return;
        }
        let level = field("audioLevel").as_f64().unwrap_or(0.0);
        match field("type").as_string().as_deref() {
            Some("inbound-rtp") => {
                let track = field("trackIdentifier").as_string().unwrap_or_default();
                received.push((track, pct(level)));
            }
            Some("media-source") => sent = sent.max(level),
            _ => {}
        }
    };
    // RTCStatsReport is map-like: it has Map's forEach.
    let report: &Map = stats.unchecked_ref();
    report.for_each(&mut visit);
    (received, pct(sent))
}

fn pct(level: f64) -> u8 {
    (level.clamp(0.0, 1.0) * 100.0).round() as u8
}
