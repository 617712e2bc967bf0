//! The driver: owns the core [`Session`] and every browser resource of one `TRTCCalling`.
//!
//! Data flows one way. The class hands app commands to [`Driver::command`]; the browser modules
//! (signaling, peer, media, timers, fallback, volume) report what happened through a [`Sink`],
//! which can only queue an [`Input`]; the driver feeds inputs to the core one at a time and
//! carries out the returned effects in order. Every decision is the core's: the modules below
//! never call back into the driver, and no task holds the driver across an `.await`.
//!
//! Inputs are queued, so an app listener that calls an SDK method from inside an event runs
//! after the current input's effects; the core's `RefCell` is never borrowed across a JS call
//! or an `.await`.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::{Rc, Weak};

use calling_core::{
    Command, ConnectPolicy, DeviceChange, Effect, Input, MediaOutcome, PeerEvent, Reply, RequestId,
    SdpKind, Session, SessionDescription, SFU_LINK,
};
use gloo_events::EventListener;
use js_sys::{Array, Function, Promise};
use wasm_bindgen::JsValue;

use crate::error::Error;
use crate::events::Listeners;
use crate::log;
use crate::media::{Kind, Media};
use crate::peer::PeerConnection;
use crate::signaling::Signaling;
use crate::table::Table;
use crate::task;
use crate::timers::Timers;
use crate::view::Views;
use crate::{fallback, volume};

/// Where browser modules report what happened: it can only queue an [`Input`] for the core.
/// It holds the driver weakly and only for the moment of queueing, so nothing kept by a
/// callback or a pending task keeps a closed SDK alive.
#[derive(Clone)]
pub struct Sink {
    driver: Weak<Driver>,
}

impl Sink {
    /// A sink that reaches no driver: what is queued on it is dropped.
    pub fn nowhere() -> Sink {
        Sink {
            driver: Weak::new(),
        }
    }

    /// Queues `input`; the core handles it after the input being handled now, if any.
    pub fn queue(&self, input: Input) {
        if let Some(driver) = self.driver.upgrade() {
            driver.dispatch(input);
        }
    }
}

pub struct Driver {
    me: Weak<Driver>,
    core: RefCell<Session>,
    /// Inputs waiting for the core, oldest first (a few at most: a `Vec` costs less wasm than
    /// a `VecDeque`).
    queue: RefCell<Vec<Input>>,
    running: Cell<bool>,
    /// resolve/reject of each app promise waiting for the core.
    pending: RefCell<Table<RequestId, (Function, Function)>>,
    next_request: Cell<RequestId>,
    listeners: Listeners,
    /// The app's `iceServers` option (an `RTCIceServer[]`), which overrides the server's list.
    ice_override: Option<JsValue>,
    signaling: RefCell<Option<Signaling>>,
    /// Where the signaling socket connects, for the new sockets a reconnect asks for.
    signaling_url: RefCell<Option<String>>,
    /// Counts socket attempts: a socket that opens after a newer attempt or a disconnect is
    /// no longer wanted.
    socket_attempt: Cell<u32>,
    /// `online` and `visibilitychange`, which tell the core to check its connection.
    _network: Vec<EventListener>,
    peers: RefCell<Table<String, Rc<PeerConnection>>>,
    media: Rc<Media>,
    views: Rc<Views>,
    timers: Timers,
}

