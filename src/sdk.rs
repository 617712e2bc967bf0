//! The exported `TRTCCalling` class: trtc-calling-js's public API (SPEC §2–§4). It is thin:
//! it validates arguments, forwards commands to the [`Driver`], and turns every failure into a
//! rejected promise (methods never throw synchronously).

use std::future::Future;
use std::rc::Rc;

use calling_core::{Command, EVENT_NAMES};
use calling_protocol::CallType;
use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::driver::Driver;
use crate::error::Error;
use crate::media::{self, Kind};
use crate::options::{self, non_empty, user_id};
use crate::task;
use crate::{log, signaling::Signaling};

#[wasm_bindgen(js_name = TRTCCalling)]
pub struct TrtcCalling {
    driver: Rc<Driver>,
    /// `SDKAppID`; `None` makes `login` reject.
    sdk_app_id: Option<u64>,
    /// `signalingUrl`; by default the page's own host.
    signaling_url: Option<String>,
    /// Why the constructor's options were unusable; `login` rejects with it.
    bad_options: Option<String>,
}

thread_local! {
    static EVENT: Object = frozen(EVENT_NAMES.iter().map(|(k, v)| (*k, JsValue::from_str(v))));
    static CALL_TYPE: Object = {
        let pairs = [("UNKNOWN", 0), ("AUDIO_CALL", 1), ("VIDEO_CALL", 2)];
        let obj = Object::new();
        for (name, n) in pairs {
            let _ = Reflect::set(&obj, &name.into(), &n.into());
            // trtc-calling-js's TypeScript-style enum also maps each number back to its name.
            let _ = Reflect::set(&obj, &n.into(), &name.into());
        }
        Object::freeze(&obj)
    };
}

fn frozen<'a>(pairs: impl Iterator<Item = (&'a str, JsValue)>) -> Object {
    let obj = Object::new();
    for (k, v) in pairs {
        let _ = Reflect::set(&obj, &k.into(), &v);
    }
    Object::freeze(&obj)
}

/// Runs `f` as a promise; an `Err` rejects it with a JS `Error`.
fn promise<F>(f: F) -> Promise
where
    F: Future<Output = Result<JsValue, Error>> + 'static,
{
    task::promise(async move { f.await.map_err(Error::into_js) })
}

fn rejected(e: Error) -> Promise {
    Promise::reject(&e.into_js())
}

/// `{code: 0}`.
fn ok() -> JsValue {
    let obj = Object::new();
    let _ = Reflect::set(&obj, &"code".into(), &0.into());
    obj.into()
}

