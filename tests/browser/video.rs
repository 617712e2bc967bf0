//! Helpers of the browser tests that look at rendered video: the `<video>` the SDK put in a
//! container, and a wait for it to show frames that keep advancing.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wasm_bindgen::{JsCast, JsValue};
use web_sys::HtmlVideoElement;

use crate::common::{error_text, json, ok, wait_until, Client};

/// Each side of an accepted 1:1 call waits for the other's `USER_ENTER`, renders them into its
/// own element (`a_remote`, `b_remote`), and both play.
pub async fn show_each_other(a: &Client, a_remote: &str, b: &Client, b_remote: &str) {
    for (c, other, dom) in [(a, &b.user, a_remote), (b, &a.user, b_remote)] {
        c.wait_for("onUserEnter").await;
        ok(
            c.sdk.start_remote_view(view_options(other, dom)),
            "startRemoteView",
        )
        .await;
    }
    assert_playing(a_remote).await;
    assert_playing(b_remote).await;
}

/// `{userID, videoViewDomID}` for the view methods.
pub fn view_options(user: &str, dom: &str) -> JsValue {
    json(&format!(
        r#"{{"userID":"{user}","videoViewDomID":"{dom}"}}"#
    ))
}

/// The `<video>` the SDK created inside the element `dom`.
pub fn video_in(dom: &str) -> Option<HtmlVideoElement> {
    let doc = web_sys::window()?.document()?;
    doc.get_element_by_id(dom)?
        .query_selector("video")
        .ok()??
        .dyn_into()
        .ok()
}

/// Frames the video in `dom` has presented so far (`getVideoPlaybackQuality`), 0 without one.
pub fn frames(dom: &str) -> f64 {
    let Some(v) = video_in(dom) else { return 0.0 };
    let quality = js_sys::Reflect::get(&v, &"getVideoPlaybackQuality".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .and_then(|f| f.call0(&v).ok());
    quality
        .and_then(|q| js_sys::Reflect::get(&q, &"totalVideoFrames".into()).ok())
        .and_then(|n| n.as_f64())
        .unwrap_or_default()
}

/// Waits until the video in `dom` has a size, its time advances by more than 0.2 s and it
/// presents at least 5 new frames from now (or, if the SDK replaces the `<video>` meanwhile,
/// from the new one's start): frames are arriving, not just a stale picture.
pub async fn assert_playing(dom: &str) {
    wait_until(&format!("a <video> with frames in #{dom}"), || {
        video_in(dom).is_some_and(|v| v.video_width() > 0 && v.current_time() > 0.0)
    })
    .await;
    let first = video_in(dom);
    let t0 = first.as_ref().map(|v| v.current_time()).unwrap_or_default();
    let f0 = frames(dom);
    wait_until(&format!("the video in #{dom} advancing"), || {
        let Some(v) = video_in(dom) else {
            return false;
        };
        // A <video> put in its place meanwhile (the media moved to a new connection) counts
        // from its own start.
        let (t, f) = if Some(&v) == first.as_ref() {
            (t0, f0)
        } else {
            (0.0, 0.0)
        };
        v.current_time() > t + 0.2 && frames(dom) >= f + 5.0
    })
    .await;
}

fn delay(ms: i32) -> js_sys::Promise {
    js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    })
}

/// Runs `action` (a promise that must resolve, e.g. a `switchDevice`) while watching the
/// videos in `doms`, then keeps watching for `after_ms`. Returns the longest time (ms) in which
/// one of them presented no new frame, and the fewest frame updates any of them had: a gap in
/// what a peer receives shows up as a long stall. Panics if `action` rejects.
pub async fn longest_stall(doms: &[&str], action: js_sys::Promise, after_ms: f64) -> (f64, u32) {
    let done = Rc::new(Cell::new(None::<f64>));
    let rejection = Rc::new(RefCell::new(None::<String>));
    {
        let (done, rejection) = (done.clone(), rejection.clone());
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(e) = wasm_bindgen_futures::JsFuture::from(action).await {
                *rejection.borrow_mut() = Some(error_text(&e));
            }
            done.set(Some(js_sys::Date::now()));
        });
    }
    let start = js_sys::Date::now();
    // Per view: last frame count, when it last changed, how often it changed.
    let mut watch: Vec<(f64, f64, u32)> = doms.iter().map(|d| (frames(d), start, 0)).collect();
    let mut stall = 0.0_f64;
    loop {
        let _ = wasm_bindgen_futures::JsFuture::from(delay(20)).await;
        let now = js_sys::Date::now();
        for (dom, (last, changed_at, seen)) in doms.iter().zip(watch.iter_mut()) {
            let f = frames(dom);
            // Compared for change, not growth: the counter restarts if the decoder is recreated.
            if f != *last {
                *last = f;
                *changed_at = now;
                *seen += 1;
            }
            stall = stall.max(now - *changed_at);
        }
        if let Some(e) = rejection.borrow().as_ref() {
            panic!("the action watched for stalls was rejected: {e}");
        }
        if done.get().is_some_and(|t| now - t >= after_ms) {
            let fewest = watch.iter().map(|w| w.2).min().unwrap_or_default();
            return (stall, fewest);
        }
    }
}
