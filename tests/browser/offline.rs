//! A callee who is not logged in when called: the caller's offer and candidates, relayed while
//! the callee was offline, are lost; the callee logs in during the ring, gets INVITED, accepts,
//! and the call still connects with video decoded on both sides. Every `RTCPeerConnection` the
//! page creates is recorded (`connections`).

use crate::common::*;
use crate::connections::*;
use crate::video::*;
use wasm_bindgen_test::*;

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
    b.accept().await;
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
