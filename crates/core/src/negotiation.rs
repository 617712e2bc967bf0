//! Perfect negotiation (<https://w3c.github.io/webrtc-pc/#perfect-negotiation-example>) as pure
//! rules: which side yields on glare, when a received offer or answer is applied, and when a
//! received ICE candidate may reach the browser.
//!
//! Either end of a peer connection may offer at any time (the browser asks through
//! `negotiationneeded`). When both offer at once, the polite side applies the other's offer (the
//! browser rolls its own offer back implicitly) and the impolite side ignores the other's offer,
//! so both end up stable with one connection and no side ever waits for a timer.

use calling_protocol::IceCandidate;

/// The perfect-negotiation role towards `remote`: the lexicographically larger user id is the
/// polite side. Both ends compute it from the same two ids, so exactly one of them is polite.
pub fn is_polite(local: &str, remote: &str) -> bool {
    local > remote
}

/// Where one peer connection stands in the offer/answer exchange, as far as this side knows.
/// It mirrors the browser's `signalingState` plus the operations the glue is still carrying out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Negotiation {
    /// No offer in flight (`stable`).
    Stable,
    /// `CreateOffer` asked; the local offer has not come back yet (W3C's `makingOffer`).
    MakingOffer,
    /// Our offer is set and sent; waiting for the answer (`have-local-offer`).
    HaveLocalOffer,
    /// The remote answer is being applied.
    ApplyingAnswer,
    /// A remote offer is being applied; our answer follows.
    ApplyingOffer,
    /// The remote offer is applied; waiting for our answer to come back from the browser.
    Answering,
}

/// What to do with a received offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfferAction {
    /// Apply it (on glare, only the polite side does; the browser rolls back our own offer).
    Apply,
    /// Glare on the impolite side: our offer wins, the received one is dropped.
    Ignore,
}

/// A received offer collides when we are making an offer or are not stable. While our own
/// answer's remote description is still being applied the browser becomes stable first, so that
/// is no collision (W3C's `isSettingRemoteAnswerPending`).
pub fn offer_collides(state: Negotiation) -> bool {
    !matches!(state, Negotiation::Stable | Negotiation::ApplyingAnswer)
}

/// The impolite side ignores a colliding offer; everything else is applied.
pub fn on_remote_offer(state: Negotiation, polite: bool) -> OfferAction {
    if offer_collides(state) && !polite {
        OfferAction::Ignore
    } else {
        OfferAction::Apply
    }
}

/// An answer is only meaningful while our offer waits for it; any other answer is stale (for an
/// offer the polite side rolled back) and applying it would fail in the browser.
pub fn accepts_answer(state: Negotiation) -> bool {
    state == Negotiation::HaveLocalOffer
}

/// A new offer may only start from a stable state; the browser fires `negotiationneeded` again
/// once stable if the need remains.
pub fn may_offer(state: Negotiation) -> bool {
    state == Negotiation::Stable
}

/// Received ICE candidates: the browser refuses a candidate before the remote description it
/// belongs to is applied, so they wait here until then.
#[derive(Clone, Debug, PartialEq)]
pub enum Candidates {
    /// A remote description is pending (or none arrived yet); candidates wait in order.
    Queueing(Vec<IceCandidate>),
    /// The remote description is applied; candidates go to the browser at once.
    Flowing,
    /// The last received offer was ignored on glare; its candidates are dropped until the next
    /// description arrives (the relay keeps each sender's order, so they are exactly these).
    Ignoring,
}

impl Default for Candidates {
    fn default() -> Self {
        Candidates::Queueing(Vec::new())
    }
}

impl Candidates {
    /// A candidate arrived; returns it when it may be added now.
    pub fn receive(&mut self, candidate: IceCandidate) -> Option<IceCandidate> {
        match self {
            Candidates::Queueing(queue) => {
                queue.push(candidate);
                None
            }
            Candidates::Flowing => Some(candidate),
            Candidates::Ignoring => None,
        }
    }

    /// A remote description is about to be applied: hold candidates until it is.
    pub fn expect_description(&mut self) {
        if !matches!(self, Candidates::Queueing(_)) {
            *self = Candidates::Queueing(Vec::new());
        }
    }

    /// The remote description is applied: returns the queued candidates, in arrival order.
    pub fn description_applied(&mut self) -> Vec<IceCandidate> {
        match std::mem::replace(self, Candidates::Flowing) {
            Candidates::Queueing(queue) => queue,
            Candidates::Flowing | Candidates::Ignoring => Vec::new(),
        }
    }

    /// The received offer was ignored: drop its candidates.
    pub fn ignore(&mut self) {
        *self = Candidates::Ignoring;
    }
}

