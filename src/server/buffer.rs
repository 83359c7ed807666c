//! Fixed-capacity ring buffers and the pool they come from.
//!
//! A connection takes a buffer when bytes arrive or a response is queued and
//! gives it back as soon as it is empty, so an idle keep-alive connection
//! holds none. The readable bytes are `[head, head+len)` modulo the capacity;
//! the head parser needs them contiguous, which [`Buf::make_contiguous`]
//! restores on the rare turn when pipelined leftovers wrap around.

use crate::http::ParseState;

/// Capacity of every buffer: one whole request head (HTTP.md rule 14).
pub const BUF_SIZE: usize = crate::http::request::MAX_HEAD;

/// A ring buffer of `BUF_SIZE` bytes. A thin pointer, so a connection pays
/// 8 bytes for a buffer it does not hold; the head parser's resume state
/// travels with the bytes it describes, not in every idle connection.
pub struct Buf {
    r: Box<Ring>,
}

struct Ring {
    data: [u8; BUF_SIZE],
    head: usize,
    len: usize,
    parse: ParseState,
}

impl Buf {
    fn new() -> Buf {
        Buf {
            r: Box::new(Ring {
                data: [0u8; BUF_SIZE],
                head: 0,
                len: 0,
                parse: ParseState::default(),
            }),
        }
    }

    /// The readable bytes (contiguous, see [`Buf::make_contiguous`]) and
    /// the head parser's state for them.
    pub fn for_parse(&mut self) -> (&[u8], &mut ParseState) {
        let r = &mut *self.r;
        debug_assert!(
            r.head + r.len <= r.data.len(),
            "parsed bytes must be contiguous"
        );
        let end = (r.head + r.len).min(r.data.len());
        (r.data.get(r.head..end).unwrap_or(&[]), &mut r.parse)
    }

    /// Forget the head parser's progress (a head was taken or refused).
    pub fn reset_parse(&mut self) {
        self.r.parse = ParseState::default();
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.r.len
    }

    /// Whether no byte is held.
    pub fn is_empty(&self) -> bool {
        self.r.len == 0
    }

    /// Bytes that still fit.
    pub fn free(&self) -> usize {
        self.r.data.len() - self.r.len
    }

    /// Whether no more byte fits.
    pub fn is_full(&self) -> bool {
        self.r.len == self.r.data.len()
    }

    /// The readable bytes that are contiguous from the head (all of them
    /// unless they wrap).
    pub fn readable(&self) -> &[u8] {
        let end = (self.r.head + self.r.len).min(self.r.data.len());
        self.r.data.get(self.r.head..end).unwrap_or(&[])
    }

    /// All readable bytes as two slices, in order: the segment from the head
    /// and the part that wrapped to the start (empty unless they wrap). A
    /// writer must send both: the first alone is not the whole content.
    pub fn readable_parts(&self) -> (&[u8], &[u8]) {
        let first = self.readable();
        let wrapped = self.r.len - first.len();
        debug_assert!(
            wrapped <= self.r.head,
            "the wrapped part ends before the head"
        );
        (first, self.r.data.get(..wrapped).unwrap_or(&[]))
    }

    /// The free space that follows the readable bytes without wrapping.
    pub fn writable(&mut self) -> &mut [u8] {
        let cap = self.r.data.len();
        let tail = (self.r.head + self.r.len) % cap.max(1);
        let end = if tail >= self.r.head && self.r.len < cap {
            cap
        } else {
            self.r.head
        };
        let (start, end) = if self.r.len == cap {
            (0, 0)
        } else {
            (tail, end)
        };
        self.r.data.get_mut(start..end).unwrap_or(&mut [])
    }

    /// Mark `n` bytes of [`Buf::writable`] as filled.
    pub fn commit(&mut self, n: usize) {
        self.r.len = (self.r.len + n).min(self.r.data.len());
    }