#[wasm_bindgen(js_class = TRTCCalling)]
impl TrtcCalling {
    /// `new TRTCCalling({SDKAppID, tim?, signalingUrl?, iceServers?, iceTransportPolicy?,
    /// preconnect?})`. Never throws: unusable
    /// options, or a missing SDKAppID, make `login` reject.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> TrtcCalling {
        let (o, bad_options) = match options::Constructor::read(&options) {
            Ok(o) => (o, None),
            Err(e) => {
                let why = match e {
                    Error::InvalidParam(why) => why,
                    other => other.to_string(),
                };
                (options::Constructor::default(), Some(why))
            }
        };
        TrtcCalling {
            driver: Driver::new(o.ice_servers, o.policy),
            sdk_app_id: o.sdk_app_id,
            signaling_url: o.signaling_url,
            bad_options,
        }
    }

    /// `TRTCCalling.EVENT`: every event key and its string value.
    #[wasm_bindgen(getter = EVENT)]
    pub fn event() -> Object {
        EVENT.with(Object::clone)
    }

    /// `TRTCCalling.CALL_TYPE`, with the reverse mapping.
    #[wasm_bindgen(getter = CALL_TYPE)]
    pub fn call_type() -> Object {
        CALL_TYPE.with(Object::clone)
    }

    /// `on(eventName, callback, context?)`. The entry module passes the instance as the default
    /// context; a non-function callback is ignored.
    pub fn on(&self, event_name: JsValue, callback: JsValue, context: JsValue) {
        if let (Some(name), Ok(cb)) = (event_name.as_string(), callback.dyn_into::<Function>()) {
            self.driver.on(name, cb, context);
        }
    }

    pub fn off(&self, event_name: JsValue, callback: JsValue, context: JsValue) {
        if let (Some(name), Ok(cb)) = (event_name.as_string(), callback.dyn_into::<Function>()) {
            self.driver.off(&name, &cb, &context);
        }
    }

    #[wasm_bindgen(js_name = setLogLevel)]
    pub fn set_log_level(&self, level: JsValue) {
        if let Some(n) = level.as_f64() {
            log::set_level(n as i32);
        }
    }

    /// `login({userID, userSig})`: opens the socket, then authenticates.
    pub fn login(&self, options: JsValue) -> Promise {
        let checked = match &self.bad_options {
            Some(why) => Err(Error::InvalidParam(why.clone())),
            None => user_id(&options, "userID")
                .and_then(|user| Ok((user, non_empty(&options, "userSig")?))),
        };
        let (user_id, user_sig) = match checked {
            Ok(login) => login,
            Err(e) => return rejected(e),
        };
        let driver = self.driver.clone();
        let (sdk_app_id, url) = (self.sdk_app_id, self.signaling_url.clone());
        // Started alongside the connection; the first call may warm its encoders once it runs.
        let gates = JsFuture::from(crate::warmup::start_gates());
        task::promise(async move {
            let signaling = connect(&driver, sdk_app_id, url)
                .await
                .map_err(Error::into_js)?;
            let _ = gates.await;
            driver.set_signaling(signaling);
            let result = JsFuture::from(driver.command(Command::Login {
                sdk_app_id: sdk_app_id.unwrap_or_default(),
                user_id,
                user_sig,
            }))
            .await;
            if result.is_err() && !driver.logged_in() {
                driver.drop_signaling();
            }
            // The core's rejection is already a JS Error with its code: pass it on as is.
            result
        })
    }

    pub fn logout(&self) -> Promise {
        self.driver.command(Command::Logout)
    }

    /// `call({userID, type, offlinePushInfo?, timeout?})`.
    pub fn call(&self, options: JsValue) -> Promise {
        let command = (|| {
            Ok(Command::Call {
                user_id: user_id(&options, "userID")?,
                call_type: options::call_type(&options)?,
            })
        })();
        self.run(command)
    }

    /// `groupCall({userIDList, type, groupID?, offlinePushInfo?})`.
    #[wasm_bindgen(js_name = groupCall)]
    pub fn group_call(&self, options: JsValue) -> Promise {
        let command = (|| {
            Ok(Command::GroupCall {
                user_ids: options::user_ids(&options)?,
                call_type: options::call_type(&options)?,
                group_id: options::optional(&options, "groupID")?,
            })
        })();
        self.run(command)
    }

    /// `accept()`: 0.x-style arguments are ignored.
    pub fn accept(&self) -> Promise {
        self.driver.command(Command::Accept)
    }

    pub fn reject(&self) -> Promise {
        self.driver.command(Command::Reject)
    }

    pub fn hangup(&self) -> Promise {
        self.driver.command(Command::Hangup)
    }

    #[wasm_bindgen(js_name = openCamera)]
    pub fn open_camera(&self) -> Promise {
        self.driver.command(Command::OpenCamera)
    }

    #[wasm_bindgen(js_name = closeCamera)]
    pub fn close_camera(&self) -> Promise {
        self.driver.command(Command::CloseCamera)
    }

    #[wasm_bindgen(js_name = setMicMute)]
    pub fn set_mic_mute(&self, is_mute: JsValue) -> Promise {
        self.driver
            .command(Command::SetMicMute(is_mute.is_truthy()))
    }

    #[wasm_bindgen(js_name = switchToAudioCall)]
    pub fn switch_to_audio_call(&self) -> Promise {
        self.driver.command(Command::SwitchToAudio)
    }

    #[wasm_bindgen(js_name = switchToVideoCall)]
    pub fn switch_to_video_call(&self) -> Promise {
        self.driver.command(Command::SwitchToVideo)
    }

    /// `setVideoQuality(profile)`: '240p' … '1080p', for the next capture.
    #[wasm_bindgen(js_name = setVideoQuality)]
    pub fn set_video_quality(&self, profile: JsValue) -> Promise {
        if let Err(e) = self.require_login() {
            return rejected(e);
        }
        match profile.as_string() {
            Some(p) if self.driver.set_video_quality(&p) => Promise::resolve(&ok()),
            _ => rejected(Error::InvalidParam(
                "profile must be one of '240p', '360p', '480p', '720p', '1080p'".into(),
            )),
        }
    }

    #[wasm_bindgen(js_name = startLocalView)]
    pub fn start_local_view(&self, options: JsValue) -> Promise {
        let result = self.require_login().and_then(|_| {
            let dom_id = non_empty(&options, "videoViewDomID")?;
            self.driver.show_local_view(dom_id)
        });
        settled(result)
    }

    #[wasm_bindgen(js_name = stopLocalView)]
    pub fn stop_local_view(&self) -> Promise {
        let result = self.require_login().map(|_| self.driver.hide_local_view());
        settled(result)
    }

    #[wasm_bindgen(js_name = startRemoteView)]
    pub fn start_remote_view(&self, options: JsValue) -> Promise {
        let result = self.require_login().and_then(|_| {
            let user = user_id(&options, "userID")?;
            let dom_id = non_empty(&options, "videoViewDomID")?;
            self.driver.show_remote_view(&user, dom_id)
        });
        settled(result)
    }

    #[wasm_bindgen(js_name = stopRemoteView)]
    pub fn stop_remote_view(&self, options: JsValue) -> Promise {
        let result = self.require_login().and_then(|_| {
            let user = user_id(&options, "userID")?;
            self.driver.hide_remote_view(&user);
            Ok(())
        });
        settled(result)
    }

    #[wasm_bindgen(js_name = getCameras)]
    pub fn get_cameras(&self) -> Promise {
        self.devices("videoinput")
    }

    #[wasm_bindgen(js_name = getMicrophones)]
    pub fn get_microphones(&self) -> Promise {
        self.devices("audioinput")
    }

    /// `switchDevice({deviceType: 'video' | 'audio', deviceId})`.
    #[wasm_bindgen(js_name = switchDevice)]
    pub fn switch_device(&self, options: JsValue) -> Promise {
        let switch = self.require_login().and_then(|_| {
            let kind = match options::required::<String>(&options, "deviceType")?.as_str() {
                "video" => Kind::Video,
                "audio" => Kind::Audio,
                _ => {
                    return Err(Error::InvalidParam(
                        "deviceType must be 'video' or 'audio'".into(),
                    ))
                }
            };
            let device_id = non_empty(&options, "deviceId")?;
            // The switch may wait on a permission prompt: it holds the media, not the driver.
            Ok(self.driver.switch_device(kind, device_id))
        });
        promise(async move {
            switch?.await?;
            Ok(ok())
        })
    }

    #[wasm_bindgen(js_name = getCallStatus)]
    pub fn get_call_status(&self) -> String {
        self.driver.with_core(|c| c.status().as_str().into())
    }

    /// `getCallType()`: 1 audio, 2 video, 0 when there is no call.
    #[wasm_bindgen(js_name = getCallType)]
    pub fn get_call_type(&self) -> u8 {
        self.driver
            .with_core(|c| c.call_type().map_or(0, CallType::as_number))
    }

    #[wasm_bindgen(js_name = isInviter)]
    pub fn is_inviter(&self) -> bool {
        self.driver.with_core(|c| c.is_inviter())
    }

    #[wasm_bindgen(js_name = isGroupCall)]
    pub fn is_group_call(&self) -> bool {
        self.driver.with_core(|c| c.is_group_call())
    }

    #[wasm_bindgen(js_name = getInviteeList)]
    pub fn get_invitee_list(&self) -> Vec<String> {
        self.driver.with_core(|c| c.invitee_list())
    }

    #[wasm_bindgen(js_name = getUserID)]
    pub fn get_user_id(&self) -> Option<String> {
        self.driver.with_core(|c| c.user_id().map(str::to_owned))
    }

    /// Every local track the SDK captured that was not yet seen ended. Not part of the API:
    /// tests use it to check that no track stays live after a call.
    #[wasm_bindgen(js_name = __localTracks)]
    pub fn local_tracks(&self) -> Array {
        self.driver.local_tracks()
    }
}

