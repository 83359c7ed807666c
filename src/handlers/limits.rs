//! `limit_conn` and `limit_req`: the per-client-address state, in one table
//! shared by every worker (an anonymous `MAP_SHARED` mapping made before
//! the fork, `sys::shared::anonymous_words`), and nginx's arithmetic on it.
//!
//! The table is bounded: `ENTRIES` slots, open addressing over a window of
//! `WINDOW` slots from the key's hash (seeded at random, so an attacker
//! cannot aim addresses at one window). A slot is reused once it holds
//! nothing worth keeping: a `limit_conn` entry with no connection counted,
//! a `limit_req` bucket that has drained. When every slot of a window is in
//! use, a new address is refused (`limit_*_status`) as nginx refuses when
//! its zone is full: a flood of source addresses cannot grow memory, and
//! addresses already known keep their state.
//!
//! Entries are changed under one spin lock (a word holding the owner's
//! pid; one that finds its holder dead takes it over). A connection count
//! is kept per owner (a worker's column, given by the master), so a worker
//! that dies with connections counted can be forgotten in one sweep of its
//! column (`clear_owner`), and a count is given back without the lock.
//!
//! `limit_req` buckets are per address and per (rate, burst): two routes
//! with the same `limit_req` share one bucket, as two routes naming one
//! nginx zone do.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::LimitReq;
use crate::sys::shared::{anonymous_words, monotonic_ms, process_exists};

/// Slots in the table.
pub const ENTRIES: usize = 8192;
/// Slots looked at from a key's hash.
const WINDOW: usize = 16;
/// Connection-count columns (one per live worker; a worker past this many
/// shares the last one, which is then never swept).
pub const OWNERS: usize = 64;
/// Header words: lock, hash seed, and the counters.
const HEADER: usize = 8;
const LOCK: usize = 0;
const SEED: usize = 1;
const CONN_REJECTED: usize = 2;
const REQ_REJECTED: usize = 3;
const REQ_DELAYED: usize = 4;
/// Words per slot: the address (two words), the tag, `excess`, `last`.
const SLOT: usize = 5;
/// The tag of a `limit_conn` slot (0 is an empty slot; a `limit_req`
/// slot's tag has its rate in the upper half, so is never 1).
const CONN_TAG: u64 = 1;
/// Spins before the lock's holder is checked for being alive.
const SPINS: u32 = 1 << 14;

/// The shared table, as one process sees it: the mapping and its column.
#[derive(Clone, Copy, Debug)]
pub struct LimitTable {
    words: &'static [AtomicU64],
    owner: usize,
}

/// `limit_req`'s verdict on a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReqVerdict {
    /// Served now.
    Pass,
    /// Served after this many milliseconds (inside the burst, no `nodelay`).
    Delay(u64),
    /// Over the burst (or the table is full): `limit_req_status`.
    Reject,
}

impl LimitTable {
    /// A new, empty table (before any fork), seeded with `seed`.
    pub fn new(seed: u64) -> std::io::Result<LimitTable> {
        let words = anonymous_words(HEADER + ENTRIES * SLOT + OWNERS * ENTRIES)?;
        if let Some(w) = words.get(SEED) {
            w.store(seed | 1, Ordering::Relaxed);
        }
        Ok(LimitTable { words, owner: 0 })
    }

    /// The same table seen by the process that counts in column `owner`.
    pub fn with_owner(self, owner: usize) -> LimitTable {
        LimitTable {
            words: self.words,
            owner: owner.min(OWNERS - 1),
        }
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        static ZERO: AtomicU64 = AtomicU64::new(0);
        // Every index below is computed from the layout and in bounds.
        debug_assert!(i < self.words.len());
        self.words.get(i).unwrap_or(&ZERO)
    }

    fn slot(&self, i: usize, field: usize) -> &AtomicU64 {
        self.word(HEADER + i * SLOT + field)
    }

    fn count(&self, owner: usize, i: usize) -> &AtomicU64 {
        self.word(HEADER + ENTRIES * SLOT + owner * ENTRIES + i)
    }

    /// Connections counted on slot `i`, over every column.
    fn conns(&self, i: usize) -> u64 {
        (0..OWNERS)
            .map(|o| self.count(o, i).load(Ordering::Acquire))
            .sum()
    }

