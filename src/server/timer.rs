//! Timers: a min-heap of (deadline, slot, generation) with lazy entries.
//!
//! A connection keeps its own current deadline; the heap holds at most a few
//! entries per connection. Moving a deadline later (every keep-alive request,
//! every successful write) costs nothing: the old entry fires, finds the
//! connection's deadline later than itself, and is pushed again. Only a
//! deadline moved *earlier* than the armed entry needs a new push. This is
//! nginx's trick of not touching the timer tree when a timer barely moves,
//! in its simplest form.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Milliseconds on the monotonic clock.
pub type Millis = u64;

/// One heap entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub at: Millis,
    pub slot: u32,
    pub generation: u32,
}

/// The timer heap.
#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
}

impl Timers {
    /// Arm an entry.
    pub fn push(&mut self, at: Millis, slot: u32, generation: u32) {
        self.heap.push(Reverse(Entry {
            at,
            slot,
            generation,
        }));
    }

    /// The earliest armed deadline.
    pub fn next(&self) -> Option<Millis> {
        self.heap.peek().map(|Reverse(e)| e.at)
    }

    /// Remove and return the earliest entry if it is due at `now`.
    pub fn pop_due(&mut self, now: Millis) -> Option<Entry> {
        match self.heap.peek() {
            Some(Reverse(e)) if e.at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Entries armed (live or stale).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no entry is armed.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// The `epoll_wait` timeout for the next deadline: rounded up so a timer
/// never fires early, capped so a far deadline does not overflow `i32`.
pub fn wait_ms(next: Option<Millis>, now: Millis) -> i32 {
    match next {
        None => -1,
        Some(at) if at <= now => 0,
        Some(at) => i32::try_from(at - now).unwrap_or(i32::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_deadline_order_only_when_due() {
        let mut t = Timers::default();
        t.push(30, 1, 0);
        t.push(10, 2, 0);
        t.push(20, 3, 7);
        assert_eq!(t.next(), Some(10));
        assert_eq!(t.pop_due(5), None);
        assert_eq!(t.pop_due(25).map(|e| e.slot), Some(2));
        assert_eq!(
            t.pop_due(25),
            Some(Entry {
                at: 20,
                slot: 3,
                generation: 7
            })
        );
        assert_eq!(t.pop_due(25), None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn wait_ms_rounds_and_caps() {
        assert_eq!(wait_ms(None, 5), -1);
        assert_eq!(wait_ms(Some(3), 5), 0);
        assert_eq!(wait_ms(Some(15), 5), 10);
        assert_eq!(wait_ms(Some(u64::MAX), 0), i32::MAX);
    }
}
