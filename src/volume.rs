//! `USER_VOICE_VOLUME`: once a second while connected, every participant's audio level
//! (0–100, the local user included) read from the peer connections' statistics.

use std::rc::Weak;

use calling_core::{AppEvent, Effect, VoiceVolume};
use gloo_timers::callback::Interval;
use js_sys::{Map, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::driver::Driver;
use crate::task;

const PERIOD_MS: u32 = 1000;

/// Starts the reports; dropping the returned interval stops them.
pub fn start(driver: Weak<Driver>) -> Interval {
    Interval::new(PERIOD_MS, move || {
        let driver = driver.clone();
        task::spawn(async move { report(driver).await });
    })
}

async fn report(driver: Weak<Driver>) {
    let Some(d) = driver.upgrade() else { return };
    let Some(me) = d.with_core(|c| c.user_id().map(str::to_owned)) else {
        return;
    };
    let peers = d.peer_list();
    // Drop the strong reference while awaiting, so a closed SDK is not kept alive.
    drop(d);
    let mut local = 0;
    let mut volume_map = Vec::with_capacity(peers.len() + 1);
    for (user_id, peer) in peers {
        let Ok(stats) = JsFuture::from(peer.connection().get_stats()).await else {
            continue;
        };
        let (remote, sent) = levels(&stats);
        local = local.max(sent);
        volume_map.push(VoiceVolume {
            user_id,
            audio_volume: remote,
        });
    }
    volume_map.insert(
        0,
        VoiceVolume {
            user_id: me,
            audio_volume: local,
        },
    );
    if let Some(d) = driver.upgrade() {
        d.apply(Effect::Emit(AppEvent::UserVoiceVolume { volume_map }));
    }
}

/// (received, sent) audio levels in one `RTCStatsReport`, as 0–100.
fn levels(stats: &JsValue) -> (u8, u8) {
    let mut received = 0.0f64;
    let mut sent = 0.0f64;
    let mut visit = |entry: JsValue, _key: JsValue| {
        let field = |k: &str| Reflect::get(&entry, &k.into()).unwrap_or(JsValue::UNDEFINED);
        if field("kind").as_string().as_deref() != Some("audio") {
            return;
        }
        let level = field("audioLevel").as_f64().unwrap_or(0.0);
        match field("type").as_string().as_deref() {
            Some("inbound-rtp") => received = received.max(level),
            Some("media-source") => sent = sent.max(level),
            _ => {}
        }
    };
    // RTCStatsReport is map-like: it has Map's forEach.
    let report: &Map = stats.unchecked_ref();
    report.for_each(&mut visit);
    let pct = |x: f64| (x.clamp(0.0, 1.0) * 100.0).round() as u8;
    (pct(received), pct(sent))
}