impl Driver {
    /// A driver for one instance; `ice_override` is the app's `iceServers`, given once, and
    /// `policy` what its connections may reveal.
    pub fn new(ice_override: Option<JsValue>, policy: ConnectPolicy) -> Rc<Driver> {
        let driver = Rc::new_cyclic(|me| Driver {
            me: me.clone(),
            // The seed of the reconnect backoff's jitter, so that many pages cut off at once
            // do not all come back at the same moments.
            core: RefCell::new(
                Session::with_seed((js_sys::Math::random() * u32::MAX as f64) as u64)
                    .with_policy(policy),
            ),
            queue: RefCell::default(),
            running: Cell::new(false),
            pending: RefCell::default(),
            next_request: Cell::new(1),
            listeners: Listeners::default(),
            ice_override,
            signaling: RefCell::default(),
            signaling_url: RefCell::default(),
            socket_attempt: Cell::new(0),
            _network: network_listeners(Sink { driver: me.clone() }),
            peers: RefCell::default(),
            media: Rc::new(Media::default()),
            views: Views::new(),
            timers: Timers::default(),
        });
        fallback::install(&driver.media, Rc::downgrade(&driver.views), driver.sink());
        driver
    }

    pub fn sink(&self) -> Sink {
        Sink {
            driver: self.me.clone(),
        }
    }

    /// Runs `f` with read access to the core (for the read-only helpers).
    pub fn with_core<T>(&self, f: impl FnOnce(&Session) -> T) -> T {
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

    pub fn set_signaling_url(&self, url: String) {
        self.signaling_url.replace(Some(url));
    }

    /// Drops a failed login's socket so a later login can start afresh.
    pub fn drop_signaling(&self) {
        let old = self.signaling.take();
        drop(old);
    }

    pub fn on(&self, name: String, callback: Function, context: JsValue) {
        self.listeners.add(name, callback, context);
    }

    pub fn off(&self, name: &str, callback: &Function, context: &JsValue) {
        self.listeners.remove(name, callback, context);
    }

    /// `setVideoQuality`: false for an unknown profile.
    pub fn set_video_quality(&self, profile: &str) -> bool {
        self.media.set_profile(profile)
    }

    /// `startLocalView`: renders the camera now if it is live, else when it opens.
    pub fn show_local_view(&self, dom_id: String) -> Result<(), Error> {
        self.views.show_local(dom_id, self.media.track(Kind::Video))
    }

    pub fn hide_local_view(&self) {
        self.views.hide_local();
    }

    /// `startRemoteView`: renders the user's media now if it has arrived, else when it does.
    pub fn show_remote_view(&self, user_id: &str, dom_id: String) -> Result<(), Error> {
        // Over the user's own connection, or through the SFU's.
        let stream = [user_id, SFU_LINK]
            .iter()
            .find_map(|key| self.peer(key).and_then(|p| p.stream_of(user_id)));
        self.views.show_remote(user_id, dom_id, stream.as_ref())
    }

    pub fn hide_remote_view(&self, user_id: &str) {
        self.views.hide_remote(user_id);
    }

    /// `switchDevice`: captures from `device_id` if that kind is live and tells the core, which
    /// sends the new track where our media goes. The returned future does not hold the driver
    /// while the browser may be asking the user for permission.
    pub fn switch_device(
        &self,
        kind: Kind,
        device_id: String,
    ) -> impl Future<Output = Result<(), Error>> + 'static {
        let (media, views, sink) = (self.media.clone(), Rc::downgrade(&self.views), self.sink());
        async move {
            if let Some(track) = media.switch_device(kind, device_id).await? {
                if kind == Kind::Video {
                    show_camera(&views, track);
                }
                sink.queue(Input::Device {
                    kind,
                    change: DeviceChange::Switched,
                });
            }
            Ok(())
        }
    }