impl TrtcCalling {
    fn require_login(&self) -> Result<(), Error> {
        if self.driver.logged_in() {
            Ok(())
        } else {
            Err(Error::NotLoggedIn)
        }
    }

    fn run(&self, command: Result<Command, Error>) -> Promise {
        match command {
            Ok(c) => self.driver.command(c),
            Err(e) => rejected(e),
        }
    }

    fn devices(&self, kind: &'static str) -> Promise {
        let login = self.require_login();
        promise(async move {
            login?;
            Ok(media::devices(kind).await?.into())
        })
    }
}

fn settled(result: Result<(), Error>) -> Promise {
    match result {
        Ok(()) => Promise::resolve(&ok()),
        Err(e) => rejected(e),
    }
}

/// Checks the SDKAppID and the browser, then opens the signaling socket.
async fn connect(
    driver: &Rc<Driver>,
    sdk_app_id: Option<u64>,
    url: Option<String>,
) -> Result<Signaling, Error> {
    if sdk_app_id.is_none() {
        return Err(Error::InvalidParam("SDKAppID must be a number".into()));
    }
    let window = web_sys::window().ok_or(Error::NoWebRtc)?;
    if !Reflect::has(&window, &"RTCPeerConnection".into()).unwrap_or(false) {
        return Err(Error::NoWebRtc);
    }
    if driver.is_connected() || driver.logged_in() {
        return Err(Error::AlreadyLoggedIn);
    }
    let url = match url {
        Some(url) => url,
        None => default_url(&window)?,
    };
    log::info(&format!("connecting to {url}"));
    driver.set_signaling_url(url.clone());
    Signaling::connect(&url, driver.sink()).await
}

/// `ws(s)://<page host>/ws`, wss on https pages.
fn default_url(window: &web_sys::Window) -> Result<String, Error> {
    let location = window.location();
    let host = location.host()?;
    let scheme = if location.protocol()? == "https:" {
        "wss"
    } else {
        "ws"
    };
    Ok(format!("{scheme}://{host}/ws"))
}
