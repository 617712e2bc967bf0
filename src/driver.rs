//! The driver: owns the core state machine and every browser resource of one `TRTCCalling`.
//!
//! [`Driver::dispatch`] is the only place the core is mutated. Inputs are queued, so an app
//! listener that calls an SDK method from inside an event runs after the current input's
//! effects; the core's `RefCell` is never borrowed across a JS call or an `.await`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use calling_core::{
    Call, CallStatus, Command, Effect, Input, MediaOutcome, PeerEvent, Reply, RequestId, SdpKind,
    SessionDescription,
};
use calling_protocol::{LoginOk, ServerMessage};
use js_sys::{Function, Promise};
use wasm_bindgen::JsValue;
use web_sys::MediaStream;

use crate::error::Error;
use crate::events::Listeners;
use crate::log;
use crate::media::{Kind, Media};
use crate::peer::Peer;
use crate::signaling::Signaling;
use crate::table::Table;
use crate::task;
use crate::timers::Timers;
use crate::view::Views;
use crate::volume;

/// Constructor options that outlive the constructor.
pub struct Config {
    pub sdk_app_id: Option<u64>,
    pub signaling_url: Option<String>,
    /// The app's `iceServers` (an `RTCIceServer[]`), which override the server's.
    pub ice_servers: Option<JsValue>,
}

pub struct Driver {
    me: Weak<Driver>,
    pub config: Config,
    core: RefCell<Call>,
    queue: RefCell<VecDeque<Input>>,
    running: Cell<bool>,
    /// resolve/reject of each app promise waiting for the core.
    pending: RefCell<Table<RequestId, (Function, Function)>>,
    next_request: Cell<RequestId>,
    pub listeners: Listeners,
    signaling: RefCell<Option<Signaling>>,
    server_ice: RefCell<JsValue>,
    peers: RefCell<Table<String, Rc<Peer>>>,
    pub media: Media,
    views: Views,
    timers: Timers,
    last_status: Cell<CallStatus>,
    /// `USER_VOICE_VOLUME` reports, running while connected.
    volume: RefCell<Option<gloo_timers::callback::Interval>>,
}

impl Driver {
    pub fn new(config: Config) -> Rc<Driver> {
        Rc::new_cyclic(|me| Driver {
            me: me.clone(),
            config,
            core: RefCell::new(Call::new()),
            queue: RefCell::default(),
            running: Cell::new(false),
            pending: RefCell::default(),
            next_request: Cell::new(1),
            listeners: Listeners::default(),
            signaling: RefCell::default(),
            server_ice: RefCell::new(JsValue::UNDEFINED),
            peers: RefCell::default(),
            media: Media::default(),
            views: Views::default(),
            timers: Timers::default(),
            last_status: Cell::new(CallStatus::Idle),
            volume: RefCell::default(),
        })
    }

    pub fn weak(&self) -> Weak<Driver> {
        self.me.clone()
    }

    pub fn views(&self) -> &Views {
        &self.views
    }

    /// Runs `f` with read access to the core (for the read-only helpers).
    pub fn with_core<T>(&self, f: impl FnOnce(&Call) -> T) -> T {
        f(&self.core.borrow())
    }

    pub fn logged_in(&self) -> bool {
        self.core.borrow().user_id().is_some()
    }

    pub fn is_connected(&self) -> bool {
        self.signaling.borrow().is_some()
    }

    pub fn set_signaling(&self, s: Signaling) {
        let old = self.signaling.replace(Some(s));
        drop(old);
    }

    /// Sends `command` to the core; the returned promise settles on its Resolve/Reject effect.
    pub fn command(&self, command: Command) -> Promise {
        let request = self.next_request.get();
        self.next_request.set(request.wrapping_add(1).max(1));
        let mut settle = None;
        let promise = Promise::new(&mut |resolve, reject| settle = Some((resolve, reject)));
        if let Some(settle) = settle {
            self.pending.borrow_mut().insert(request, settle);
        }
        self.dispatch(Input::Command { request, command });
        promise
    }

    /// Feeds one input to the core and carries out its effects (see the module doc).
    pub fn dispatch(&self, input: Input) {
        self.queue.borrow_mut().push_back(input);
        if self.running.replace(true) {
            return;
        }
        loop {
            let next = self.queue.borrow_mut().pop_front();
            let Some(input) = next else { break };
            self.process(input);
        }
        self.running.set(false);
        self.after_dispatch();
    }

    fn process(&self, input: Input) {
        if let Input::Server(ServerMessage::LoginOk(LoginOk { ice_servers, .. })) = &input {
            if let Ok(v) = crate::signaling::to_js(ice_servers) {
                self.server_ice.replace(v);
            }
        }
        let request = match &input {
            Input::Command { request, .. } => Some(*request),
            _ => None,
        };
        let now = js_sys::Date::now() as u64;
        let result = self.core.borrow_mut().handle(now, input);
        match result {
            Ok(effects) => {
                for effect in effects {
                    self.run(effect);
                }
            }
            Err(e) => {
                if let Some(request) = request {
                    self.settle(request, Err(Error::from(e).into_js()));
                } else {
                    log::debug(&format!("input refused: {e}"));
                }
            }
        }
    }

