//! The frames of a resumable session, numbered as the server counts them, so that after a
//! resume the SDK sends exactly the ones the server never processed, in order, once.
//!
//! The server reports in `resumed {received}` how many of the session's frames it processed,
//! counting every frame after login except `ping` (and `login`/`resume`, which open a
//! connection rather than belong to a session). Frame `n` here is the `n`-th such frame, so
//! the ones to send again are those numbered above `received`. Frames made while the socket is
//! down are numbered too and simply not handed to the glue yet: after a resume they go out with
//! the ones lost in flight, in one order.

use calling_protocol::{ClientMessage, RESUME_WINDOW};

/// Whether the server counts `message` among a session's frames (see the module doc).
pub(crate) fn is_counted(message: &ClientMessage) -> bool {
    !matches!(
        message,
        ClientMessage::Ping | ClientMessage::Login { .. } | ClientMessage::Resume { .. }
    )
}

/// Why the frames the server missed cannot all be sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gap {
    /// Some of them have already left the window.
    TooOld,
    /// The server claims more frames than this session ever made: not our numbering.
    Ahead,
}

/// The latest [`RESUME_WINDOW`] frames of one session, numbered 1, 2, 3, … in sending order.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Outbox {
    /// `(number, frame)`, oldest first; numbers are consecutive. A `Vec` rather than a
    /// `VecDeque`: dropping the oldest moves at most [`RESUME_WINDOW`] entries, once per frame
    /// sent, and the SDK's wasm has no ring buffer code to carry.
    kept: Vec<(u64, ClientMessage)>,
    /// The number of the latest frame (0 before the first).
    last: u64,
    /// Frames up to this number were handed to the glue; later ones are held.
    sent: u64,
}

impl Outbox {
    /// Numbers `frame` and keeps it, forgetting the oldest beyond the window.
    pub fn record(&mut self, frame: ClientMessage) -> u64 {
        self.last += 1;
        if self.kept.len() == RESUME_WINDOW {
            self.kept.remove(0);
        }
        self.kept.push((self.last, frame));
        self.last
    }

    /// Every frame so far was handed to the glue.
    pub fn all_sent(&mut self) {
        self.sent = self.last;
    }

    /// The server processed `received` frames: the ones after those, oldest first, to send
    /// now. They count as sent from here on.
    pub fn after(&mut self, received: u64) -> Result<Vec<ClientMessage>, Gap> {
        if received > self.last {
            return Err(Gap::Ahead);
        }
        let oldest = self.kept.first().map_or(self.last + 1, |(n, _)| *n);
        if received + 1 < oldest {
            return Err(Gap::TooOld);
        }
        self.sent = self.last;
        Ok(self
            .kept
            .iter()
            .filter(|(n, _)| *n > received)
            .map(|(_, frame)| frame.clone())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hangup(room_id: u32) -> ClientMessage {
        ClientMessage::Hangup { room_id }
    }

    #[test]
    fn frames_after_what_the_server_received_are_sent_again_in_order() {
        let mut outbox = Outbox::default();
        for room in 1..=4 {
            assert_eq!(outbox.record(hangup(room)), u64::from(room));
        }
        outbox.all_sent();
        assert_eq!(outbox.after(2), Ok(vec![hangup(3), hangup(4)]));
        assert_eq!(outbox.after(4), Ok(vec![]));
        assert_eq!(outbox.after(0).map(|f| f.len()), Ok(4));
    }

    #[test]
    fn held_frames_are_numbered_and_go_out_after_the_ones_lost_in_flight() {
        let mut outbox = Outbox::default();
        outbox.record(hangup(1));
        outbox.all_sent();
        outbox.record(hangup(2));
        assert_eq!(outbox.sent, 1, "the second is held");
        assert_eq!(outbox.after(0), Ok(vec![hangup(1), hangup(2)]));
        assert_eq!(outbox.sent, 2, "sent again, so no longer held");
    }

    #[test]
    fn a_gap_older_than_the_window_or_a_count_never_reached_cannot_be_resumed() {
        let mut outbox = Outbox::default();
        let total = RESUME_WINDOW as u64 + 3;
        for n in 0..total {
            outbox.record(hangup(n as u32));
        }
        // Frames 4..=total are kept: a server that processed 3 can be served, 2 cannot.
        assert_eq!(
            outbox.after(3).map(|f| f.len()),
            Ok(RESUME_WINDOW),
            "exactly the window"
        );
        assert_eq!(outbox.after(2), Err(Gap::TooOld));
        assert_eq!(outbox.after(total + 1), Err(Gap::Ahead));
        assert_eq!(Outbox::default().after(0), Ok(vec![]));
    }

    #[test]
    fn pings_and_connection_openers_are_not_counted() {
        assert!(!is_counted(&ClientMessage::Ping));
        assert!(!is_counted(&ClientMessage::Resume {
            sdk_app_id: 1,
            user_id: "a".into(),
            token: "t".into(),
            last_seq: 0,
            protocol_version: 1,
        }));
        assert!(is_counted(&ClientMessage::Logout));
        assert!(is_counted(&hangup(1)));
    }
}
