//! What an epoll event is about: the one place the `u64` an event carries
//! is laid out, written by [`Token::encode`] and read by [`Token::decode`]
//! (mio's `Token`, with the kinds this loop has).
//!
//! ```text
//!   bit 63      62      61          60         59..32        31..0
//!   listener    signal  CGI stdout  CGI stdin  generation    slot (or listener index)
//! ```
//!
//! A connection's token is its slot and the generation of that slot's
//! occupant ([`ConnId`]); its CGI pipes carry the same plus a kind bit. The
//! generation wraps within 28 bits ([`next_generation`]) so it never reaches
//! the kind bits; a late event for a slot that was closed and reused carries
//! the old generation, and the reactor drops it. A listener's token is its
//! index in the reactor's list of listeners.

/// Kind bits, above the generation.
const LISTENER: u64 = 1 << 63;
const SIGNAL: u64 = 1 << 62;
const CGI_STDOUT: u64 = 1 << 61;
const CGI_STDIN: u64 = 1 << 60;
const KINDS: u64 = LISTENER | SIGNAL | CGI_STDOUT | CGI_STDIN;
/// Generations wrap within 28 bits, so they never touch the kind bits.
pub const GENERATION_MASK: u32 = (1 << 28) - 1;

/// The generation a slot's next occupant gets once `generation`'s leaves.
pub fn next_generation(generation: u32) -> u32 {
    generation.wrapping_add(1) & GENERATION_MASK
}

/// One connection: its slot in the reactor's slab, and which occupant of
/// that slot (generation, already within [`GENERATION_MASK`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ConnId {
    pub slot: u32,
    pub generation: u32,
}

impl ConnId {
    /// The connection in `slot` whose generation is `generation` (wrapped
    /// into [`GENERATION_MASK`]).
    pub fn new(slot: u32, generation: u32) -> ConnId {
        ConnId {
            slot,
            generation: generation & GENERATION_MASK,
        }
    }
}

/// What an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    /// A client connection's socket.
    Conn(ConnId),
    /// The stdout pipe of a connection's CGI script.
    CgiStdout(ConnId),
    /// The stdin pipe of a connection's CGI script.
    CgiStdin(ConnId),
    /// The listening socket at this index in the reactor's list.
    Listener(usize),
    /// The signalfd.
    Signal,
}

impl Token {
    /// The `u64` epoll carries for this token.
    #[inline]
    pub fn encode(self) -> u64 {
        let conn =
            |id: ConnId| u64::from(id.generation & GENERATION_MASK) << 32 | u64::from(id.slot);
        match self {
            Token::Conn(id) => conn(id),
            Token::CgiStdout(id) => CGI_STDOUT | conn(id),
            Token::CgiStdin(id) => CGI_STDIN | conn(id),
            // An index reaching bit 63 would need 2^63 listeners.
            Token::Listener(index) => LISTENER | index as u64,
            Token::Signal => SIGNAL,
        }
    }

    /// The token `raw` encodes; `None` for a value [`Token::encode`] never
    /// gives.
    #[inline]
    pub fn decode(raw: u64) -> Option<Token> {
        if raw & LISTENER != 0 {
            return usize::try_from(raw & !LISTENER).ok().map(Token::Listener);
        }
        let id = ConnId {
            slot: (raw & 0xffff_ffff) as u32,
            generation: (raw >> 32) as u32 & GENERATION_MASK,
        };
        match raw & KINDS {
            0 => Some(Token::Conn(id)),
            CGI_STDOUT => Some(Token::CgiStdout(id)),
            CGI_STDIN => Some(Token::CgiStdin(id)),
            SIGNAL if raw == SIGNAL => Some(Token::Signal),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        let ids = [
            ConnId::new(0, 0),
            ConnId::new(1, 1),
            ConnId::new(u32::MAX, GENERATION_MASK),
            ConnId::new(12345, 678),
        ];
        let mut tokens = vec![Token::Signal, Token::Listener(0), Token::Listener(7)];
        tokens.push(Token::Listener(usize::try_from(u32::MAX).unwrap()));
        for id in ids {
            tokens.extend([Token::Conn(id), Token::CgiStdout(id), Token::CgiStdin(id)]);
        }
        for t in &tokens {
            assert_eq!(Token::decode(t.encode()), Some(*t), "{t:?}");
        }
        // No two distinct tokens share a value.
        for (i, a) in tokens.iter().enumerate() {
            for b in tokens.iter().skip(i + 1) {
                assert_ne!(a.encode(), b.encode(), "{a:?} and {b:?}");
            }
        }
    }

    #[test]
    fn the_layout_is_the_documented_one() {
        let id = ConnId::new(3, 5);
        assert_eq!(Token::Conn(id).encode(), 5 << 32 | 3);
        assert_eq!(Token::CgiStdout(id).encode(), 1 << 61 | 5 << 32 | 3);
        assert_eq!(Token::CgiStdin(id).encode(), 1 << 60 | 5 << 32 | 3);
        assert_eq!(Token::Listener(2).encode(), 1 << 63 | 2);
        assert_eq!(Token::Signal.encode(), 1 << 62);
    }

    #[test]
    fn the_generation_wraps_below_the_kind_bits() {
        assert_eq!(next_generation(0), 1);
        assert_eq!(next_generation(GENERATION_MASK - 1), GENERATION_MASK);
        assert_eq!(next_generation(GENERATION_MASK), 0);
        assert_eq!(next_generation(u32::MAX), 0);
        let last = ConnId::new(9, GENERATION_MASK);
        let wrapped = ConnId::new(9, next_generation(last.generation));
        assert_eq!(wrapped.generation, 0);
        assert_eq!(Token::Conn(last).encode() & KINDS, 0);
        assert_ne!(Token::Conn(last).encode(), Token::Conn(wrapped).encode());
        // A generation given unwrapped is wrapped, never spilling into kinds.
        assert_eq!(ConnId::new(9, GENERATION_MASK + 1).generation, 0);
        assert_eq!(
            Token::decode(Token::Conn(ConnId::new(9, u32::MAX)).encode()),
            Some(Token::Conn(ConnId::new(9, GENERATION_MASK)))
        );
    }

    #[test]
    fn values_never_encoded_are_refused() {
        let both = CGI_STDOUT | CGI_STDIN | 4;
        assert_eq!(Token::decode(both), None);
        assert_eq!(Token::decode(SIGNAL | 1), None);
        assert_eq!(Token::decode(SIGNAL | CGI_STDOUT), None);
    }
}