    /// Rejections so far, over every worker: `limit_conn`, `limit_req`,
    /// and requests `limit_req` delayed.
    pub fn counters(&self) -> (u64, u64, u64) {
        (
            self.word(CONN_REJECTED).load(Ordering::Relaxed),
            self.word(REQ_REJECTED).load(Ordering::Relaxed),
            self.word(REQ_DELAYED).load(Ordering::Relaxed),
        )
    }

    /// Count a connection of `ip` against `max`: `Some(slot)` to give back
    /// with [`LimitTable::release`], `None` when `max` are counted already
    /// (or the table is full): refused.
    pub fn acquire(&self, ip: IpAddr, max: u32) -> Option<u32> {
        let key = key(ip);
        let got = self.locked(|t| {
            let i = t.find(key, CONN_TAG, monotonic_ms())?;
            if t.conns(i) >= u64::from(max) {
                return None;
            }
            t.count(t.owner, i).fetch_add(1, Ordering::AcqRel);
            u32::try_from(i).ok()
        });
        if got.is_none() {
            self.word(CONN_REJECTED).fetch_add(1, Ordering::Relaxed);
        }
        got
    }

    /// Give back a connection counted by [`LimitTable::acquire`] in this
    /// process (exactly once per acquire).
    pub fn release(&self, slot: u32) {
        let c = self.count(self.owner, slot as usize);
        // Never below zero: a column swept while its owner was alive (it
        // cannot be: the master sweeps only dead workers') stays at zero.
        let _ = c.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Forget every connection counted in column `owner` (its worker is
    /// gone, or about to start).
    pub fn clear_owner(&self, owner: usize) {
        if owner >= OWNERS - 1 {
            return; // the shared overflow column is never swept
        }
        for i in 0..ENTRIES {
            self.count(owner, i).store(0, Ordering::Release);
        }
    }

    /// nginx's leaky bucket for a request of `ip` under `limit`, at `now`
    /// (monotonic milliseconds; see `sys::shared::monotonic_ms`).
    pub fn request(&self, ip: IpAddr, limit: &LimitReq, now: u64) -> ReqVerdict {
        let tag = (limit.rate.min(u64::from(u32::MAX)) << 32) | (u64::from(limit.burst) << 1);
        let key = key(ip);
        let verdict = self
            .locked(|t| {
                let i = t.find(key, tag, now)?;
                let excess = t.slot(i, 3).load(Ordering::Relaxed);
                let last = t.slot(i, 4).load(Ordering::Relaxed);
                let (verdict, state) = leak(limit, excess, last, now);
                if let Some((excess, last)) = state {
                    t.slot(i, 3).store(excess, Ordering::Relaxed);
                    t.slot(i, 4).store(last, Ordering::Relaxed);
                }
                Some(verdict)
            })
            .unwrap_or(ReqVerdict::Reject);
        match verdict {
            ReqVerdict::Reject => {
                self.word(REQ_REJECTED).fetch_add(1, Ordering::Relaxed);
            }
            ReqVerdict::Delay(_) => {
                self.word(REQ_DELAYED).fetch_add(1, Ordering::Relaxed);
            }
            ReqVerdict::Pass => {}
        }
        verdict
    }

    /// The slot of `key` with `tag` in its window, claiming a free or
    /// reusable one for a new key; `None` when the window is full.
    /// Called under the lock.
    fn find(&self, key: (u64, u64), tag: u64, now: u64) -> Option<usize> {
        let seed = self.word(SEED).load(Ordering::Relaxed);
        let start = hash(key, tag, seed) as usize % ENTRIES;
        let mut spare = None;
        for j in 0..WINDOW {
            let i = (start + j) % ENTRIES;
            let t = self.slot(i, 2).load(Ordering::Relaxed);
            if t == tag
                && self.slot(i, 0).load(Ordering::Relaxed) == key.0
                && self.slot(i, 1).load(Ordering::Relaxed) == key.1
            {
                return Some(i);
            }
            if spare.is_none() && self.reusable(i, t, now) {
                spare = Some(i);
            }
        }
        let i = spare?;
        self.slot(i, 0).store(key.0, Ordering::Relaxed);
        self.slot(i, 1).store(key.1, Ordering::Relaxed);
        self.slot(i, 2).store(tag, Ordering::Relaxed);
        self.slot(i, 3).store(0, Ordering::Relaxed);
        // A new bucket is "last seen" never: nginx's first request of an
        // address leaves `excess` at 0.
        self.slot(i, 4).store(u64::MAX, Ordering::Relaxed);
        Some(i)
    }

    /// Whether slot `i` (tag `t`) holds nothing worth keeping at `now`.
    fn reusable(&self, i: usize, t: u64, now: u64) -> bool {
        match t {
            0 => true,
            CONN_TAG => self.conns(i) == 0,
            _ => {
                let rate = t >> 32;
                let excess = self.slot(i, 3).load(Ordering::Relaxed);
                let last = self.slot(i, 4).load(Ordering::Relaxed);
                last == u64::MAX || excess <= rate.saturating_mul(now.saturating_sub(last)) / 1000
            }
        }
    }

    /// Run `f` holding the table's lock.
    fn locked<R>(&self, f: impl FnOnce(&LimitTable) -> Option<R>) -> Option<R> {
        let me = u64::from(std::process::id());
        let lock = self.word(LOCK);
        let mut spins = 0u32;
        loop {
            match lock.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => break,
                Err(holder) => {
                    spins += 1;
                    if spins >= SPINS {
                        spins = 0;
                        // A holder that died (killed mid-update) would
                        // hold the lock forever: take it over.
                        let pid = libc::pid_t::try_from(holder).unwrap_or(0);
                        if holder == me || (holder != 0 && !process_exists(pid)) {
                            let _ = lock.compare_exchange(
                                holder,
                                0,
                                Ordering::AcqRel,
                                Ordering::Relaxed,
                            );
                        }
                    }
                    std::hint::spin_loop();
                }
            }
        }
        let r = f(self);
        lock.store(0, Ordering::Release);
        r
    }
}

/// nginx's `ngx_http_limit_req_lookup` for a bucket holding `excess`
/// (thousandths of a request) last moved at `last` (`u64::MAX`: a new
/// bucket), a request arriving at `now`: the verdict, and the bucket's new
/// state when the request is accepted (a refused one leaves it as it was).
pub fn leak(
    limit: &LimitReq,
    excess: u64,
    last: u64,
    now: u64,
) -> (ReqVerdict, Option<(u64, u64)>) {
    if last == u64::MAX {
        return (ReqVerdict::Pass, Some((0, now)));
    }
    let ms = now.saturating_sub(last);
    let leaked = limit.rate.saturating_mul(ms) / 1000;
    // nginx: `excess - leaked + 1000`, signed, then at least 0.
    let excess = excess.saturating_add(1000).saturating_sub(leaked);
    if excess > u64::from(limit.burst) * 1000 {
        return (ReqVerdict::Reject, None);
    }
    // nginx moves `last` only when time passed, so sub-millisecond requests
    // do not each lose the fraction of a leak.
    let last = if ms > 0 { now } else { last };
    let verdict = if limit.nodelay || excess == 0 {
        ReqVerdict::Pass
    } else {
        ReqVerdict::Delay(excess * 1000 / limit.rate.max(1))
    };
    (verdict, Some((excess, last)))
}

/// An address as two words (IPv4 as its IPv4-mapped IPv6 form).
fn key(ip: IpAddr) -> (u64, u64) {
    let v6 = match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    };
    let n = u128::from(v6);
    ((n >> 64) as u64, n as u64)
}

