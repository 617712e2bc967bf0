//! The API surface without a call: statics, listeners and their context, argument and state
//! checks, login failures, devices, and the npm package's entry module.

use crate::common::*;
use js_sys::{Array, Function, Object, Reflect};
use trtc_calling_wasm::TrtcCalling;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

#[wasm_bindgen(module = "/tests/browser/page.js")]
extern "C" {
    fn load(url: &str) -> js_sys::Promise;
}

#[wasm_bindgen_test]
fn event_and_call_type_statics() {
    let expected = json(
        r#"{"SDK_READY":"sdkReady","INVITED":"onInvited","USER_ACCEPT":"onUserAccept",
        "REJECT":"onReject","LINE_BUSY":"onLineBusy","NO_RESP":"onNoResp",
        "CALLING_CANCEL":"onCallingCancel","CALLING_TIMEOUT":"onCallingTimeout",
        "USER_ENTER":"onUserEnter","USER_LEAVE":"onUserLeave","CALL_END":"onCallEnd",
        "CALLING_END":"onCallEnd","USER_VIDEO_AVAILABLE":"onUserVideoAvailable",
        "USER_AUDIO_AVAILABLE":"onUserAudioAvailable","USER_VOICE_VOLUME":"onUserVoiceVolume",
        "GROUP_CALL_INVITEE_LIST_UPDATE":"onGroupCallInviteeListUpdate",
        "KICKED_OUT":"onKickedOut","CALL_TYPE_CHANGED":"onCallTypeChanged","DEVICE_CHANGED":"onDeviceChanged",
        "RECONNECTING":"onReconnecting","RECONNECTED":"onReconnected",
        "PEER_MEDIA_INTERRUPTED":"onPeerMediaInterrupted","PEER_MEDIA_RESTORED":"onPeerMediaRestored",
        "ERROR":"onError"}"#,
    );
    assert_js_eq(&TrtcCalling::event().into(), &expected, "EVENT");
    assert_js_eq(
        &TrtcCalling::call_type().into(),
        &json(
            r#"{"UNKNOWN":0,"AUDIO_CALL":1,"VIDEO_CALL":2,"0":"UNKNOWN","1":"AUDIO_CALL","2":"VIDEO_CALL"}"#,
        ),
        "CALL_TYPE",
    );
}

