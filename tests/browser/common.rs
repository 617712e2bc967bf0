//! Shared helpers of the browser tests: `TRTCCalling` instances logged in to the real
//! `calling-server` (address fixed at compile time by `CALLING_SERVER`), a recorder of every
//! event each instance receives, and waits that fail with a clear message at a deadline.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use js_sys::{Array, Function, Object, Promise, Reflect, JSON};
use trtc_calling_wasm::TrtcCalling;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// host:port of the calling-server the test command started.
pub const SERVER: &str = match option_env!("CALLING_SERVER") {
    Some(s) => s,
    None => "127.0.0.1:18080",
};
/// Where the test command serves the built package (with CORS, as a CDN would).
pub const PKG_URL: &str = match option_env!("CALLING_PKG_URL") {
    Some(s) => s,
    None => "http://127.0.0.1:18081",
};
/// host:port of the cut proxy in front of the server (`tests/cut-proxy.mjs`), and of its
/// control API: the reconnect tests send one side's signaling through it and break it.
pub const CUT_PROXY: &str = match option_env!("CALLING_CUT_PROXY") {
    Some(s) => s,
    None => "127.0.0.1:18082",
};
pub const CUT_CONTROL: &str = match option_env!("CALLING_CUT_CONTROL") {
    Some(s) => s,
    None => "127.0.0.1:18083",
};
/// host:port of the server the drain tests start and stop (`tests/drain-control.mjs`), and of
/// its control API.
pub const DRAIN_SERVER: &str = match option_env!("CALLING_DRAIN_SERVER") {
    Some(s) => s,
    None => "127.0.0.1:18084",
};
pub const DRAIN_CONTROL: &str = match option_env!("CALLING_DRAIN_CONTROL") {
    Some(s) => s,
    None => "127.0.0.1:18085",
};
/// host:port of the load balancer in front of the three-node cluster of the cluster tests
/// (`tests/cluster-control.mjs`), and of the control API that restarts and kills its nodes.
pub const CLUSTER_LB: &str = match option_env!("CALLING_CLUSTER_LB") {
    Some(s) => s,
    None => "127.0.0.1:18086",
};
pub const CLUSTER_CONTROL: &str = match option_env!("CALLING_CLUSTER_CONTROL") {
    Some(s) => s,
    None => "127.0.0.1:18087",
};
/// The server's dev-mode application.
pub const SDK_APP_ID: u32 = 1_400_000_000;
/// Long enough for a loopback call to connect on a loaded 2-core machine.
pub const DEADLINE_MS: u32 = 15_000;