    /// Every local track captured and not yet seen ended (test hook).
    pub fn local_tracks(&self) -> Array {
        self.media.opened_tracks()
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
    fn dispatch(&self, input: Input) {
        self.queue.borrow_mut().push(input);
        if self.running.replace(true) {
            return;
        }
        loop {
            let next = {
                let mut queue = self.queue.borrow_mut();
                (!queue.is_empty()).then(|| queue.remove(0))
            };
            let Some(input) = next else { break };
            self.process(input);
        }
        self.running.set(false);
    }

    fn process(&self, input: Input) {
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

    fn peer(&self, user_id: &str) -> Option<Rc<PeerConnection>> {
        self.peers.borrow().get(user_id).cloned()
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
            Effect::Emit(event) => match crate::convert::to_js(&event) {
                Ok(payload) => self.listeners.emit(event.name(), &payload),
                Err(e) => log::error(&format!("cannot convert event: {e}")),
            },
            Effect::Resolve { request, reply } => {
                let value = match reply {
                    Reply::Undefined => Ok(JsValue::UNDEFINED),
                    reply => crate::convert::to_js(&reply),
                };
                match value {
                    Ok(v) => self.settle(request, Ok(v)),
                    Err(e) => self.settle(request, Err(e.into_js())),
                }
            }
            Effect::Reject { request, error } => {
                self.settle(request, Err(Error::Sdk(error).into_js()));
            }
            Effect::OpenMedia {
                token,
                audio,
                video,
            } => self.open_media(token, audio, video),
            Effect::SendTracks { user_id } => {
                if let Some(peer) = self.peer(&user_id) {
                    peer.send_tracks(self.media.tracks());
                }
            }
            Effect::CloseMedia { audio, video } => {
                self.media.close(audio, video);
                // A stopped track sends nothing; off the senders it holds no device either.
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
                    peer.start_sending(self.media.tracks());
                }
            }
            Effect::CreatePeer {
                user_id,
                initiator,
                polite: _,
                ice_servers,
                relay_only,
            } => {
                let ice = match &self.ice_override {
                    Some(v) => Ok(v.clone()),
                    None => crate::convert::to_js(&ice_servers),
                };
                self.create_peer(user_id, initiator, ice, relay_only);
            }
            // The app's own `iceServers` option, when set, stays in force.
            Effect::RenewIceServers { ice_servers } => {
                if self.ice_override.is_none() {
                    match crate::convert::to_js(&ice_servers) {
                        Ok(ice) => self
                            .peers
                            .borrow()
                            .values()
                            .for_each(|p| p.use_ice_servers(&ice)),
                        Err(e) => log::warn(&format!("renewed ICE servers: {e}")),
                    }
                }
            }
            Effect::AllowAllCandidates { user_id } => {
                if let Some(peer) = self.peer(&user_id) {
                    peer.allow_all_candidates();
                }
            }
            Effect::ClosePeer { user_id } => {
                let peer = self.peers.borrow_mut().remove(&user_id);
                // The participants an SFU connection carried play from a new one once their
                // media arrives there (the core replaces a connection the SFU lost); their
                // views stay until then.
                if let Some(remotes) = peer.as_deref().and_then(|p| p.remotes()) {
                    remotes
                        .users()
                        .iter()
                        .for_each(|user| self.views.stream_gone(user));
                }
                close_later(peer.into_iter().collect());
                if let Some(remotes) = self.peer(SFU_LINK).as_deref().and_then(|p| p.remotes()) {
                    remotes.forget(&user_id);
                }
                self.views.close_user(&user_id);
            }
            // The user's media switches to what the SFU forwards, already flowing.
            Effect::RetirePeer { user_id } => {
                let peer = self.peers.borrow_mut().remove(&user_id);
                close_later(peer.into_iter().collect());
                let sfu = self.peer(SFU_LINK);
                if let Some(stream) = sfu.and_then(|p| p.stream_of(&user_id)) {
                    crate::peer::play(&Rc::downgrade(&self.views), &user_id, &stream);
                }
            }
            Effect::CreateOffer { user_id } => {
                let Some(peer) = self.peer(&user_id) else {
                    return;
                };
                let sink = self.sink();
                task::spawn(async move {
                    let event = match peer.create_offer().await {
                        Ok(desc) => PeerEvent::LocalDescription(desc),
                        // Glare: the other side's offer was applied while ours was being made
                        // (the core rolled ours back), so ours no longer fits. The browser
                        // asks again once stable if something is still to negotiate.
                        Err(e) if !peer.is_stable() => {
                            return log::warn(&format!("offer to {user_id} superseded: {e}"));
                        }
                        Err(e) => PeerEvent::Failed(e.to_string()),
                    };
                    sink.queue(Input::Peer { user_id, event });
                });
            }
            Effect::ApplyRemoteDescription {
                user_id,
                description,
            } => self.apply_remote(user_id, description),
            // A candidate the browser refuses is not worth failing a call for: around an ICE
            // restart, candidates of the previous credentials still arrive after the new
            // description and no longer match it. If no candidate works, the connection's
            // state says so and the core restarts or gives up.
            Effect::AddIceCandidate { user_id, candidate } => {
                let Some(peer) = self.peer(&user_id) else {
                    return;
                };
                task::spawn(async move {
                    if let Err(e) = peer.add_candidate(&candidate).await {
                        log::warn(&format!("a candidate from {user_id} was not added: {e}"));
                    }
                });
            }
            Effect::RestartIce { user_id } => {
                if let Some(peer) = self.peer(&user_id) {
                    peer.restart_ice();
                }
            }
            Effect::RequestKeyFrame { user_id } => {
                if let Some(peer) = self.peer(&user_id) {
                    peer.request_key_frame();
                }
            }
            Effect::StartTimer { timer, after_ms } => {
                self.timers.start(self.sink(), timer, after_ms)
            }
            Effect::CancelTimer(timer) => self.timers.cancel(timer),
            Effect::Disconnect => {
                let old = self.signaling.take();
                drop(old);
                // A socket still opening for a reconnect is not wanted any more either.
                self.socket_attempt
                    .set(self.socket_attempt.get().wrapping_add(1));
                self.timers.clear();
            }
            Effect::ReadAudioLevels => {
                let peers = self.peers.borrow();
                let peers = peers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                volume::read(peers, self.sink());
            }
            Effect::MeasureViews => {
                let views = self.views.rendered_sizes();
                self.sink().queue(Input::RenderedViews(views));
            }
            Effect::RemoveViews => self.views.clear(),
            // handled by the reconnect glue
            Effect::OpenSignaling => self.reopen_signaling(),
            Effect::Farewell(frames) => {
                if let Some(url) = self.signaling_url.borrow().clone() {
                    Signaling::farewell(url, frames);
                }
            }
        }
    }

