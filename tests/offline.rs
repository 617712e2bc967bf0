//! A callee who is not logged in when called: the caller's offer and candidates, relayed while
//! the callee was offline, are lost; the callee logs in during the ring, gets INVITED, accepts,
//! and the call still connects with video decoded on both sides. Every `RTCPeerConnection` the
//! page creates is recorded (the constructor is wrapped below).

mod common;
mod video;

use common::*;
use video::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(inline_js = "
const Original = window.RTCPeerConnection;
const made = [];
window.RTCPeerConnection = class extends Original {
  constructor(...args) { super(...args); made.push(this); }
};
// Connections whose offer is set and fully gathered: everything they will relay was sent.
export function offersGathered() {
  return made.filter((pc) => pc.signalingState === 'have-local-offer'
    && pc.iceGatheringState === 'complete').length;
}
export function openPeers() { return made.filter((pc) => pc.signalingState !== 'closed').length; }
")]
extern "C" {
    #[wasm_bindgen(js_name = offersGathered)]
    fn offers_gathered() -> u32;
    #[wasm_bindgen(js_name = openPeers)]
    fn open_peers() -> u32;
}

#[wasm_bindgen_test]
async fn a_callee_logging_in_during_the_ring_gets_video_both_ways() {
    let a = Client::login(&unique("alice")).await;
    let b = Client::new(&unique("bob"));
    ok(a.sdk.call(call_options(&b.user, 2)), "call").await;
    // The caller's offer and all its candidates went out while bob was offline.
    wait_until("the caller's offer sent and gathered", || {
        offers_gathered() == 1
    })
    .await;

    let sig = user_sig(&b.user).await;
    ok(b.sdk.login(login_options(&b.user, &sig)), "login").await;
    let invited = b.wait_for("onInvited").await;
    assert_eq!(get_str(&invited, "sponsor"), a.user);

    let tag = unique("o");
    let (a_sees_b, b_sees_a) = (format!("{tag}-a"), format!("{tag}-b"));
    for (me, other, dom) in [(&a, &b, &a_sees_b), (&b, &a, &b_sees_a)] {
        make_div(dom);
        ok(
            me.sdk.start_remote_view(view_options(&other.user, dom)),
            "startRemoteView",
        )
        .await;
    }
    ok(b.sdk.accept(), "accept").await;
    assert_both_entered(&a, &b).await;
    // A size, advancing time and new frames from getVideoPlaybackQuality on both sides.
    assert_playing(&a_sees_b).await;
    assert_playing(&b_sees_a).await;
    assert_eq!(open_peers(), 2, "one connection each side");

    hang_up(&a, &b).await;
    wait_until("both connections closed", || open_peers() == 0).await;
    a.logout().await;
    b.logout().await;
}
