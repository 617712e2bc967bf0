//! Device fallback: when the camera or microphone in use goes away during a call (its track
//! ends by itself, or `devicechange` shows its device gone), the SDK captures another device of
//! the same kind, swaps it into every peer connection without renegotiating and tells the app
//! with the extension event `DEVICE_CHANGED` (`onDeviceChanged`). With no other device left it
//! reports `ERROR` 60003/60004 instead and goes on without that kind of media.

use std::rc::{Rc, Weak};

use calling_core::{code, AppEvent, Command, Effect};
use gloo_events::EventListener;
use js_sys::{Object, Reflect};
use wasm_bindgen::JsValue;
use web_sys::MediaStreamTrack;

use crate::driver::Driver;
use crate::log;
use crate::media::{self, track_device_id, Kind};
use crate::task;

/// The extension event's string value (`TRTCCalling.EVENT.DEVICE_CHANGED`).
pub const DEVICE_CHANGED: &str = "onDeviceChanged";
/// `reason` in the event: the device in use disappeared.
const REASON_LOST: &str = "deviceLost";

/// Starts watching the driver's devices (called once per instance).
pub fn install(driver: &Rc<Driver>) {
    let weak = driver.weak();
    let on_lost = {
        let weak = weak.clone();
        Rc::new(move |kind, track| {
            let weak = weak.clone();
            task::spawn(async move { recover(&weak, kind, track).await });
        })
    };
    let device_change = media::media_devices().ok().map(|devices| {
        EventListener::new(&devices, "devicechange", move |_| {
            let weak = weak.clone();
            task::spawn(async move { check_devices(&weak).await });
        })
    });
    driver.media.watch(on_lost, device_change);
}

/// `devicechange`: every live local track whose device is no longer listed is lost.
async fn check_devices(weak: &Weak<Driver>) {
    for kind in [Kind::Audio, Kind::Video] {
        let Some(track) = weak.upgrade().and_then(|d| d.media.track(kind)) else {
            continue;
        };
        let Some(id) = track_device_id(&track) else {
            continue;
        };
        let Ok(list) = media::devices(kind.device_kind()).await else {
            return;
        };
        if !list.iter().any(|d| field(&d, "deviceId") == id) {
            recover(weak, kind, track).await;
        }
    }
}

/// Replaces `lost` (if it is still the live track of `kind`) by a track from another device.
async fn recover(weak: &Weak<Driver>, kind: Kind, lost: MediaStreamTrack) {
    let Some(driver) = weak.upgrade() else { return };
    let current = driver.media.track(kind);
    // Ended after the SDK replaced or released it: nothing in use was lost.
    if current.is_none_or(|t| t.id() != lost.id()) {
        return;
    }
    let lost_id = track_device_id(&lost).unwrap_or_default();
    log::warn(&format!(
        "{} device '{}' ({lost_id}) went away",
        kind.as_str(),
        lost.label()
    ));
    let candidates = match media::devices(kind.device_kind()).await {
        Ok(list) => list,
        Err(e) => return report_none(&driver, kind, &e.to_string()),
    };
    let ids: Vec<String> = candidates
        .iter()
        .map(|d| field(&d, "deviceId"))
        .filter(|id| !id.is_empty() && *id != lost_id)
        .collect();
    // Chrome's "default"/"communications" entries alias a real device, possibly the lost one:
    // a concrete other device comes first.
    let alias = |id: &String| id == "default" || id == "communications";
    let Some(next) = ids
        .iter()
        .find(|id| !alias(id))
        .or_else(|| ids.first())
        .cloned()
    else {
        return report_none(&driver, kind, "no other device");
    };
    match driver.media.switch_device(kind, next.clone()).await {
        Ok(Some(track)) => {
            driver.use_track(kind, &track);
            let payload = Object::new();
            for (key, value) in [
                ("deviceType", kind.as_str().to_owned()),
                ("deviceId", next),
                ("label", track.label()),
                ("reason", REASON_LOST.to_owned()),
            ] {
                let _ = Reflect::set(&payload, &key.into(), &value.into());
            }
            driver.listeners.emit(DEVICE_CHANGED, &payload.into());
        }
        // The call released the device while capturing: nothing to replace.
        Ok(None) => {}
        Err(e) => report_none(&driver, kind, &e.message),
    }
}

/// No device of `kind` can replace the lost one: `ERROR` with the SPEC §5 code of that kind,
/// then the call goes on without it, as if the app had closed the camera or muted the
/// microphone, so the peers are told it is unavailable instead of seeing a frozen picture.
fn report_none(driver: &Driver, kind: Kind, why: &str) {
    let (code, what, command) = match kind {
        Kind::Audio => (code::NO_MICROPHONE, "microphone", Command::SetMicMute(true)),
        Kind::Video => (code::NO_CAMERA, "camera", Command::CloseCamera),
    };
    driver.apply(Effect::Emit(AppEvent::Error {
        code,
        msg: format!("the {what} in use went away and no other could be opened: {why}"),
    }));
    // Outside a call the core refuses it, which is fine: there is nothing to stop.
    let _settled = driver.command(command);
}

fn field(v: &JsValue, key: &str) -> String {
    Reflect::get(v, &key.into())
        .ok()
        .and_then(|x| x.as_string())
        .unwrap_or_default()
}
