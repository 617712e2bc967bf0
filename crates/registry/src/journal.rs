//! The numbered tail of what a resumable session was sent, kept so that a reconnecting SDK
//! gets exactly what it missed: every message after the last one it processed, in order,
//! once.
//!
//! Pure bookkeeping, generic over what is stored (the server keeps serialized text, tests keep
//! messages), so the server and the SDK core's scenario tests resume the same way.

use std::collections::VecDeque;

/// The last `window` items sent to one session (fewer if they weigh more than the byte cap),
/// numbered 1, 2, 3, … in sending order, and the count of frames received from it (what
/// [`calling_protocol::Resumed::received`] reports).
#[derive(Debug)]
pub struct Journal<T> {
    window: usize,
    /// Most bytes kept (as weighed by [`Journal::record_sized`]); the newest item always stays.
    byte_cap: usize,
    bytes: usize,
    /// `(seq, item, bytes)`, oldest first; seqs are consecutive.
    kept: VecDeque<(u64, T, usize)>,
    last_seq: u64,
    received: u64,
}

/// Why a resume cannot replay from the SDK's `last_seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gap {
    /// Messages after `last_seq` have already left the window.
    TooOld,
    /// `last_seq` is beyond anything sent: not this session's numbering.
    Ahead,
}

impl Gap {
    /// Whether a resume after `last_seq` can replay everything it missed from a journal
    /// keeping seqs `oldest..=newest` (`oldest` is `newest + 1` when nothing is kept).
    pub fn check(oldest: u64, newest: u64, last_seq: u64) -> Result<(), Gap> {
        if last_seq > newest {
            Err(Gap::Ahead)
        } else if last_seq + 1 < oldest {
            Err(Gap::TooOld)
        } else {
            Ok(())
        }
    }
}

impl<T> Journal<T> {
    /// An empty journal keeping the latest `window` items (at least one).
    pub fn new(window: usize) -> Self {
        Journal {
            window: window.max(1),
            byte_cap: usize::MAX,
            bytes: 0,
            kept: VecDeque::new(),
            last_seq: 0,
            received: 0,
        }
    }

    /// Keeps at most `bytes` of items (what a session away may make the server hold).
    pub fn with_byte_cap(mut self, bytes: usize) -> Self {
        self.byte_cap = bytes;
        self
    }

    /// Numbers `item` and keeps it, forgetting the oldest beyond the window. Returns its seq.
    pub fn record(&mut self, item: T) -> u64 {
        self.record_sized(item, 0)
    }

    /// [`Journal::record`] for an item weighing `bytes` against the byte cap.
    pub fn record_sized(&mut self, item: T, bytes: usize) -> u64 {
        self.last_seq += 1;
        self.kept.push_back((self.last_seq, item, bytes));
        self.bytes += bytes;
        while self.kept.len() > self.window || (self.bytes > self.byte_cap && self.kept.len() > 1) {
            if let Some((_, _, b)) = self.kept.pop_front() {
                self.bytes -= b;
            }
        }
        self.last_seq
    }

    /// A frame from the session was processed.
    pub fn count_received(&mut self) {
        self.received += 1;
    }

    /// Frames from the session processed so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The seq of the latest item recorded (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Everything recorded after `last_seq`, oldest first, if the window still holds all of it.
    pub fn after(&self, last_seq: u64) -> Result<impl Iterator<Item = (u64, &T)>, Gap> {
        let oldest = self
            .kept
            .front()
            .map_or(self.last_seq + 1, |(seq, _, _)| *seq);
        Gap::check(oldest, self.last_seq, last_seq)?;
        Ok(self
            .kept
            .iter()
            .filter(move |(seq, _, _)| *seq > last_seq)
            .map(|(seq, item, _)| (*seq, item)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(
        journal: &Journal<&'static str>,
        last_seq: u64,
    ) -> Result<Vec<(u64, &'static str)>, Gap> {
        journal
            .after(last_seq)
            .map(|items| items.map(|(seq, item)| (seq, *item)).collect())
    }

    #[test]
    fn replays_what_came_after_the_last_processed_message_in_order() {
        let mut journal = Journal::new(8);
        assert_eq!(journal.record("invited"), 1);
        assert_eq!(journal.record("cancelled"), 2);
        assert_eq!(journal.record("invited"), 3);
        assert_eq!(
            replay(&journal, 1),
            Ok(vec![(2, "cancelled"), (3, "invited")])
        );
        assert_eq!(replay(&journal, 3), Ok(vec![]));
        assert_eq!(replay(&journal, 0).map(|r| r.len()), Ok(3));
    }

    #[test]
    fn a_gap_older_than_the_window_or_a_seq_never_sent_is_refused() {
        let mut journal = Journal::new(2);
        for item in ["a", "b", "c", "d"] {
            journal.record(item);
        }
        // 3 and 4 are kept: resuming after 2 still works, after 1 would lose 2.
        assert_eq!(replay(&journal, 2), Ok(vec![(3, "c"), (4, "d")]));
        assert_eq!(replay(&journal, 1), Err(Gap::TooOld));
        assert_eq!(replay(&journal, 5), Err(Gap::Ahead));
        assert_eq!(Journal::<&str>::new(4).after(0).map(|r| r.count()), Ok(0));
    }

    #[test]
    fn the_byte_cap_forgets_the_oldest_but_never_the_newest() {
        let mut journal = Journal::new(8).with_byte_cap(10);
        journal.record_sized("a", 4);
        journal.record_sized("b", 4);
        journal.record_sized("c", 4);
        assert_eq!(replay(&journal, 1), Ok(vec![(2, "b"), (3, "c")]));
        assert_eq!(replay(&journal, 0), Err(Gap::TooOld));
        journal.record_sized("huge", 50);
        assert_eq!(replay(&journal, 3), Ok(vec![(4, "huge")]));
    }

    #[test]
    fn counts_frames_received() {
        let mut journal = Journal::<()>::new(1);
        journal.count_received();
        journal.count_received();
        assert_eq!(journal.received(), 2);
    }
}