    /// Replaces the signaling socket: the old one is abandoned (closed as a reconnect, so the
    /// server keeps the session), a new one opens, and the core hears `SignalingOpened` or,
    /// if it cannot be had, `SignalingClosed`.
    fn reopen_signaling(&self) {
        if let Some(old) = self.signaling.take() {
            old.abandon();
        }
        let attempt = self.socket_attempt.get().wrapping_add(1);
        self.socket_attempt.set(attempt);
        let sink = self.sink();
        let Some(url) = self.signaling_url.borrow().clone() else {
            return sink.queue(Input::SignalingClosed);
        };
        let me = self.me.clone();
        task::spawn(async move {
            let opened = Signaling::connect(&url, sink.clone()).await;
            // Only a weak handle waits on the network; a newer attempt or a disconnect may
            // have come meanwhile, and then this socket is dropped unused.
            let Some(driver) = me.upgrade() else { return };
            if driver.socket_attempt.get() != attempt {
                return;
            }
            match opened {
                Ok(signaling) => {
                    driver.set_signaling(signaling);
                    sink.queue(Input::SignalingOpened);
                }
                Err(_) => sink.queue(Input::SignalingClosed),
            }
        });
    }

    fn create_peer(
        &self,
        user_id: String,
        initiator: bool,
        ice: Result<JsValue, Error>,
        relay_only: bool,
    ) {
        let views = Rc::downgrade(&self.views);
        let created = ice.and_then(|ice| {
            let user = user_id.clone();
            PeerConnection::new(self.sink(), views, user, initiator, &ice, relay_only)
        });
        match created {
            Ok(peer) => {
                if user_id == SFU_LINK {
                    crate::sfu::add_senders(peer.connection(), self.media.frame_size());
                }
                // No track yet: they go on with `AttachMedia`, once the call is accepted.
                let old = self.peers.borrow_mut().insert(user_id, peer);
                drop(old);
            }
            Err(e) => {
                // Reported after this input's effects, like any browser result.
                let sink = self.sink();
                task::spawn(async move {
                    let event = PeerEvent::Failed(e.to_string());
                    sink.queue(Input::Peer { user_id, event });
                });
            }
        }
    }