    /// After a call ends, whatever the core asked for, nothing of it may survive: no peer, no
    /// live local track, no element.
    fn after_dispatch(&self) {
        let status = self.core.borrow().status();
        let was = self.last_status.replace(status);
        if (status == CallStatus::Connected) != self.volume.borrow().is_some() {
            let reports = (status == CallStatus::Connected).then(|| volume::start(self.weak()));
            let old = self.volume.replace(reports);
            drop(old);
        }
        if status == CallStatus::Idle && was != CallStatus::Idle {
            let peers = self.peers.borrow_mut().take_values();
            close_later(peers);
            self.media.close(true, true);
            self.views.clear();
        }
    }

    fn settle(&self, request: RequestId, result: Result<JsValue, JsValue>) {
        let entry = self.pending.borrow_mut().remove(&request);
        let Some((resolve, reject)) = entry else {
            return;
        };
        let _ = match result {
            Ok(v) => resolve.call1(&JsValue::UNDEFINED, &v),
            Err(e) => reject.call1(&JsValue::UNDEFINED, &e),
        };
    }

    fn peer(&self, user_id: &str) -> Option<Rc<Peer>> {
        self.peers.borrow().get(user_id).cloned()
    }

    fn local_tracks(&self) -> [Option<web_sys::MediaStreamTrack>; 2] {
        [self.media.track(Kind::Audio), self.media.track(Kind::Video)]
    }

    /// Carries out an effect the glue itself produced (voice-volume reports).
    pub fn apply(&self, effect: Effect) {
        self.run(effect);
    }

    fn run(&self, effect: Effect) {
        match effect {
            Effect::Send(msg) => {
                let sent = match self.signaling.borrow().as_ref() {
                    Some(s) => s.send(&msg),
                    None => Err(Error::Browser("not connected".into())),
                };
                if let Err(e) = sent {
                    log::warn(&format!("cannot send to the server: {e}"));
                }
            }
            Effect::Emit(event) => match crate::signaling::to_js(&event) {
                Ok(payload) => self.listeners.emit(event.name(), &payload),
                Err(e) => log::error(&format!("cannot convert event: {e}")),
            },
            Effect::Resolve { request, reply } => {
                let value = match reply {
                    Reply::Undefined => Ok(JsValue::UNDEFINED),
                    reply => crate::signaling::to_js(&reply),
                };
                match value {
                    Ok(v) => self.settle(request, Ok(v)),
                    Err(e) => self.settle(request, Err(Error::from(e).into_js())),
                }
            }
            Effect::Reject { request, error } => {
                self.settle(request, Err(Error::Sdk(error).into_js()));
            }
            Effect::OpenMedia { audio, video } => self.open_media(audio, video),
            Effect::CloseMedia { audio, video } => {
                self.media.close(audio, video);
                for peer in self.peers.borrow().values() {
                    if audio {
                        peer.attach(Kind::Audio, None);
                    }
                    if video {
                        peer.attach(Kind::Video, None);
                    }
                }
                if video {
                    self.views.drop_local();
                }
            }
            Effect::MuteAudio(mute) => self.media.mute(mute),
            Effect::AttachMedia { user_id } => {
                if let Some(peer) = self.peer(&user_id) {
                    peer.start_sending(self.local_tracks());
                }
            }
            Effect::CreatePeer {
                user_id,
                initiator,
                polite: _,
            } => self.create_peer(user_id, initiator),
            Effect::ClosePeer { user_id } => {
                let peer = self.peers.borrow_mut().remove(&user_id);
                close_later(peer.into_iter().collect());
                self.views.close_user(&user_id);
            }
            Effect::CreateOffer { user_id } => {
                let Some(peer) = self.peer(&user_id) else {
                    return;
                };
                let me = self.weak();
                task::spawn(async move {
                    let event = match peer.create_offer().await {
                        Ok(desc) => PeerEvent::LocalDescription(desc),
                        Err(e) => PeerEvent::Failed(e.to_string()),
                    };
                    report(&me, user_id, event);
                });
            }
            Effect::ApplyRemoteDescription {
                user_id,
                description,
            } => self.apply_remote(user_id, description),
            Effect::AddIceCandidate { user_id, candidate } => {
                let Some(peer) = self.peer(&user_id) else {
                    return;
                };
                let me = self.weak();
                task::spawn(async move {
                    if let Err(e) = peer.add_candidate(&candidate).await {
                        report(&me, user_id, PeerEvent::Failed(e.to_string()));
                    }
                });
            }
            Effect::StartTimer { timer, after_ms } => {
                self.timers.start(self.weak(), timer, after_ms)
            }
            Effect::CancelTimer(timer) => self.timers.cancel(timer),
            Effect::Disconnect => {
                let old = self.signaling.take();
                drop(old);
                self.timers.clear();
            }
        }
    }

    fn ice_servers(&self) -> JsValue {
        match &self.config.ice_servers {
            Some(v) => v.clone(),
            None => self.server_ice.borrow().clone(),
        }
    }

