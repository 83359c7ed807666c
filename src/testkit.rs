//! Seeded pseudo-random numbers for the property tests and the fuzzer
//! (`crate::fuzzing`): Marsaglia's xorshift64, std only, so that every
//! failure is reproduced from the seed it prints.
//!
//! Not part of the server: compiled only for the crate's tests and with the
//! `testkit` feature, which the dev-dependency of Cargo.toml turns on so
//! that `tests/fuzz.rs` can reach the fuzzer through the library.

/// One step of xorshift64 (shifts 13, 7, 17): advances `state` and
/// returns it. A zero state stays zero; seed with anything else.
pub fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

/// A value below `n` (0 when `n` is 0).
pub fn below(state: &mut u64, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    (xorshift(state) % n as u64) as usize
}

/// One to three random edits of `v`: a byte overwritten, a byte removed,
/// or one of `pieces` inserted (the mutation the parsers' property tests
/// share).
pub fn mutate(state: &mut u64, v: &mut Vec<u8>, pieces: &[&[u8]]) {
    for _ in 0..=(xorshift(state) % 3) {
        let at = below(state, v.len() + 1);
        match xorshift(state) % 4 {
            0 if at < v.len() => v[at] = (xorshift(state) % 256) as u8,
            1 if at < v.len() => {
                v.remove(at);
            }
            _ => {
                let p = pieces.get(below(state, pieces.len())).copied();
                v.splice(at..at, p.unwrap_or(b"").iter().copied());
            }
        }
    }
}

/// A seeded generator: [`xorshift`] with a few conveniences.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced: it is xorshift's fixed point).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        xorshift(&mut self.0)
    }

    /// A value below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        below(&mut self.0, n)
    }

    /// True once in `n` times on average.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// A value in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// One element of a non-empty slice.
    pub fn pick<T: Copy>(&mut self, from: &[T]) -> Option<T> {
        from.get(self.below(from.len())).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_fixed_by_the_seed() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut z = Rng::new(0);
        assert_ne!(z.next_u64(), 0, "a zero seed does not stick at zero");
        assert_eq!(a.below(0), 0);
        for _ in 0..1000 {
            assert!(a.below(7) < 7);
            let r = a.range(3, 5);
            assert!((3..=5).contains(&r));
        }
    }

    #[test]
    fn mutate_edits_a_little() {
        let mut s = 7;
        for _ in 0..1000 {
            let mut v = b"hello".to_vec();
            mutate(&mut s, &mut v, &[b"ab", b""]);
            assert!(v.len() <= 5 + 4 * 2);
        }
    }
}
