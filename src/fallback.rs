//! Device fallback: when the camera or microphone in use goes away during a call (its track
//! ends by itself, or `devicechange` shows its device gone), the SDK captures another device of
//! the same kind and reports it to the core, which sends the new track to the peers without
//! renegotiating and tells the app with the extension event `DEVICE_CHANGED`. With no other
//! device left the core hears that the device is lost: `ERROR` 60003/60004, and the call goes
//! on without that kind of media.

use std::rc::{Rc, Weak};

use calling_core::{DeviceChange, Input};
use gloo_events::EventListener;
use js_sys::Reflect;
use wasm_bindgen::JsValue;
use web_sys::MediaStreamTrack;

use crate::driver::{show_camera, Sink};
use crate::log;
use crate::media::{self, device_kind, track_device_id, Kind, Media};
use crate::task;
use crate::view::Views;

/// Starts watching the devices `media` captures from (once per instance). The watchers hold
/// the media weakly: they live inside it.
pub fn install(media: &Rc<Media>, views: Weak<Views>, sink: Sink) {
    let watched = Rc::downgrade(media);
    let on_lost = {
        let (watched, views, sink) = (watched.clone(), views.clone(), sink.clone());
        Rc::new(move |kind, track| {
            let (watched, views, sink) = (watched.clone(), views.clone(), sink.clone());
            task::spawn(async move { recover(&watched, &views, &sink, kind, track).await });
        })
    };
    let device_change = media::media_devices().ok().map(|devices| {
        EventListener::new(&devices, "devicechange", move |_| {
            let (watched, views, sink) = (watched.clone(), views.clone(), sink.clone());
            task::spawn(async move { check_devices(&watched, &views, &sink).await });
        })
    });
    media.watch(on_lost, device_change);
}

/// `devicechange`: every live local track whose device is no longer listed is lost.
async fn check_devices(media: &Weak<Media>, views: &Weak<Views>, sink: &Sink) {
    for kind in [Kind::Audio, Kind::Video] {
        let Some(track) = media.upgrade().and_then(|m| m.track(kind)) else {
            continue;
        };
        let Some(id) = track_device_id(&track) else {
            continue;
        };
        let Ok(list) = media::devices(device_kind(kind)).await else {
            return;
        };
        if !list.iter().any(|d| field(&d, "deviceId") == id) {
            recover(media, views, sink, kind, track).await;
        }
    }
}

/// Replaces `lost` (if it is still the live track of `kind`) by a track from another device.
async fn recover(
    media: &Weak<Media>,
    views: &Weak<Views>,
    sink: &Sink,
    kind: Kind,
    lost: MediaStreamTrack,
) {
    let Some(media) = media.upgrade() else { return };
    let current = media.track(kind);
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
    let report = |change| sink.queue(Input::Device { kind, change });
    let gone = |why: String| DeviceChange::Lost { why };
    let candidates = match media::devices(device_kind(kind)).await {
        Ok(list) => list,
        Err(e) => return report(gone(e.to_string())),
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
        return report(gone("no other device".into()));
    };
    match media.switch_device(kind, next.clone()).await {
        Ok(Some(track)) => {
            let label = track.label();
            if kind == Kind::Video {
                show_camera(views, track);
            }
            report(DeviceChange::Replaced {
                device_id: next,
                label,
            });
        }
        // The call released the device while capturing: nothing to replace.
        Ok(None) => {}
        Err(e) => report(gone(e.message)),
    }
}

fn field(v: &JsValue, key: &str) -> String {
    Reflect::get(v, &key.into())
        .ok()
        .and_then(|x| x.as_string())
        .unwrap_or_default()
}
