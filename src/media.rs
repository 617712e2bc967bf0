//! Local capture: getUserMedia with the selected quality profile and devices, the live local
//! tracks (watched for their device going away, see `fallback`), device lists, and the mapping
//! of browser failures to SPEC §5 codes.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use calling_core::{code, SdkError};
use gloo_events::EventListener;
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    MediaDevices, MediaStream, MediaStreamConstraints, MediaStreamTrack, MediaStreamTrackState,
};

use crate::error::{js_message, js_name, Error};

/// `setVideoQuality` profiles (width, height); 480p is the default.
const PROFILES: &[(&str, u32, u32)] = &[
    ("240p", 320, 240),
    ("360p", 640, 360),
    ("480p", 640, 480),
    ("720p", 1280, 720),
    ("1080p", 1920, 1080),
];

/// Audio or video: the two kinds of local track (the core's own kinds).
pub use calling_core::MediaKind as Kind;

/// The `MediaDeviceInfo.kind` of devices of this kind.
pub fn device_kind(kind: Kind) -> &'static str {
    match kind {
        Kind::Audio => "audioinput",
        Kind::Video => "videoinput",
    }
}

/// Called when a live local track ends without the SDK stopping it (its device went away).
pub type OnLost = Rc<dyn Fn(Kind, MediaStreamTrack)>;

pub struct Media {
    /// Index into [`PROFILES`].
    profile: Cell<usize>,
    camera_id: RefCell<Option<String>>,
    microphone_id: RefCell<Option<String>>,
    audio: RefCell<Option<MediaStreamTrack>>,
    video: RefCell<Option<MediaStreamTrack>>,
    /// Every track captured and not yet known to be ended: lets tests check none stays live.
    opened: RefCell<Vec<MediaStreamTrack>>,
    on_lost: RefCell<Option<OnLost>>,
    /// `ended` listeners of the live audio and video tracks; dropping one removes it, so a
    /// track the SDK stops or replaces is no longer watched.
    ended: RefCell<[Option<EventListener>; 2]>,
    /// `devicechange` on `navigator.mediaDevices`, while [`Media::watch`] is installed.
    device_change: RefCell<Option<EventListener>>,
}

impl Default for Media {
    fn default() -> Self {
        Self {
            profile: Cell::new(2),
            camera_id: RefCell::default(),
            microphone_id: RefCell::default(),
            audio: RefCell::default(),
            video: RefCell::default(),
            opened: RefCell::default(),
            on_lost: RefCell::default(),
            ended: RefCell::default(),
            device_change: RefCell::default(),
        }
    }
}

/// The last owner gone (the instance was dropped, and any capture still settling has settled):
/// no device the SDK opened may stay on.
impl Drop for Media {
    fn drop(&mut self) {
        for track in self.opened.get_mut().drain(..) {
            track.stop();
        }
    }
}

impl Media {
    /// The camera's size the quality profile asks for (width, height).
    pub fn frame_size(&self) -> (u32, u32) {
        let (_, w, h) = PROFILES[self.profile.get().min(PROFILES.len() - 1)];
        (w, h)
    }

    /// `setVideoQuality`: false for an unknown profile.
    pub fn set_profile(&self, name: &str) -> bool {
        match PROFILES.iter().position(|(n, _, _)| *n == name) {
            Some(i) => {
                self.profile.set(i);
                true
            }
            None => false,
        }
    }

    pub fn track(&self, kind: Kind) -> Option<MediaStreamTrack> {
        match kind {
            Kind::Audio => self.audio.borrow().clone(),
            Kind::Video => self.video.borrow().clone(),
        }
    }

    /// The live audio and video tracks.
    pub fn tracks(&self) -> [Option<MediaStreamTrack>; 2] {
        [self.track(Kind::Audio), self.track(Kind::Video)]
    }

    fn slot(&self, kind: Kind) -> &RefCell<Option<MediaStreamTrack>> {
        match kind {
            Kind::Audio => &self.audio,
            Kind::Video => &self.video,
        }
    }