/// A keyed mix of the address and tag (splitmix64 rounds).
fn hash(key: (u64, u64), tag: u64, seed: u64) -> u64 {
    let mut h = seed;
    for w in [key.0, key.1, tag] {
        h ^= w;
        h = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn lim(rate_rps: u64, burst: u32, nodelay: bool) -> LimitReq {
        LimitReq {
            rate: rate_rps * 1000,
            burst,
            nodelay,
        }
    }

    /// Requests at the given times (ms) through `leak`: their verdicts.
    fn run(limit: &LimitReq, times: &[u64]) -> Vec<ReqVerdict> {
        let (mut excess, mut last) = (0, u64::MAX);
        times
            .iter()
            .map(|&t| {
                let (v, state) = leak(limit, excess, last, t);
                if let Some((e, l)) = state {
                    excess = e;
                    last = l;
                }
                v
            })
            .collect()
    }

    use ReqVerdict::{Delay, Pass, Reject};

    #[test]
    fn a_burst_of_two_at_five_per_second_passes_three_at_once() {
        let at_once = [1000; 6];
        assert_eq!(
            run(&lim(5, 2, true), &at_once),
            [Pass, Pass, Pass, Reject, Reject, Reject]
        );
        assert_eq!(
            run(&lim(5, 2, false), &at_once),
            [Pass, Delay(200), Delay(400), Reject, Reject, Reject]
        );
        assert_eq!(
            run(&lim(5, 0, false), &at_once),
            [Pass, Reject, Reject, Reject, Reject, Reject]
        );
    }

    #[test]
    fn the_bucket_leaks_at_the_rate() {
        // 5r/s: one request's worth leaks in 200 ms.
        let l = lim(5, 0, false);
        assert_eq!(run(&l, &[0, 199]), [Pass, Reject]);
        assert_eq!(
            run(&l, &[0, 200, 400, 500, 600]),
            [Pass, Pass, Pass, Reject, Pass]
        );
        // Delayed requests paced at the rate all pass (a pipelined client).
        let l = lim(5, 2, false);
        let times: Vec<u64> = (0..10).map(|i| 1000 + i * 200).collect();
        let v = run(&l, &times);
        assert!(v.iter().all(|v| *v != Reject), "{v:?}");
        // A refused request does not fill the bucket.
        assert_eq!(
            run(&lim(5, 1, true), &[0, 0, 0, 0, 200]),
            [Pass, Pass, Reject, Reject, Pass]
        );
    }

    #[test]
    fn per_minute_rates_keep_nginx_units() {
        // 600r/m is 10r/s: 100 ms per request.
        let l = LimitReq {
            rate: 10_000,
            burst: 0,
            nodelay: false,
        };
        assert_eq!(run(&l, &[0, 99, 100]), [Pass, Reject, Pass]);
    }

    #[test]
    fn connections_are_counted_per_address_and_given_back() {
        let t = LimitTable::new(42).unwrap();
        let a = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let b = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let s1 = t.acquire(a, 2).unwrap();
        let s2 = t.acquire(a, 2).unwrap();
        assert_eq!(s1, s2);
        assert_eq!(t.acquire(a, 2), None);
        assert!(t.acquire(b, 2).is_some());
        t.release(s1);
        assert!(t.acquire(a, 2).is_some());
        assert_eq!(t.counters().0, 1);
        // Another worker's column counts towards the same address.
        let w = t.with_owner(3);
        assert_eq!(w.acquire(a, 2), None);
        t.clear_owner(0);
        let s = w.acquire(a, 2).unwrap();
        w.release(s);
        w.release(s); // a second release cannot go below zero
        assert_eq!(w.conns(s as usize), 0);
    }

    #[test]
    fn a_flood_of_addresses_fills_the_table_and_no_more() {
        let t = LimitTable::new(7).unwrap();
        let mut held = 0usize;
        let mut refused = 0usize;
        for n in 0..(ENTRIES as u32 * 2) {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
            match t.acquire(ip, 1) {
                Some(_) => held += 1,
                None => refused += 1,
            }
        }
        assert!(held <= ENTRIES, "{held}");
        assert!(held > ENTRIES / 2, "{held}");
        assert_eq!(held + refused, ENTRIES * 2);
        // limit_req buckets that drained are reused: a flood of one-off
        // addresses at 1r/s without burst never fills the table for good.
        let t = LimitTable::new(9).unwrap();
        let l = lim(1, 0, false);
        for n in 0..(ENTRIES as u32 * 4) {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + n));
            assert_eq!(t.request(ip, &l, 1_000_000 + u64::from(n) * 1000), Pass);
        }
    }

    #[test]
    fn a_lock_held_by_a_dead_process_is_taken_over() {
        let t = LimitTable::new(1).unwrap();
        // No process has pid near the maximum.
        t.word(LOCK).store(0x3fff_fff0, Ordering::SeqCst);
        assert!(t.acquire(IpAddr::V4(Ipv4Addr::LOCALHOST), 1).is_some());
        assert_eq!(t.word(LOCK).load(Ordering::SeqCst), 0);
    }
}
