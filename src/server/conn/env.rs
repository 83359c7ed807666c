//! What a connection borrows from its loop for one `drive`: [`Shared`], the
//! state every connection of the loop uses in turn (buffers, caches,
//! budgets, logs, running CGIs, sessions), and [`Env`], that plus the
//! configuration and clocks of this drive.
//!
//! The reactor owns one `Shared` beside its slab of connections, so a
//! connection (in the slab) and the context (outside it) are borrowed apart;
//! the unit tests and the fuzzer own one too, with an epoll instance nobody
//! waits on.

use crate::config::{Config, ListenerSpec};
use crate::handlers::RootCache;
use crate::handlers::limits::LimitTable;
use crate::handlers::session::SessionStore;
use crate::http::date::DateCache;
use crate::http::response::HeadBuf;
use crate::sys::{Epoll, Pipe};

use super::super::access::AccessLogs;
use super::super::board::{Board, Field};
use super::super::buffer::BufPool;
use super::super::cgi::CgiTable;
use super::super::log::Log;
use super::super::timer::Millis;
use super::super::token::ConnId;
use super::Phase;

/// The loop's state that every connection uses during its drive.
pub struct Shared {
    /// The loop's epoll instance: a CGI's pipes are watched here, under
    /// the tokens of the connection that runs it.
    pub epoll: Epoll,
    pub pool: BufPool,
    /// What the handlers use: open roots, files, sessions.
    pub site: Site,
    /// Where response heads are written.
    pub heads: Heads,
    /// The server is stopping: finish this response, keep nothing alive.
    pub draining: bool,
    /// Running CGI processes.
    pub cgi: CgiTable,
    /// Stream plain upload bodies with `splice` (socket → pipe → file).
    pub splice: bool,
    /// The pipe pair those splices go through, one for the whole loop (made
    /// on first use): each step drains what it put in, so it is empty
    /// between steps, and a step that could not drain it drops it. One per
    /// upload cost two descriptors per slow uploader and three syscalls.
    pub splice_pipe: Option<(Pipe, Pipe)>,
    /// The access logs (empty when no server has one).
    pub access: AccessLogs,
    /// The status counters of every worker; this loop writes its own row
    /// (a parsed head counts a request here).
    pub board: Board,
    /// Bytes `sendfile` may still move in this turn of the loop, all
    /// connections together. At 0 a file body waits for the next turn with
    /// the connection still ready (`Step::Budget`), so hundreds of sockets
    /// with room to fill cannot make one turn last long enough to keep a
    /// new client waiting (a socket's send buffer grows to 4 MiB here; 500
    /// of them filled in one turn is 2 GB of splicing).
    pub sendfile_left: usize,
    /// Connections of this loop sending a large (corked) file body now:
    /// one that starts while another is going caps its unsent queue (see
    /// `sys::socket::NOTSENT_LOWAT`).
    pub streams: usize,
    /// The error log (also every CGI's stderr).
    pub log: Log,
    /// The `limit_conn`/`limit_req` table shared by every worker (`None`
    /// only where none could be mapped, and in tests).
    pub limits: Option<LimitTable>,
}

impl Shared {
    /// A fresh context around `epoll`, `log` and `board`: an empty pool
    /// keeping at most `pool_keep` spare buffers, nothing open, nothing
    /// running.
    pub fn new(epoll: Epoll, log: Log, pool_keep: usize, board: Board) -> Shared {
        Shared {
            epoll,
            pool: BufPool::new(pool_keep),
            site: Site::default(),
            heads: Heads::default(),
            draining: false,
            cgi: CgiTable::default(),
            splice: false,
            splice_pipe: None,
            access: AccessLogs::default(),
            board,
            sendfile_left: usize::MAX,
            streams: 0,
            log,
            limits: None,
        }
    }

    /// Bring the board's count of running CGI processes up to date (once a
    /// turn: scripts start and end in several places).
    pub fn publish_cgi(&mut self) {
        let now = self.cgi.running.len();
        let was = std::mem::replace(&mut self.cgi.published, now);
        if now > was {
            self.board.add(Field::Cgi, (now - was) as u64);
        } else if now < was {
            self.board.sub(Field::Cgi, (was - now) as u64);
        }
    }
}

/// What the handlers are lent for a request (`handlers::Ctx`): apart from
/// [`Heads`], so a reply that borrows them can still be written out.
#[derive(Default)]
pub struct Site {
    /// Open roots and the open-file cache.
    pub roots: RootCache,
    /// The session store (`None` when no route has `session on`, or it
    /// could not be opened).
    pub sessions: Option<SessionStore>,
}

/// Where response heads are written.
pub struct Heads {
    /// A head is built here, then copied into the connection's buffer.
    pub scratch: HeadBuf,
    /// `Date` header values, formatted once a second.
    pub dates: DateCache,
}

impl Default for Heads {
    fn default() -> Heads {
        Heads {
            scratch: HeadBuf::new(),
            dates: DateCache::default(),
        }
    }
}

/// What the loop hands a connection for one `drive`.
pub struct Env<'a> {
    pub shared: &'a mut Shared,
    /// The configuration the connection's exchange runs under (after a
    /// reload, an older one than new connections get).
    pub config: &'a Config,
    pub specs: &'a [ListenerSpec],
    /// Monotonic clock, milliseconds.
    pub now: Millis,
    /// Wall clock, seconds since the epoch.
    pub unix_now: i64,
    /// This connection's slot and generation: its CGI pipes' tokens.
    pub id: ConnId,
    /// The phase this connection is counted in on the board (as of its
    /// last drive): a `status` page counts it as writing instead.
    pub counted: Phase,
}