    /// Captures whichever of the asked kinds is not live yet. Returns what is live afterwards.
    pub async fn open(&self, audio: bool, video: bool) -> Result<(bool, bool), SdkError> {
        let want_audio = audio && self.audio.borrow().is_none();
        let want_video = video && self.video.borrow().is_none();
        if want_audio || want_video {
            let stream = self.capture(want_audio, want_video).await?;
            for track in stream.get_tracks().iter() {
                let Ok(track) = track.dyn_into::<MediaStreamTrack>() else {
                    continue;
                };
                let kind = if track.kind() == "audio" {
                    Kind::Audio
                } else {
                    Kind::Video
                };
                self.keep(kind, track);
            }
        }
        Ok((self.audio.borrow().is_some(), self.video.borrow().is_some()))
    }

    /// Makes `track` the live track of `kind`, stopping the one it replaces.
    fn keep(&self, kind: Kind, track: MediaStreamTrack) {
        let mut opened = self.opened.borrow_mut();
        opened.retain(|t| t.ready_state() != MediaStreamTrackState::Ended);
        // `Clone::clone`: MediaStreamTrack's own `clone()` would capture a second live track.
        opened.push(Clone::clone(&track));
        drop(opened);
        let watch = self.on_lost.borrow().clone().map(|lost| {
            let watched = Clone::clone(&track);
            EventListener::new(&track, "ended", move |_| lost(kind, Clone::clone(&watched)))
        });
        self.ended.borrow_mut()[kind as usize] = watch;
        if let Some(old) = self.slot(kind).replace(Some(track)) {
            old.stop();
        }
    }

    /// Watches the devices in use: `on_lost` runs when a live track ends by itself (an unplugged
    /// device ends its track); `device_change` (a `devicechange` listener) is kept as long as
    /// this `Media`. Tracks captured before this call are not watched.
    pub fn watch(&self, on_lost: OnLost, device_change: Option<EventListener>) {
        self.device_change.replace(device_change);
        self.on_lost.replace(Some(on_lost));
    }

    /// Stops and forgets the local tracks of the given kinds.
    pub fn close(&self, audio: bool, video: bool) {
        for (kind, close) in [(Kind::Audio, audio), (Kind::Video, video)] {
            if close {
                self.ended.borrow_mut()[kind as usize] = None;
                if let Some(track) = self.slot(kind).take() {
                    track.stop();
                }
            }
        }
    }

    /// Mutes (disables) or unmutes the microphone track; it keeps running so peers get silence.
    pub fn mute(&self, mute: bool) {
        if let Some(track) = self.audio.borrow().as_ref() {
            track.set_enabled(!mute);
        }
    }

    /// Every track captured since the last one ended (test hook: all must end after a call).
    pub fn opened_tracks(&self) -> Array {
        self.opened.borrow().iter().cloned().collect()
    }

    /// `switchDevice`: remembers the device; when that kind is live, captures it from the new
    /// device and returns the new track (the caller swaps it into the peers), keeping the mute
    /// state of the microphone.
    pub async fn switch_device(
        &self,
        kind: Kind,
        device_id: String,
    ) -> Result<Option<MediaStreamTrack>, SdkError> {
        match kind {
            Kind::Audio => self.microphone_id.replace(Some(device_id)),
            Kind::Video => self.camera_id.replace(Some(device_id)),
        };
        let Some(old) = self.track(kind) else {
            return Ok(None);
        };
        let stream = self
            .capture(kind == Kind::Audio, kind == Kind::Video)
            .await?;
        let Some(track) = stream
            .get_tracks()
            .iter()
            .find_map(|t| t.dyn_into::<MediaStreamTrack>().ok())
        else {
            return Ok(None);
        };
        track.set_enabled(old.enabled());
        self.keep(kind, Clone::clone(&track));
        Ok(Some(track))
    }

    fn constraints(&self, kind: Kind) -> JsValue {
        let obj = Object::new();
        let device = match kind {
            Kind::Audio => self.microphone_id.borrow().clone(),
            Kind::Video => self.camera_id.borrow().clone(),
        };
        if let Some(id) = device {
            let exact = Object::new();
            let _ = Reflect::set(&exact, &"exact".into(), &id.into());
            let _ = Reflect::set(&obj, &"deviceId".into(), &exact);
        }
        if kind == Kind::Video {
            let (w, h) = self.frame_size();
            let _ = Reflect::set(&obj, &"width".into(), &w.into());
            let _ = Reflect::set(&obj, &"height".into(), &h.into());
        }
        obj.into()
    }