/// Our latest offer (once the browser made it) and the candidates gathered for it so far, kept
/// until its answer arrives.
///
/// An offer made while an invitation rings can be lost: the server drops what it relays to an
/// invitee who is offline (or whose socket is reconnecting) and re-delivers only the invitation
/// when that invitee logs in. So the offering side sends this offer and its candidates again
/// when the invitee accepts while the answer is still missing. Sending the same offer again,
/// rather than making a new one with an ICE restart, needs no browser round trip and leaves the
/// local description as it is; a callee that did get the first copy recognises the second one
/// (same SDP as the offer it applied) and drops it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Unanswered {
    pub sdp: Option<String>,
    pub candidates: Vec<IceCandidate>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(n: u16) -> IceCandidate {
        IceCandidate {
            candidate: format!("candidate:{n}"),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
        }
    }

    #[test]
    fn exactly_one_side_is_polite() {
        assert!(is_polite("bob", "alice"));
        assert!(!is_polite("alice", "bob"));
        assert_ne!(is_polite("u-1", "u_1"), is_polite("u_1", "u-1"));
    }

    #[test]
    fn offer_in_stable_is_applied_by_both_roles() {
        assert_eq!(
            on_remote_offer(Negotiation::Stable, true),
            OfferAction::Apply
        );
        assert_eq!(
            on_remote_offer(Negotiation::Stable, false),
            OfferAction::Apply
        );
    }

    #[test]
    fn glare_while_making_offer_only_polite_applies() {
        assert_eq!(
            on_remote_offer(Negotiation::MakingOffer, true),
            OfferAction::Apply
        );
        assert_eq!(
            on_remote_offer(Negotiation::MakingOffer, false),
            OfferAction::Ignore
        );
    }

    #[test]
    fn glare_with_local_offer_only_polite_applies() {
        assert_eq!(
            on_remote_offer(Negotiation::HaveLocalOffer, true),
            OfferAction::Apply
        );
        assert_eq!(
            on_remote_offer(Negotiation::HaveLocalOffer, false),
            OfferAction::Ignore
        );
    }

    #[test]
    fn offer_while_answer_pending_is_no_collision() {
        assert!(!offer_collides(Negotiation::ApplyingAnswer));
        assert_eq!(
            on_remote_offer(Negotiation::ApplyingAnswer, false),
            OfferAction::Apply
        );
    }

    #[test]
    fn offer_while_answering_collides() {
        assert!(offer_collides(Negotiation::ApplyingOffer));
        assert!(offer_collides(Negotiation::Answering));
        assert_eq!(
            on_remote_offer(Negotiation::Answering, false),
            OfferAction::Ignore
        );
    }

    #[test]
    fn only_a_waiting_offer_accepts_an_answer() {
        assert!(accepts_answer(Negotiation::HaveLocalOffer));
        for stale in [
            Negotiation::Stable,
            Negotiation::MakingOffer,
            Negotiation::ApplyingAnswer,
            Negotiation::ApplyingOffer,
            Negotiation::Answering,
        ] {
            assert!(!accepts_answer(stale), "{stale:?}");
        }
    }

    #[test]
    fn offers_start_only_when_stable() {
        assert!(may_offer(Negotiation::Stable));
        assert!(!may_offer(Negotiation::MakingOffer));
        assert!(!may_offer(Negotiation::HaveLocalOffer));
        assert!(!may_offer(Negotiation::Answering));
    }

    #[test]
    fn candidates_wait_for_the_remote_description_in_order() {
        let mut c = Candidates::default();
        assert_eq!(c.receive(cand(1)), None);
        assert_eq!(c.receive(cand(2)), None);
        assert_eq!(c.description_applied(), vec![cand(1), cand(2)]);
        assert_eq!(c.receive(cand(3)), Some(cand(3)));
    }

    #[test]
    fn renegotiation_queues_again_until_applied() {
        let mut c = Candidates::Flowing;
        c.expect_description();
        assert_eq!(c.receive(cand(4)), None);
        assert_eq!(c.description_applied(), vec![cand(4)]);
    }

    #[test]
    fn queued_candidates_survive_a_second_description() {
        let mut c = Candidates::default();
        assert_eq!(c.receive(cand(1)), None);
        c.expect_description();
        assert_eq!(c.description_applied(), vec![cand(1)]);
    }

    #[test]
    fn candidates_of_an_ignored_offer_are_dropped() {
        let mut c = Candidates::default();
        c.ignore();
        assert_eq!(c.receive(cand(5)), None);
        c.expect_description();
        assert_eq!(c.receive(cand(6)), None);
        assert_eq!(c.description_applied(), vec![cand(6)]);
    }
}
