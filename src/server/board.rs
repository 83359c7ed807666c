//! The status counters of every worker, for `status on|prometheus`: one
//! anonymous shared mapping, made before the workers are forked (by the
//! master, or by a single process for itself), with a row per worker.
//!
//! A worker adds to its own row only, with relaxed atomic adds: the counts
//! (connections accepted and handled, requests, deferred reads) as they
//! happen, and the gauges (open connections, each phase, running CGIs) as
//! deltas when they change. A status page sums the rows, so every figure is
//! the total over all workers, and it costs a worker nothing to be asked.
//! Each row has its own cache lines, so workers never write one line.
//!
//! The master gives each worker the row of its `limit_conn` column
//! (`master.rs`). When it reaps a worker it zeroes that row's gauges (the
//! dead worker's connections are gone) and keeps its counts (they stay in
//! the totals, as in nginx's shared counters). The last row is shared by any
//! worker past `ROWS - 1` and never zeroed.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::handlers::limits::OWNERS;
use crate::handlers::stub_status::Stats;
use crate::sys::shared::SharedWords;

use super::conn::Phase;

/// One counter of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// Connections accepted.
    Accepted,
    /// Connections handled (accepted and given a slot).
    Handled,
    /// Request heads parsed.
    Requests,
    /// Waits for the pages of a file to be read (`Deferred reads`).
    Deferred,
    /// Open client connections (a gauge).
    Active,
    /// Connections receiving a head or a body (a gauge).
    Reading,
    /// Connections answering (a gauge).
    Writing,
    /// Idle connections (a gauge).
    Waiting,
    /// Running CGI processes (a gauge).
    Cgi,
}

/// The gauges: zeroed when their worker is reaped.
const GAUGES: [Field; 5] = [
    Field::Active,
    Field::Reading,
    Field::Writing,
    Field::Waiting,
    Field::Cgi,
];

/// Words per row: two cache lines, more than the fields.
const STRIDE: usize = 16;
/// Rows: one per `limit_conn` column, the last one shared.
pub const ROWS: usize = OWNERS;
/// The header row's word that numbers connections over all workers.
const SERIAL: usize = 0;

/// The counter of a connection phase.
pub fn phase_field(p: Phase) -> Field {
    match p {
        Phase::Reading => Field::Reading,
        Phase::Writing => Field::Writing,
        Phase::Waiting => Field::Waiting,
    }
}

/// The shared counters, and the row this process writes.
pub struct Board {
    words: SharedWords,
    row: usize,
}

impl Board {
    /// A fresh board, all zero, writing row 0.
    pub fn new() -> io::Result<Board> {
        Ok(Board {
            words: SharedWords::new(STRIDE * (ROWS + 1))?,
            row: 0,
        })
    }

    /// From now on this process writes row `row` (the last one past it).
    pub fn use_row(&mut self, row: usize) {
        self.row = row.min(ROWS - 1);
    }

    fn word(&self, row: usize, f: Field) -> Option<&AtomicU64> {
        // Row 0 of the mapping is the header.
        self.words.words().get(STRIDE * (row + 1) + f as usize)
    }

    /// Add `n` to this process's `f`.
    pub fn add(&self, f: Field, n: u64) {
        if let Some(w) = self.word(self.row, f) {
            w.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Take `n` from this process's `f` (a gauge).
    pub fn sub(&self, f: Field, n: u64) {
        if let Some(w) = self.word(self.row, f) {
            w.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// A connection went from phase `from` to `to`.
    pub fn moved(&self, from: Phase, to: Phase) {
        if from != to {
            self.sub(phase_field(from), 1);
            self.add(phase_field(to), 1);
        }
    }

    /// The next connection number, unique over all workers (`$connection`).
    pub fn next_serial(&self) -> u64 {
        self.words
            .words()
            .get(SERIAL)
            .map_or(0, |w| w.fetch_add(1, Ordering::Relaxed))
            + 1
    }

    /// Zero the gauges of `row`, whose worker is gone (the shared last row
    /// is left alone: other workers may still count in it).
    pub fn clear_gauges(&self, row: usize) {
        if row >= ROWS - 1 {
            return;
        }
        for f in GAUGES {
            if let Some(w) = self.word(row, f) {
                w.store(0, Ordering::Relaxed);
            }
        }
    }

    /// The total of `f` over every row. A gauge read while a worker
    /// changes it may be off by that change; it never shows below zero.
    pub fn total(&self, f: Field) -> u64 {
        let sum = (0..ROWS)
            .filter_map(|r| self.word(r, f))
            .map(|w| w.load(Ordering::Relaxed))
            .fold(0u64, u64::wrapping_add);
        // Gauges move by wrapping deltas: a sum past i64::MAX is one below 0.
        u64::try_from(sum as i64).unwrap_or(0)
    }

    /// Every figure of `status`, summed over the workers (the limit
    /// counters are the limit table's, filled in by the caller).
    pub fn totals(&self) -> Stats {
        Stats {
            accepted: self.total(Field::Accepted),
            handled: self.total(Field::Handled),
            requests: self.total(Field::Requests),
            active: self.total(Field::Active),
            reading: self.total(Field::Reading),
            writing: self.total(Field::Writing),
            waiting: self.total(Field::Waiting),
            deferred: self.total(Field::Deferred),
            cgi: self.total(Field::Cgi),
            ..Stats::default()
        }
    }

    /// This process's own `f` (tests).
    #[cfg(test)]
    pub fn own(&self, f: Field) -> u64 {
        self.word(self.row, f)
            .map_or(0, |w| w.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_forked_workers_sum_and_a_reaped_ones_gauges_clear() {
        let mut board = Board::new().unwrap();
        board.use_row(1);
        board.add(Field::Requests, 3);
        board.add(Field::Active, 2);
        match crate::sys::fork().unwrap() {
            crate::sys::Forked::Child => {
                board.use_row(2);
                board.add(Field::Requests, 4);
                board.add(Field::Active, 1);
                board.add(Field::Waiting, 1);
                board.moved(Phase::Waiting, Phase::Writing);
                let _ = board.next_serial();
                crate::sys::process::exit_forked_test(0);
            }
            crate::sys::Forked::Parent(pid) => {
                while !crate::sys::reap_pid(pid) {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        }
        let t = board.totals();
        assert_eq!((t.requests, t.active, t.writing, t.waiting), (7, 3, 1, 0));
        // The child's row: its gauges go, its counts stay.
        board.clear_gauges(2);
        let t = board.totals();
        assert_eq!((t.requests, t.active, t.writing), (7, 2, 0));
        assert_eq!(board.own(Field::Active), 2);
        // The child took number 1.
        assert_eq!(board.next_serial(), 2);
    }

    #[test]
    fn the_shared_last_row_is_never_cleared() {
        let mut board = Board::new().unwrap();
        board.use_row(ROWS + 5);
        board.add(Field::Cgi, 2);
        board.clear_gauges(ROWS - 1);
        board.clear_gauges(ROWS + 5);
        assert_eq!(board.totals().cgi, 2);
        board.sub(Field::Cgi, 2);
        assert_eq!(board.total(Field::Cgi), 0);
    }
}
