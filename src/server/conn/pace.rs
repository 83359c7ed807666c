//! `limit_rate` from the connection's side (and `limit_req`'s delay): how
//! many bytes of the answer may go now, and how long to sleep otherwise.
//!
//! nginx's arithmetic: by `t` after the answer started, `limit_rate_after +
//! RATE × (t + 1 s)` bytes may have gone, so up to one second's worth goes
//! at once and the first `limit_rate_after` bytes go at full speed. Bytes
//! are counted as nginx counts them, head included. A connection past its
//! allowance sleeps on its timer (off the pending list, no CPU) until a
//! quantum may go: half a second's worth, so a paced download wakes about
//! twice a second, not once per packet. (With an eighth of a second, 200
//! downloads at 256k cost 0.133 ms of CPU per connection-second, 2.3 times
//! nginx's, which wakes once a second; with half a second, 0.092 ms, 1.44
//! times: bench/run.sh --only rate200, one round each, 2026-12-03.)

use super::super::timer::Millis;
use super::SENDFILE_CHUNK;

/// Fewest bytes a throttled connection wakes up to send.
const MIN_QUANTUM: u64 = 4096;

/// The pace of one answer.
#[derive(Debug)]
pub(super) struct Pace {
    /// Bytes per second; 0 is no limit (a `limit_req` delay alone).
    rate: u64,
    /// Bytes that go at full speed first.
    after: u64,
    /// When the answer's clock started.
    start: Millis,
    /// Bytes of this answer written so far.
    sent: u64,
    /// Asleep until then; 0 when awake.
    pub until: Millis,
}

impl Pace {
    /// The pace of an answer starting at `now` (after `delay` ms of
    /// `limit_req` delay, slept first).
    pub(super) fn new(rate: u64, after: u64, now: Millis, delay: u64) -> Pace {
        Pace {
            rate,
            after,
            start: now.saturating_add(delay),
            sent: 0,
            until: if delay > 0 {
                now.saturating_add(delay)
            } else {
                0
            },
        }
    }

    /// A new rate for the rest of the answer (a CGI's `X-Accel-Limit-Rate`).
    pub(super) fn set_rate(&mut self, rate: u64) {
        self.rate = rate;
    }

    /// Bytes that may go at `now`; `None` when there is no limit.
    pub(super) fn allowance(&self, now: Millis) -> Option<u64> {
        if self.rate == 0 {
            return None;
        }
        let elapsed = now.saturating_sub(self.start).saturating_add(1000);
        let budget = self
            .after
            .saturating_add(self.rate.saturating_mul(elapsed) / 1000);
        Some(budget.saturating_sub(self.sent))
    }

    /// `n` bytes of the answer were written.
    pub(super) fn sent(&mut self, n: usize) {
        self.sent = self.sent.saturating_add(n as u64);
    }

    /// How long from `now` until a quantum may go (at most `left` bytes
    /// are still to send); at least 1 ms.
    pub(super) fn wait(&self, now: Millis, left: u64) -> Millis {
        if self.rate == 0 {
            return 1;
        }
        let quantum = (self.rate / 2)
            .clamp(MIN_QUANTUM, SENDFILE_CHUNK as u64)
            .min(left.max(1));
        let have = self.allowance(now).unwrap_or(0);
        let need = quantum.saturating_sub(have);
        need.saturating_mul(1000).div_ceil(self.rate).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_second_worth_goes_at_once_then_the_rate() {
        let mut p = Pace::new(1 << 20, 0, 10_000, 0);
        assert_eq!(p.allowance(10_000), Some(1 << 20));
        p.sent(1 << 20);
        assert_eq!(p.allowance(10_000), Some(0));
        // A quantum is half a second's worth: 500 ms.
        assert_eq!(p.wait(10_000, 4 << 20), 500);
        assert_eq!(p.allowance(10_500), Some(1 << 19));
        // 4 MiB at 1 MiB/s: the last byte may go 3 s after the start.
        let mut p = Pace::new(1 << 20, 0, 0, 0);
        p.sent((4 << 20) - 1);
        assert_eq!(p.allowance(2_999), Some(0));
        assert!(p.allowance(3_000).is_some_and(|a| a >= 1));
    }

    #[test]
    fn limit_rate_after_goes_at_full_speed() {
        let mut p = Pace::new(1000, 1 << 20, 0, 0);
        assert_eq!(p.allowance(0), Some((1 << 20) + 1000));
        p.sent((1 << 20) + 1000);
        assert_eq!(p.allowance(0), Some(0));
        assert_eq!(p.allowance(1000), Some(1000));
        // A small rate wakes for at least MIN_QUANTUM bytes, or what is left.
        assert_eq!(p.wait(0, 1 << 20), 4096);
        assert_eq!(p.wait(0, 10), 10);
    }

    #[test]
    fn no_rate_is_no_limit_and_a_delay_sleeps_first() {
        let p = Pace::new(0, 0, 100, 400);
        assert_eq!(p.allowance(100), None);
        assert_eq!(p.until, 500);
        assert_eq!(Pace::new(0, 0, 100, 0).until, 0);
    }
}