#[wasm_bindgen_test]
async fn methods_reject_before_login_and_never_throw() {
    let c = Client::new(&unique("nobody"));
    let view = json(r#"{"userID":"x","videoViewDomID":"nowhere"}"#);
    let calls = [
        ("call", c.sdk.call(call_options("bob", 1))),
        ("accept", c.sdk.accept()),
        ("openCamera", c.sdk.open_camera()),
        ("startLocalView", c.sdk.start_local_view(view.clone())),
        ("startRemoteView", c.sdk.start_remote_view(view)),
        ("getCameras", c.sdk.get_cameras()),
        ("setVideoQuality", c.sdk.set_video_quality("720p".into())),
    ];
    for (name, p) in calls {
        let e = fails(p, name).await;
        assert!(
            e.is_instance_of::<js_sys::Error>(),
            "{name} rejects with an Error"
        );
        assert!(!get_str(&e, "message").is_empty(), "{name}: empty message");
    }
}

#[wasm_bindgen_test]
async fn login_failures_reject_with_a_reason() {
    let c = Client::new(&unique("x"));
    let bad_id = fails(
        c.sdk.login(login_options("not valid!", "sig")),
        "login bad id",
    )
    .await;
    assert_eq!(get_num(&bad_id, "code"), 65535.0, "{}", error_text(&bad_id));
    let bad_sig = fails(
        c.sdk.login(login_options(&c.user, "garbage")),
        "login bad sig",
    )
    .await;
    assert!(!get_str(&bad_sig, "message").is_empty());
    // A real UserSig, but for another key and long expired (SPEC §7's known answer).
    let expired = "eJyrVgrxCdYrSy1SslIy0jNQ0gHzM1NS80oy0zLBwhWZiflZpXlQqeKU7MSCgswUJStDEwMogMiUZOamKlkZmqGKplYUZBaBxE1NTY3gosWZ6UpWSoZRpgF56S5Z7omlaanBmQH5TqUVKR6R5q7exl4hKY5ZvgGWxsEm3mVhxr62SrUAnj0xuw__";
    fails(
        c.sdk.login(login_options("xiaojun", expired)),
        "login other sig",
    )
    .await;
    assert!(c.sdk.get_user_id().is_none());

    let options = Object::new();
    let _ = Reflect::set(&options, &"SDKAppID".into(), &SDK_APP_ID.into());
    let _ = Reflect::set(
        &options,
        &"signalingUrl".into(),
        &"ws://127.0.0.1:9/ws".into(),
    );
    let nowhere = TrtcCalling::new(options.into());
    let sig = user_sig("carol").await;
    let e = fails(
        nowhere.login(login_options("carol", &sig)),
        "login unreachable",
    )
    .await;
    assert!(
        get_str(&e, "message").contains("127.0.0.1:9"),
        "{}",
        error_text(&e)
    );

    // After failures, the same instance still logs in.
    let sig = user_sig(&c.user).await;
    ok(
        c.sdk.login(login_options(&c.user, &sig)),
        "login after failures",
    )
    .await;
    c.wait_for("sdkReady").await;
    assert_eq!(c.sdk.get_user_id().as_deref(), Some(c.user.as_str()));
    fails(c.sdk.login(login_options(&c.user, &sig)), "second login").await;
    c.logout().await;
}

#[wasm_bindgen_test]
async fn listeners_honour_context_and_deduplicate() {
    let user = unique("ctx");
    let c = Client::new(&user);
    let record = Function::new_with_args("p", "this.calls.push(p.userID)");
    let ctx = |_: ()| {
        let o = Object::new();
        let _ = Reflect::set(&o, &"calls".into(), &Array::new());
        o
    };
    let (one, two, removed) = (ctx(()), ctx(()), ctx(()));
    let on = |o: &Object| c.sdk.on("sdkReady".into(), record.clone().into(), o.into());
    on(&one);
    on(&one); // same (callback, context): kept once
    on(&two);
    on(&removed);
    c.sdk
        .off("sdkReady".into(), record.clone().into(), (&removed).into());
    c.sdk.off(
        "sdkReady".into(),
        Function::new_no_args("").into(),
        (&one).into(),
    ); // unknown: no-op
    c.sdk
        .on("noSuchEvent".into(), record.clone().into(), (&one).into());

    let sig = user_sig(&user).await;
    ok(c.sdk.login(login_options(&user, &sig)), "login").await;
    c.wait_for("sdkReady").await;
    let calls = |o: &Object| Array::from(&get(o, "calls")).length();
    assert_eq!(calls(&one), 1, "duplicate listener called twice");
    assert_eq!(calls(&two), 1, "second context not called");
    assert_eq!(calls(&removed), 0, "removed listener called");
    assert_js_eq(
        &get(&one, "calls"),
        &json(&format!(r#"["{user}"]"#)),
        "this = context",
    );
    c.logout().await;
}

#[wasm_bindgen_test]
async fn parameters_and_idle_state() {
    let c = Client::login(&unique("params")).await;
    let bad_type = fails(c.sdk.call(call_options("bob", 3)), "call type 3").await;
    assert_eq!(get_num(&bad_type, "code"), 65535.0);
    let bad_profile = fails(c.sdk.set_video_quality("999p".into()), "setVideoQuality").await;
    assert_eq!(get_num(&bad_profile, "code"), 65535.0);
    ok(
        c.sdk.set_video_quality("720p".into()),
        "setVideoQuality 720p",
    )
    .await;
    assert_js_eq(
        &ok(c.sdk.hangup(), "idle hangup").await,
        &json(r#"{"code":0,"msg":"ok"}"#),
        "idle hangup",
    );
    assert!(ok(c.sdk.accept(), "idle accept").await.is_undefined());
    assert_eq!(c.sdk.get_call_status(), "idle");
    assert_eq!(c.sdk.get_call_type(), 0);
    let cams = Array::from(&ok(c.sdk.get_cameras(), "getCameras").await);
    assert!(cams.length() >= 1, "the fake camera is listed");
    assert_eq!(get_str(&cams.get(0), "kind"), "videoinput");
    let mics = Array::from(&ok(c.sdk.get_microphones(), "getMicrophones").await);
    assert!(mics.length() >= 1);
    assert!(mics.iter().all(|m| get_str(&m, "kind") == "audioinput"));
    let sw = json(r#"{"deviceType":"screen","deviceId":"x"}"#);
    assert_eq!(
        get_num(
            &fails(c.sdk.switch_device(sw), "switchDevice").await,
            "code"
        ),
        65535.0
    );
    c.logout().await;
}

/// The npm package's entry module, imported as a `<script type="module">` page would: its
/// default export is the initialised class.
#[wasm_bindgen_test]
async fn entry_module_exports_the_ready_class() {
    let module = ok(
        load(&format!("{PKG_URL}/index.js")),
        "import the entry module",
    )
    .await;
    let class: Function = get(&module, "default").unchecked_into();
    assert_eq!(
        get(&get(&class, "EVENT"), "INVITED").as_string().as_deref(),
        Some("onInvited")
    );
    assert_eq!(get_num(&get(&class, "CALL_TYPE"), "VIDEO_CALL"), 2.0);

    let user = unique("pkg");
    let options = json(&format!(
        r#"{{"SDKAppID":{SDK_APP_ID},"signalingUrl":"ws://{SERVER}/ws"}}"#
    ));
    let sdk = Reflect::construct(&class, &Array::of1(&options)).expect("new TRTCCalling");
    // Without a context, listeners run with `this` = the instance.
    let seen = Function::new_with_args("p", "globalThis.__pkgThis = this;");
    let on: Function = get(&sdk, "on").unchecked_into();
    on.call2(&sdk, &"sdkReady".into(), &seen).expect("on");
    let login: Function = get(&sdk, "login").unchecked_into();
    let sig = user_sig(&user).await;
    let p = login
        .call1(&sdk, &login_options(&user, &sig))
        .expect("login");
    ok(p.unchecked_into(), "login through the package").await;
    wait_until("sdkReady through the package", || {
        !get(&js_sys::global(), "__pkgThis").is_undefined()
    })
    .await;
    assert!(
        js_sys::Object::is(&get(&js_sys::global(), "__pkgThis"), &sdk),
        "this != instance"
    );
    let logout: Function = get(&sdk, "logout").unchecked_into();
    let p = logout.call0(&sdk).expect("logout");
    let _ = JsFuture::from(js_sys::Promise::from(p)).await;
}