    fn create_peer(&self, user_id: String, initiator: bool) {
        match Peer::new(self.weak(), user_id.clone(), initiator, &self.ice_servers()) {
            Ok(peer) => {
                // No track yet: they go on with `AttachMedia`, once the call is accepted.
                let old = self.peers.borrow_mut().insert(user_id, peer);
                drop(old);
            }
            Err(e) => {
                let me = self.weak();
                // Reported after this input's effects, like any browser result.
                task::spawn(async move { report(&me, user_id, PeerEvent::Failed(e.to_string())) });
            }
        }
    }

    fn apply_remote(&self, user_id: String, description: SessionDescription) {
        let Some(peer) = self.peer(&user_id) else {
            return;
        };
        let me = self.weak();
        task::spawn(async move {
            let local = || match me.upgrade() {
                Some(d) => d.local_tracks(),
                None => [None, None],
            };
            if let Err(e) = peer.apply_remote(&description, local).await {
                report(&me, user_id, PeerEvent::Failed(e.to_string()));
                return;
            }
            report(&me, user_id.clone(), PeerEvent::RemoteDescriptionApplied);
            if description.kind == SdpKind::Offer {
                let event = match peer.create_answer().await {
                    Ok(desc) => PeerEvent::LocalDescription(desc),
                    Err(e) => PeerEvent::Failed(e.to_string()),
                };
                report(&me, user_id, event);
            }
        });
    }

    fn open_media(&self, audio: bool, video: bool) {
        let me = self.weak();
        task::spawn(async move {
            let Some(d) = me.upgrade() else { return };
            let outcome = match d.media.open(audio, video).await {
                Ok((audio, video)) => {
                    let [a, v] = d.local_tracks();
                    let peers: Vec<_> = d.peers.borrow().values().cloned().collect();
                    // Only where the call was accepted: a ringing connection carries nothing.
                    for peer in peers.into_iter().filter(|p| p.is_attached()) {
                        peer.attach(Kind::Audio, a.as_ref());
                        peer.attach(Kind::Video, v.as_ref());
                    }
                    if let Err(e) = d.views.render_local(&me, v) {
                        log::warn(&format!("local view: {e}"));
                    }
                    MediaOutcome::Opened { audio, video }
                }
                Err(e) => MediaOutcome::Failed(e),
            };
            d.dispatch(Input::Media(outcome));
        });
    }

    /// Called by the peer when the user's first media packet arrived, before the core hears it.
    pub fn remote_media_arrived(&self, user_id: &str, stream: &MediaStream) {
        if let Err(e) = self.views.remote_arrived(&self.weak(), user_id, stream) {
            log::warn(&format!("remote view for {user_id}: {e}"));
        }
    }

    /// The socket closed without us asking.
    pub fn signaling_lost(&self) {
        let old = self.signaling.take();
        drop(old);
        self.timers.clear();
        self.dispatch(Input::SignalingClosed);
    }

    /// Swaps a new device's track into every peer and the local view (`switchDevice`).
    pub fn use_track(&self, kind: Kind, track: &web_sys::MediaStreamTrack) {
        let peers: Vec<_> = self.peers.borrow().values().cloned().collect();
        for peer in peers.into_iter().filter(|p| p.is_attached()) {
            peer.attach(kind, Some(track));
        }
        if kind == Kind::Video {
            if let Err(e) = self
                .views
                .render_local(&self.weak(), Some(Clone::clone(track)))
            {
                log::warn(&format!("local view: {e}"));
            }
        }
    }

    /// `startRemoteView`: the user's stream if their media has arrived.
    pub fn arrived_stream(&self, user_id: &str) -> Option<MediaStream> {
        self.peer(user_id)
            .filter(|p| p.has_media())
            .map(|p| p.remote_stream().clone())
    }

    /// Every peer connection, by remote user.
    pub fn peer_list(&self) -> Vec<(String, Rc<Peer>)> {
        let peers = self.peers.borrow();
        peers.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Drops a failed login's socket so a later login can start afresh.
    pub fn drop_signaling(&self) {
        let old = self.signaling.take();
        drop(old);
    }
}

/// Closes these connections in a later task. `RTCPeerConnection.close()` blocks for several ms,
/// which must not hold back the events of the message being handled (the `CALL_END` of a
/// hangup comes in the next server message); they report nothing from now on.
fn close_later(peers: Vec<Rc<Peer>>) {
    if peers.is_empty() {
        return;
    }
    for peer in &peers {
        peer.silence();
    }
    let mut scheduled = false;
    let later = Promise::new(&mut |resolve, _| {
        scheduled = web_sys::window().is_some_and(|w| {
            w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0)
                .is_ok()
        });
    });
    if !scheduled {
        return drop(peers);
    }
    task::spawn(async move {
        let _ = wasm_bindgen_futures::JsFuture::from(later).await;
        drop(peers);
    });
}

fn report(driver: &Weak<Driver>, user_id: String, event: PeerEvent) {
    if let Some(d) = driver.upgrade() {
        d.dispatch(Input::Peer { user_id, event });
    }
}