#[wasm_bindgen(module = "/tests/browser/page.js")]
extern "C" {
    /// JSON with object keys sorted, so payloads compare independently of key order.
    pub fn canonical(v: &JsValue) -> String;
    pub fn delay(ms: u32) -> Promise;
    /// How many elements the SDK created are in the page.
    #[wasm_bindgen(js_name = sdkElements)]
    pub fn sdk_elements() -> u32;
    #[wasm_bindgen(js_name = makeDiv)]
    pub fn make_div(id: &str) -> web_sys::HtmlElement;
    /// How many server messages of `type` (the wire tag, e.g. `callEnded`) the latest socket
    /// logged in as `user` received.
    #[wasm_bindgen(js_name = framesReceived)]
    pub fn frames_received(user: &str, r#type: &str) -> u32;
    /// How many sockets have logged in as `user` or resumed its session (1 until it moves or
    /// reconnects).
    #[wasm_bindgen(js_name = sessionSockets)]
    pub fn session_sockets(user: &str) -> u32;
    /// The server messages of `type` that every socket of `user` received, all together.
    #[wasm_bindgen(js_name = framesReceivedByAll)]
    pub fn frames_received_by_all(user: &str, r#type: &str) -> u32;
    /// Of the page's getUserMedia calls since the `from`-th, those still pending plus the
    /// tracks they gave that are still live: 0 when every device they opened is off again.
    #[wasm_bindgen(js_name = capturesOpenSince)]
    pub fn captures_open_since(from: u32) -> u32;
}

/// Yields to the event loop once (a macrotask): whatever the SDK does on a message already
/// received runs before this returns.
pub async fn next_task() {
    let _ = JsFuture::from(delay(0)).await;
}

/// `inviteData.version` of trtc-calling-js's invitations, which the SDK reproduces.
pub const INVITE_DATA_VERSION: f64 = 4.0;

/// A user id unique to this run, so tests never see each other's sessions.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", (js_sys::Math::random() * 1e9) as u64)
}

/// Parses a JSON literal for an expected payload.
pub fn json(text: &str) -> JsValue {
    JSON::parse(text).unwrap_or_else(|_| panic!("bad JSON in test: {text}"))
}

pub fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

pub fn get_str(v: &JsValue, key: &str) -> String {
    get(v, key)
        .as_string()
        .unwrap_or_else(|| panic!("{key} is not a string in {}", canonical(v)))
}

pub fn get_num(v: &JsValue, key: &str) -> f64 {
    get(v, key)
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {}", canonical(v)))
}

/// Asserts two JS values are deeply equal (key order aside).
#[track_caller]
pub fn assert_js_eq(actual: &JsValue, expected: &JsValue, what: &str) {
    assert_eq!(canonical(actual), canonical(expected), "{what}");
}

/// Awaits a promise that must resolve.
pub async fn ok(p: Promise, what: &str) -> JsValue {
    match JsFuture::from(p).await {
        Ok(v) => v,
        Err(e) => panic!("{what} rejected: {}", error_text(&e)),
    }
}

/// Awaits a promise that must reject; returns the rejection.
pub async fn fails(p: Promise, what: &str) -> JsValue {
    match JsFuture::from(p).await {
        Ok(v) => panic!("{what} resolved with {} but should reject", canonical(&v)),
        Err(e) => e,
    }
}

pub fn error_text(e: &JsValue) -> String {
    let msg = get(e, "message").as_string().unwrap_or_default();
    format!("{msg} (code {:?})", get(e, "code").as_f64())
}

/// Tells the cut proxy to `command` (`cut?ms=N`, `stall?ms=N`, `cut`, `heal`).
pub async fn proxy(command: &str) {
    post(&format!("http://{CUT_CONTROL}/{command}")).await;
}

/// POSTs to a test helper's control `url`, which must answer 2xx.
pub async fn post(url: &str) {
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    let window = web_sys::window().expect("window");
    let resp: web_sys::Response = ok(window.fetch_with_str_and_init(url, &init), url)
        .await
        .unchecked_into();
    assert!(resp.ok(), "POST {url}: HTTP {}", resp.status());
}

pub async fn fetch_json(url: &str) -> JsValue {
    let window = web_sys::window().expect("window");
    let resp: web_sys::Response = ok(window.fetch_with_str(url), url).await.unchecked_into();
    assert!(resp.ok(), "GET {url}: HTTP {}", resp.status());
    ok(resp.json().expect("json()"), url).await
}

/// A fresh UserSig from the dev-mode server.
pub async fn user_sig(user: &str) -> String {
    user_sig_from(SERVER, user).await
}

/// A fresh UserSig from the dev-mode server at `server` (host:port).
pub async fn user_sig_from(server: &str, user: &str) -> String {
    let v = fetch_json(&format!(
        "http://{server}/dev/usersig?sdkAppID={SDK_APP_ID}&userID={user}"
    ))
    .await;
    get_str(&v, "userSig")
}

thread_local! {
    /// Every SDK instance a client holds. A test that panics never drops its clients, so its
    /// calls would go on in the page the next tests share: the panic moves them to
    /// `ABANDONED`, and the next login ends them first.
    static LIVE: RefCell<Vec<Weak<TrtcCalling>>> = RefCell::default();
    static ABANDONED: RefCell<Vec<Rc<TrtcCalling>>> = RefCell::default();
    static HOOKED: Cell<bool> = const { Cell::new(false) };
}

/// Chains a panic hook (once) that abandons every live client, before the test framework's.
fn watch_for_panics() {
    if HOOKED.with(|h| h.replace(true)) {
        return;
    }
    let framework = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let live: Vec<Rc<TrtcCalling>> = LIVE
            .with(|l| l.take())
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        ABANDONED.with(|a| a.borrow_mut().extend(live));
        framework(info);
    }));
}

/// Hangs up and logs out what a failed test left behind, so that one failure does not fail
/// every later test through its calls, devices and elements.
async fn end_abandoned_calls() {
    let abandoned = ABANDONED.with(|a| a.take());
    for sdk in &abandoned {
        // Bounded: a broken instance must not hang the tests after it.
        for p in [sdk.hangup(), sdk.logout()] {
            let _ = JsFuture::from(Promise::race(&Array::of2(&p, &delay(DEADLINE_MS)))).await;
        }
    }
    if !abandoned.is_empty() {
        wait_until("the calls a failed test left ended", || sdk_elements() == 0).await;
    }
}