    /// Drop `n` readable bytes from the front.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.r.len);
        self.r.len -= n;
        self.r.head = if self.r.len == 0 {
            0
        } else {
            (self.r.head + n) % self.r.data.len()
        };
    }

    /// Copy as much of `src` as fits at the tail (both segments); returns
    /// the number of bytes copied.
    pub fn push(&mut self, mut src: &[u8]) -> usize {
        let mut done = 0;
        while !src.is_empty() {
            let w = self.writable();
            let n = w.len().min(src.len());
            if n == 0 {
                break;
            }
            let (now, rest) = src.split_at(n);
            if let Some(dst) = w.get_mut(..n) {
                dst.copy_from_slice(now);
            }
            self.commit(n);
            done += n;
            src = rest;
        }
        done
    }

    /// Rotate so that all readable bytes are contiguous from index 0.
    pub fn make_contiguous(&mut self) {
        if self.r.head + self.r.len > self.r.data.len() {
            self.r.data.rotate_left(self.r.head);
            self.r.head = 0;
        }
    }
}

/// A free list of buffers. Buffers are recycled rather than freed; at most
/// `keep` spare ones are kept so a burst does not pin its memory for ever.
pub struct BufPool {
    free: Vec<Buf>,
    keep: usize,
    /// Buffers handed out and not yet returned (for tests and statistics).
    pub out: usize,
}

impl BufPool {
    /// A pool that keeps at most `keep` spare buffers.
    pub fn new(keep: usize) -> BufPool {
        BufPool {
            free: Vec::new(),
            keep,
            out: 0,
        }
    }

    /// An empty buffer.
    pub fn get(&mut self) -> Buf {
        self.out += 1;
        self.free.pop().unwrap_or_else(Buf::new)
    }

    /// Give a buffer back.
    pub fn put(&mut self, mut b: Buf) {
        self.out = self.out.saturating_sub(1);
        if self.free.len() < self.keep {
            b.r.head = 0;
            b.r.len = 0;
            b.r.parse = ParseState::default();
            self.free.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(b: &mut Buf) -> Vec<u8> {
        b.make_contiguous();
        b.readable().to_vec()
    }

    #[test]
    fn fill_consume_wrap_and_rotate() {
        let mut pool = BufPool::new(4);
        let mut b = pool.get();
        assert!(b.is_empty());
        let big = vec![7u8; BUF_SIZE - 10];
        assert_eq!(b.push(&big), BUF_SIZE - 10);
        b.consume(BUF_SIZE - 20); // 10 bytes left near the end
        assert_eq!(b.len(), 10);
        // 30 more bytes wrap around the end.
        let tail: Vec<u8> = (0..30).collect();
        assert_eq!(b.push(&tail), 30);
        assert_eq!(b.len(), 40);
        assert_eq!(b.readable().len(), 20, "the first segment stops at the end");
        let (first, second) = b.readable_parts();
        assert_eq!(first.len(), 20);
        assert_eq!(second, &tail[10..], "the wrapped part, in order");
        let got = all(&mut b);
        assert_eq!(&got[..10], &[7u8; 10]);
        assert_eq!(&got[10..], &tail[..]);
        b.consume(40);
        assert!(b.is_empty());
        pool.put(b);
        assert_eq!(pool.out, 0);
    }

    #[test]
    fn full_buffer_has_no_writable_space() {
        let mut pool = BufPool::new(1);
        let mut b = pool.get();
        assert_eq!(b.push(&vec![1u8; BUF_SIZE + 5]), BUF_SIZE);
        assert!(b.is_full());
        assert!(b.writable().is_empty());
        b.consume(3);
        assert_eq!(b.writable().len(), 3);
        assert_eq!(b.push(b"abcd"), 3);
        let got = all(&mut b);
        assert_eq!(got.len(), BUF_SIZE);
        assert_eq!(&got[BUF_SIZE - 3..], b"abc");
    }

    #[test]
    fn random_operations_match_a_vecdeque() {
        let mut pool = BufPool::new(1);
        let mut b = pool.get();
        let mut model = std::collections::VecDeque::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = (x % 5000) as usize;
            if x.is_multiple_of(3) {
                let src: Vec<u8> = (0..n).map(|k| (k as u32 ^ i) as u8).collect();
                let pushed = b.push(&src);
                assert_eq!(pushed, n.min(BUF_SIZE - model.len()));
                model.extend(&src[..pushed]);
            } else if x % 3 == 1 {
                let n = n.min(model.len());
                b.consume(n);
                model.drain(..n);
            } else {
                assert_eq!(all(&mut b), model.iter().copied().collect::<Vec<_>>());
            }
            assert_eq!(b.len(), model.len());
        }
    }
}