    fn apply_remote(&self, user_id: String, description: SessionDescription) {
        let Some(peer) = self.peer(&user_id) else {
            return;
        };
        let (sink, media) = (self.sink(), self.media.clone());
        task::spawn(async move {
            if let Err(e) = peer.apply_remote(&description, || media.tracks()).await {
                let event = PeerEvent::Failed(e.to_string());
                return sink.queue(Input::Peer { user_id, event });
            }
            let event = PeerEvent::RemoteDescriptionApplied;
            sink.queue(Input::Peer {
                user_id: user_id.clone(),
                event,
            });
            if description.kind == SdpKind::Offer {
                let event = match peer.create_answer().await {
                    Ok(desc) => PeerEvent::LocalDescription(desc),
                    Err(e) => PeerEvent::Failed(e.to_string()),
                };
                sink.queue(Input::Peer { user_id, event });
            }
        });
    }

    /// Captures the tracks asked for and reports the outcome with the core's token. The task
    /// holds the media and the sink, never the driver, while a permission prompt may be open.
    fn open_media(&self, token: u32, audio: bool, video: bool) {
        let (media, views, sink) = (self.media.clone(), Rc::downgrade(&self.views), self.sink());
        task::spawn(async move {
            let outcome = match media.open(audio, video).await {
                Ok((audio, video)) => {
                    if let Some(camera) = media.track(Kind::Video) {
                        show_camera(&views, camera);
                    }
                    MediaOutcome::Opened { audio, video }
                }
                Err(e) => MediaOutcome::Failed(e),
            };
            sink.queue(Input::Media { token, outcome });
        });
    }
}

/// Puts a new camera track into the local view asked for, if any.
pub fn show_camera(views: &Weak<Views>, camera: web_sys::MediaStreamTrack) {
    if let Some(views) = views.upgrade() {
        if let Err(e) = views.render_local(Some(camera)) {
            log::warn(&format!("local view: {e}"));
        }
    }
}

/// Closes these connections in a later task. `RTCPeerConnection.close()` blocks for several ms,
/// which must not hold back the events of the message being handled (the `CALL_END` of a
/// hangup comes in the next server message); they report nothing from now on.
fn close_later(peers: Vec<Rc<PeerConnection>>) {
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

/// The page's signs that a dead connection may be worth checking: the network came back or
/// went away, or the page became visible again (a background tab's timers may have slept
/// through a loss).
fn network_listeners(sink: Sink) -> Vec<EventListener> {
    let Some(window) = web_sys::window() else {
        return Vec::new();
    };
    let online = {
        let sink = sink.clone();
        EventListener::new(&window, "online", move |_| sink.queue(Input::NetworkOnline))
    };
    let offline = {
        let sink = sink.clone();
        EventListener::new(&window, "offline", move |_| {
            sink.queue(Input::NetworkOffline)
        })
    };
    let mut listeners = vec![online, offline];
    if let Some(document) = window.document() {
        let page = document.clone();
        listeners.push(EventListener::new(
            &document,
            "visibilitychange",
            move |_| {
                if page.visibility_state() == web_sys::VisibilityState::Visible {
                    sink.queue(Input::NetworkOnline);
                }
            },
        ));
    }
    listeners
}