/// One `TRTCCalling` instance and everything it emitted, in order.
pub struct Client {
    pub user: String,
    pub sdk: Rc<TrtcCalling>,
    log: Rc<RefCell<Vec<(String, JsValue)>>>,
    /// How many logged events each `wait_for` has consumed so far, per event name.
    seen: RefCell<Vec<usize>>,
    wake: Rc<RefCell<Option<Function>>>,
    /// The test's clock just before and just after this client's latest `accept()`.
    accepted_at: Cell<Option<(f64, f64)>>,
    _listeners: Vec<Closure<dyn FnMut(JsValue)>>,
}

/// Every event value of `TRTCCalling.EVENT`, once each.
pub fn event_values() -> Vec<String> {
    let event = TrtcCalling::event();
    let mut names: Vec<String> = Object::values(&event)
        .iter()
        .filter_map(|v| v.as_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

impl Client {
    /// A new instance, not logged in, recording every event.
    pub fn new(user: &str) -> Client {
        Client::with_server(user, SERVER)
    }

    /// [`Client::new`] whose signaling goes to `server` (host:port).
    pub fn with_server(user: &str, server: &str) -> Client {
        Client::with_options(user, server, &[])
    }

    /// [`Client::with_server`] with these constructor options too.
    pub fn with_options(user: &str, server: &str, extra: &[(&str, JsValue)]) -> Client {
        let options = Object::new();
        for (key, value) in extra {
            let _ = Reflect::set(&options, &(*key).into(), value);
        }
        let _ = Reflect::set(&options, &"SDKAppID".into(), &SDK_APP_ID.into());
        let _ = Reflect::set(
            &options,
            &"signalingUrl".into(),
            &format!("ws://{server}/ws").into(),
        );
        watch_for_panics();
        let sdk = Rc::new(TrtcCalling::new(options.into()));
        LIVE.with(|l| l.borrow_mut().push(Rc::downgrade(&sdk)));
        let log: Rc<RefCell<Vec<(String, JsValue)>>> = Rc::default();
        let wake: Rc<RefCell<Option<Function>>> = Rc::default();
        let mut listeners = Vec::new();
        for name in event_values() {
            let (log, wake, n) = (log.clone(), wake.clone(), name.clone());
            let cb = Closure::<dyn FnMut(JsValue)>::new(move |payload: JsValue| {
                log.borrow_mut().push((n.clone(), payload));
                if let Some(w) = wake.borrow_mut().take() {
                    let _ = w.call0(&JsValue::UNDEFINED);
                }
            });
            sdk.on(name.into(), cb.as_ref().clone(), JsValue::UNDEFINED);
            listeners.push(cb);
        }
        Client {
            user: user.to_owned(),
            sdk,
            log,
            seen: RefCell::default(),
            wake,
            accepted_at: Cell::default(),
            _listeners: listeners,
        }
    }

    /// A new instance logged in as `user`; waits for its `SDK_READY`.
    pub async fn login(user: &str) -> Client {
        Client::login_at(user, SERVER).await
    }

    /// [`Client::login`] through the cut proxy, which [`proxy`] breaks.
    pub async fn login_through_proxy(user: &str) -> Client {
        proxy("heal").await;
        Client::login_at(user, CUT_PROXY).await
    }

    /// [`Client::login`] of an instance made with these constructor options too.
    pub async fn login_with(user: &str, extra: &[(&str, JsValue)]) -> Client {
        Client::login_made(Client::with_options(user, SERVER, extra)).await
    }

    /// [`Client::login_through_proxy`] of an instance made with these constructor options too.
    pub async fn login_through_proxy_with(user: &str, extra: &[(&str, JsValue)]) -> Client {
        proxy("heal").await;
        Client::login_made(Client::with_options(user, CUT_PROXY, extra)).await
    }

    async fn login_at(user: &str, server: &str) -> Client {
        Client::login_made(Client::with_server(user, server)).await
    }

    /// [`Client::login`] on another dev-mode server (host:port), with a UserSig of its own.
    pub async fn login_on(user: &str, server: &str) -> Client {
        let sig = user_sig_from(server, user).await;
        Client::login_signed(Client::with_server(user, server), sig).await
    }

    async fn login_made(c: Client) -> Client {
        let sig = user_sig(&c.user).await;
        Client::login_signed(c, sig).await
    }

    async fn login_signed(c: Client, sig: String) -> Client {
        end_abandoned_calls().await;
        let user = c.user.clone();
        let user = user.as_str();
        let reply = ok(c.sdk.login(login_options(user, &sig)), "login").await;
        assert_js_eq(
            &reply,
            &json(&format!(r#"{{"code":0,"data":{{"userID":"{user}"}}}}"#)),
            "login result",
        );
        let ready = c.wait_for("sdkReady").await;
        assert_js_eq(
            &ready,
            &json(&format!(r#"{{"userID":"{user}"}}"#)),
            "SDK_READY",
        );
        c
    }

    /// The names of every event so far, in order (voice volume reports left out: they are
    /// periodic, not part of a flow).
    pub fn names(&self) -> Vec<String> {
        self.log
            .borrow()
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| n != "onUserVoiceVolume")
            .collect()
    }

    /// Every payload of `name` so far.
    pub fn payloads(&self, name: &str) -> Vec<JsValue> {
        self.log
            .borrow()
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, p)| p.clone())
            .collect()
    }

    fn find(&self, name: &str, skip: usize) -> Option<JsValue> {
        self.log
            .borrow()
            .iter()
            .filter(|(n, _)| n == name)
            .nth(skip)
            .map(|(_, p)| p.clone())
    }

    /// Waits for the next not yet awaited `name` event; panics at the deadline.
    pub async fn wait_for(&self, name: &str) -> JsValue {
        self.wait_for_within(name, DEADLINE_MS).await
    }

    /// [`Client::wait_for`] with a deadline of its own, for what takes longer by design (a
    /// dead connection is only noticed after some silence).
    pub async fn wait_for_within(&self, name: &str, deadline_ms: u32) -> JsValue {
        let index = event_values().iter().position(|n| n == name);
        let skip = match index {
            Some(i) => {
                let mut seen = self.seen.borrow_mut();
                if seen.len() <= i {
                    seen.resize(i + 1, 0);
                }
                seen[i]
            }
            None => panic!("{name} is not an event"),
        };
        let start = js_sys::Date::now();
        loop {
            if let Some(p) = self.find(name, skip) {
                if let Some(i) = index {
                    self.seen.borrow_mut()[i] += 1;
                }
                return p;
            }
            let left = deadline_ms as f64 - (js_sys::Date::now() - start);
            if left <= 0.0 {
                panic!(
                    "{}: no {name} event within {deadline_ms} ms; events so far: {:?}",
                    self.user,
                    self.names()
                );
            }
            // Woken by the next event of any kind, or by the deadline.
            let mut resolve = None;
            let next = Promise::new(&mut |r, _| resolve = Some(r));
            *self.wake.borrow_mut() = resolve;
            let race = Promise::race(&Array::of2(&next, &delay(left as u32)));
            let _ = JsFuture::from(race).await;
        }
    }

    /// Asserts no local track the SDK opened is still live, and no element it created remains.
    pub fn assert_released(&self) {
        let tracks = self.sdk.local_tracks();
        for t in tracks.iter() {
            let t: web_sys::MediaStreamTrack = t.unchecked_into();
            assert_eq!(
                t.ready_state(),
                web_sys::MediaStreamTrackState::Ended,
                "{}: local {} track still live after the call",
                self.user,
                t.kind()
            );
        }
    }

    /// Accepts the ringing invitation, which must succeed; remembers when, by the test's own
    /// clock, so that [`hang_up`] can check the call's duration in `CALL_END`.
    pub async fn accept(&self) -> JsValue {
        let before = js_sys::Date::now();
        let reply = ok(self.sdk.accept(), "accept").await;
        self.accepted_at(before);
        reply
    }

    /// An `accept()` made at `before` (by the test itself) has just resolved: the call's
    /// duration is counted from between the two.
    pub fn accepted_at(&self, before: f64) {
        self.accepted_at.set(Some((before, js_sys::Date::now())));
    }

    pub async fn logout(&self) {
        ok(self.sdk.logout(), "logout").await;
    }
}

pub fn login_options(user: &str, sig: &str) -> JsValue {
    let o = Object::new();
    let _ = Reflect::set(&o, &"userID".into(), &user.into());
    let _ = Reflect::set(&o, &"userSig".into(), &sig.into());
    o.into()
}

/// `{userID, type}` for `call`.
pub fn call_options(user: &str, call_type: u8) -> JsValue {
    json(&format!(r#"{{"userID":"{user}","type":{call_type}}}"#))
}

/// Waits until `cond` holds (polled each 50 ms); panics with `what` at the deadline.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = js_sys::Date::now();
    while !cond() {
        if js_sys::Date::now() - start > DEADLINE_MS as f64 {
            panic!("{what}: not within {DEADLINE_MS} ms");
        }
        let _ = JsFuture::from(delay(50)).await;
    }
}

/// Asserts the exact sequence of events a client received.
#[track_caller]
pub fn assert_events(c: &Client, expected: &[&str]) {
    assert_eq!(c.names(), expected, "events of {}", c.user);
}

/// Asserts the events a client received, as a multiset: used where the order between
/// independent sources (media packets vs. server messages) is not defined.
#[track_caller]
pub fn assert_event_set(c: &Client, expected: &[&str]) {
    let mut actual = c.names();
    actual.sort();
    let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(actual, expected, "events of {} (any order)", c.user);
}

/// Asserts both were received, and every `first` before any `then`.
#[track_caller]
pub fn assert_before(c: &Client, first: &str, then: &str) {
    let names = c.names();
    let a = names.iter().rposition(|n| n == first);
    let b = names.iter().position(|n| n == then);
    assert!(
        matches!((a, b), (Some(a), Some(b)) if a < b),
        "{}: expected {first} before {then} in {names:?}",
        c.user
    );
}

/// What each side sees while a 1:1 call connects: the other's media arriving and its first
/// media state (audio and video availability, reported once each).
pub const CONNECT_EVENTS: [&str; 3] = [
    "onUserEnter",
    "onUserAudioAvailable",
    "onUserVideoAvailable",
];

/// Payload `{userID}`.
pub fn user_payload(user: &str) -> JsValue {
    json(&format!(r#"{{"userID":"{user}"}}"#))
}

/// Sets up a connected 1:1 call from `a` to `b` of `call_type` and checks every event and
/// reply of the way: call result, INVITED, accept result, USER_ACCEPT, USER_ENTER on both
/// sides, and each side's view of the other's media. Returns the room id.
pub async fn connect(a: &Client, b: &Client, call_type: u8) -> f64 {
    let reply = ok(a.sdk.call(call_options(&b.user, call_type)), "call").await;
    let invite_id = get_str(&reply, "inviteID");
    let room = get_num(&reply, "roomID");
    assert_js_eq(
        &reply,
        &json(&format!(
            r#"{{"code":0,"inviteID":"{invite_id}","roomID":{room},"userID":"{}"}}"#,
            b.user
        )),
        "call result",
    );
    assert_eq!(a.sdk.get_call_status(), "calling");
    assert!(a.sdk.is_inviter());

    let invited = b.wait_for("onInvited").await;
    assert_js_eq(
        &invited,
        &json(&format!(
            r#"{{"sponsor":"{}","userIDList":["{}"],"isFromGroup":false,
                "inviteData":{{"version":{INVITE_DATA_VERSION},"callType":{call_type},"roomID":{room},"callEnd":0}},
                "inviteID":"{invite_id}"}}"#,
            a.user, b.user
        )),
        "INVITED",
    );
    assert_eq!(b.sdk.get_call_status(), "calling");
    assert!(!b.sdk.is_inviter());

    let accepted = b.accept().await;
    assert_js_eq(
        &accepted,
        &json(&format!(
            r#"{{"code":0,"roomID":{room},"callType":{call_type}}}"#
        )),
        "accept result",
    );
    assert_js_eq(
        &a.wait_for("onUserAccept").await,
        &user_payload(&b.user),
        "USER_ACCEPT",
    );
    assert_both_entered(a, b).await;
    let video = call_type == 2;
    for (me, other) in [(a, b), (b, a)] {
        let audio = me.wait_for("onUserAudioAvailable").await;
        assert_js_eq(
            &audio,
            &json(&format!(
                r#"{{"userID":"{}","isAudioAvailable":true}}"#,
                other.user
            )),
            "USER_AUDIO_AVAILABLE on connect",
        );
        let cam = me.wait_for("onUserVideoAvailable").await;
        assert_js_eq(
            &cam,
            &json(&format!(
                r#"{{"userID":"{}","isVideoAvailable":{video}}}"#,
                other.user
            )),
            "USER_VIDEO_AVAILABLE on connect",
        );
        assert_eq!(me.sdk.get_call_status(), "connected");
        assert_eq!(me.sdk.get_call_type(), call_type);
    }
    let mut caller = vec!["sdkReady", "onUserAccept"];
    caller.extend(CONNECT_EVENTS);
    assert_event_set(a, &caller);
    let mut callee = vec!["sdkReady", "onInvited"];
    callee.extend(CONNECT_EVENTS);
    assert_event_set(b, &callee);
    room
}

/// `hanger` hangs up a connected call with `other`: the other side sees USER_LEAVE then
/// CALL_END, the hanger CALL_END; both exactly once, with `{userID: hanger, callEnd}` where
/// `callEnd` is the time connected by the test's own clock (from around the `accept`, which
/// one of them made with [`Client::accept`], to the hangup), in whole seconds. Then both are
/// idle with every local track stopped and every SDK element gone.
pub async fn hang_up(hanger: &Client, other: &Client) {
    let (accept_called, accept_done) = [hanger, other]
        .iter()
        .filter_map(|c| c.accepted_at.get())
        .max_by(|x, y| x.0.total_cmp(&y.0))
        .unwrap_or_else(|| panic!("hang_up: neither side accepted with Client::accept"));
    let ends_before: Vec<usize> = [hanger, other]
        .iter()
        .map(|c| c.payloads("onCallEnd").len())
        .collect();
    let server_ends = frames_received(&other.user, "callEnded");
    let hangup_called = js_sys::Date::now();
    let reply = ok(hanger.sdk.hangup(), "hangup").await;
    assert_eq!(
        get_num(&reply, "code"),
        0.0,
        "hangup result {}",
        canonical(&reply)
    );
    let leave = other.wait_for("onUserLeave").await;
    assert_js_eq(&leave, &user_payload(&hanger.user), "USER_LEAVE");
    for c in [hanger, other] {
        let end = c.wait_for("onCallEnd").await;
        let received = js_sys::Date::now();
        let secs = get_num(&end, "callEnd");
        // Whole seconds: at least the time from accept() resolving to hangup() being called
        // (less a second for the moment each side counts as connected), at most the time
        // from accept() being called to this CALL_END.
        let least = ((hangup_called - accept_done) / 1000.0).floor() - 1.0;
        let most = ((received - accept_called) / 1000.0).ceil();
        assert!(
            secs >= least.max(0.0) && secs <= most,
            "{}: CALL_END callEnd {secs} s, the test measured {least}..{most} s",
            c.user
        );
        assert_js_eq(
            &end,
            &json(&format!(
                r#"{{"userID":"{}","callEnd":{secs}}}"#,
                hanger.user
            )),
            "CALL_END",
        );
        assert_eq!(c.sdk.get_call_status(), "idle");
    }
    // The server's own end of call reached the other side and was handled: any second
    // CALL_END it could cause has been emitted by now.
    wait_until(&format!("the server's callEnded at {}", other.user), || {
        frames_received(&other.user, "callEnded") > server_ends
    })
    .await;
    next_task().await;
    for (c, before) in [hanger, other].iter().zip(ends_before) {
        assert_eq!(
            c.payloads("onCallEnd").len(),
            before + 1,
            "{}: CALL_END not exactly once for one hangup: {:?}",
            c.user,
            c.names()
        );
    }
    assert_before(other, "onUserLeave", "onCallEnd");
    for c in [hanger, other] {
        c.assert_released();
    }
    assert_eq!(
        sdk_elements(),
        0,
        "elements the SDK created remain after the call"
    );
}

/// After `b` accepted `a`'s call: `USER_ENTER` on each side, naming the other.
pub async fn assert_both_entered(a: &Client, b: &Client) {
    assert_js_eq(
        &a.wait_for("onUserEnter").await,
        &user_payload(&b.user),
        "USER_ENTER at caller",
    );
    assert_js_eq(
        &b.wait_for("onUserEnter").await,
        &user_payload(&a.user),
        "USER_ENTER at callee",
    );
}

/// A JSON array of user ids.
pub fn id_list(users: &[&str]) -> String {
    let quoted: Vec<String> = users.iter().map(|u| format!("\"{u}\"")).collect();
    format!("[{}]", quoted.join(","))
}

/// `{userIDList, type}` for `groupCall`.
pub fn group_options(users: &[&str], call_type: u8) -> wasm_bindgen::JsValue {
    json(&format!(
        r#"{{"userIDList":{},"type":{call_type}}}"#,
        id_list(users)
    ))
}