    async fn capture(&self, audio: bool, video: bool) -> Result<MediaStream, SdkError> {
        let devices = media_devices()?;
        let constraints = MediaStreamConstraints::new();
        if audio {
            constraints.set_audio(&self.constraints(Kind::Audio));
        }
        if video {
            constraints.set_video(&self.constraints(Kind::Video));
        }
        let promise = devices
            .get_user_media_with_constraints(&constraints)
            .map_err(|e| media_error(&e, None))?;
        match JsFuture::from(promise).await {
            Ok(stream) => stream
                .dyn_into::<MediaStream>()
                .map_err(|_| sdk(code::MEDIA_DENIED, "getUserMedia returned no stream")),
            Err(e) => {
                let missing = if js_name(&e).as_deref() == Some("NotFoundError") {
                    Some(missing_kind(&devices, audio, video).await)
                } else {
                    None
                };
                Err(media_error(&e, missing))
            }
        }
    }
}

fn sdk(code: u32, message: &str) -> SdkError {
    SdkError {
        code: Some(code),
        message: message.into(),
    }
}

/// `navigator.mediaDevices`, which only exists in a secure context (SPEC 60007).
pub fn media_devices() -> Result<MediaDevices, SdkError> {
    let window = web_sys::window().ok_or_else(|| sdk(code::INSECURE_CONTEXT, "no window"))?;
    let insecure = || {
        sdk(
            code::INSECURE_CONTEXT,
            "publishing needs a secure context (HTTPS, http://localhost or http://127.0.0.1)",
        )
    };
    if !window.is_secure_context() {
        return Err(insecure());
    }
    let navigator = window.navigator();
    // `mediaDevices` is undefined outside secure contexts; web-sys would not notice.
    let devices = Reflect::get(&navigator, &"mediaDevices".into()).map_err(|_| insecure())?;
    if devices.is_undefined() {
        return Err(insecure());
    }
    navigator.media_devices().map_err(|_| insecure())
}

/// Which asked-for kind has no device at all (for NotFoundError).
async fn missing_kind(devices: &MediaDevices, audio: bool, video: bool) -> Kind {
    let has = |list: &Array, kind: &str| list.iter().any(|d| kind_name(&d) == kind);
    if let Ok(promise) = devices.enumerate_devices() {
        if let Ok(list) = JsFuture::from(promise).await {
            let list = Array::from(&list);
            if audio && !has(&list, "audioinput") {
                return Kind::Audio;
            }
            if video && !has(&list, "videoinput") {
                return Kind::Video;
            }
        }
    }
    if video {
        Kind::Video
    } else {
        Kind::Audio
    }
}

fn kind_name(d: &JsValue) -> String {
    Reflect::get(d, &"kind".into())
        .ok()
        .and_then(|k| k.as_string())
        .unwrap_or_default()
}

/// Maps a getUserMedia failure to SPEC §5 by the DOMException name.
fn media_error(e: &JsValue, missing: Option<Kind>) -> SdkError {
    let msg = js_message(e);
    match (js_name(e).as_deref(), missing) {
        (Some("NotFoundError"), Some(Kind::Audio)) => sdk(
            code::NO_MICROPHONE,
            &format!("no microphone available: {msg}"),
        ),
        (Some("NotFoundError"), _) => sdk(code::NO_CAMERA, &format!("no camera available: {msg}")),
        (Some("NotAllowedError"), _) => sdk(
            code::MEDIA_DENIED,
            &format!("access to camera/microphone denied: {msg}"),
        ),
        _ => sdk(code::MEDIA_DENIED, &msg),
    }
}

/// The id of the device a track captures from (`getSettings().deviceId`), if the browser says.
pub fn track_device_id(track: &MediaStreamTrack) -> Option<String> {
    let settings = Reflect::get(track, &"getSettings".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .and_then(|f| f.call0(track).ok())?;
    Reflect::get(&settings, &"deviceId".into())
        .ok()
        .and_then(|id| id.as_string())
}

/// `getCameras()` / `getMicrophones()`: the browser's devices of that kind.
pub async fn devices(kind: &str) -> Result<Array, Error> {
    let devices = media_devices().map_err(Error::Sdk)?;
    let list = JsFuture::from(devices.enumerate_devices()?).await?;
    Ok(Array::from(&list)
        .iter()
        .filter(|d| kind_name(d) == kind)
        .collect())
}
