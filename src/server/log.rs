//! The error log: `YYYY/MM/DD HH:MM:SS [level] pid#0: message`, as nginx
//! writes it (local time), to stderr or a file, filtered by level. Writes
//! are rare (errors, start and stop) and go straight to the descriptor. A
//! file log is opened again by name on `SIGUSR1` (`reopen`), for logrotate.
//!
//! `user NAME`: the log files are opened (created) as root and handed to
//! NAME (`hand_to_user`, nginx's `ngx_reopen_files` fchown), before the
//! privileges are dropped and again before every reopen the master drives,
//! so a process running as NAME can open them again by name.

use std::fmt;
use std::io::Write;

use crate::config::{Config, Level, LogTarget};
use crate::http::date::format_error_log_time;

/// Where error messages go and from which level on.
pub struct Log {
    level: Level,
    target: LogTarget,
    file: Option<std::fs::File>,
}

impl Log {
    /// Open the log of `target` (a file is opened for appending; if that
    /// fails, stderr is used and the failure reported there).
    pub fn open(target: &LogTarget, level: Level) -> Log {
        let file = match target {
            LogTarget::File(p) => match open_file(p) {
                Ok(f) => Some(f),
                Err(e) => {
                    eprintln!(
                        "localserver: [alert] could not open error log {}: {e}",
                        p.display()
                    );
                    None
                }
            },
            _ => None,
        };
        Log {
            level,
            target: target.clone(),
            file,
        }
    }

    /// A second handle on the same log (a `dup` of its descriptor): what a
    /// worker inherits from its master, which opened the file as root.
    /// `None` when the descriptor cannot be duplicated.
    pub fn try_clone(&self) -> Option<Log> {
        let file = match &self.file {
            Some(f) => Some(f.try_clone().ok()?),
            None => None,
        };
        Some(Log {
            level: self.level,
            target: self.target.clone(),
            file,
        })
    }

    /// Open a file log again by its name (`SIGUSR1`: logrotate moved the
    /// old file). If that fails, the old descriptor is kept and the failure
    /// logged to it and to stderr: an unprivileged process (`user`, one
    /// process) cannot create a file in a folder only root may write.
    pub fn reopen(&mut self) {
        let LogTarget::File(p) = &self.target else {
            return;
        };
        match open_file(p) {
            Ok(f) => self.file = Some(f),
            Err(e) => {
                let hint =
                    if e.kind() == std::io::ErrorKind::PermissionDenied && !crate::sys::is_root() {
                        "; this process runs as `user` and may not create it: create the \
                     new file for that user before the signal (logrotate: `create MODE \
                     USER GROUP`), or run `worker_processes` 2 or more and signal the \
                     master, which creates it as root"
                    } else {
                        ""
                    };
                let line = format!(
                    "could not reopen error log \"{}\" ({e}){hint}; \
                     logging goes on to the old file",
                    p.display()
                );
                self.error(format_args!("{line}"));
                if self.file.is_some() {
                    eprintln!("localserver: [error] {line}");
                }
            }
        }
    }

    /// The descriptor messages go to (a CGI's stderr is this).
    pub fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.file.as_ref().map_or(2, AsRawFd::as_raw_fd)
    }

    /// Log at `level`.
    pub fn write(&self, level: Level, args: fmt::Arguments<'_>) {
        if level < self.level {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        let stamp = format_error_log_time(now, crate::sys::utc_offset(now));
        let line = format!(
            "{} [{}] {}#0: {args}\n",
            String::from_utf8_lossy(&stamp),
            name(level),
            std::process::id()
        );
        let _ = match self.file.as_ref() {
            Some(mut f) => f.write_all(line.as_bytes()),
            None => std::io::stderr().write_all(line.as_bytes()),
        };
    }

    /// `[error]`.
    pub fn error(&self, args: fmt::Arguments<'_>) {
        self.write(Level::Error, args);
    }
    /// `[warn]`.
    pub fn warn(&self, args: fmt::Arguments<'_>) {
        self.write(Level::Warn, args);
    }
    /// `[notice]`.
    pub fn notice(&self, args: fmt::Arguments<'_>) {
        self.write(Level::Notice, args);
    }
    /// `[info]`.
    pub fn info(&self, args: fmt::Arguments<'_>) {
        self.write(Level::Info, args);
    }
}

fn name(l: Level) -> &'static str {
    match l {
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Notice => "notice",
        Level::Warn => "warn",
        Level::Error => "error",
        Level::Crit => "crit",
    }
}

/// `user NAME` (started as root): create every log file of `config` (the
/// error log and the access logs) and make NAME its owner, so that a
/// process running as NAME can open it again by name on `SIGUSR1`. As
/// nginx's master does before it signals its workers (`ngx_reopen_files`:
/// `fchown` to the worker user, owner read and write added). Called before
/// the privileges are dropped, and by the master before each reopen and
/// each new generation of workers. Nothing to do without `user`, when not
/// root, or when NAME is root. Failures are logged; the process that then
/// cannot open a file reports it too.
pub fn hand_to_user(config: &Config, log: &Log) {
    let Some(name) = &config.user else {
        return;
    };
    if !crate::sys::is_root() {
        return;
    }
    // An unknown user is refused where the privileges are dropped.
    let Ok((uid, _)) = crate::sys::lookup_user(name) else {
        return;
    };
    if uid == 0 {
        return;
    }
    let access = config.servers.iter().flat_map(|s| {
        std::iter::once(&s.access_log.target)
            .chain(s.locations.iter().map(|l| &l.access_log.target))
    });
    for target in std::iter::once(&config.error_log).chain(access) {
        let LogTarget::File(p) = target else {
            continue;
        };
        if let Err(e) = give(p, uid) {
            log.error(format_args!(
                "could not hand log \"{}\" to user \"{name}\" ({e})",
                p.display()
            ));
        }
    }
}

/// Create `p` if needed and make `uid` its owner, with owner read and write.
fn give(p: &std::path::Path, uid: libc::uid_t) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let f = open_file(p)?;
    let meta = f.metadata()?;
    if meta.uid() != uid {
        // The group stays as it is (nginx passes -1 too).
        std::os::unix::fs::fchown(&f, Some(uid), None)?;
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o600 != 0o600 {
        f.set_permissions(std::fs::Permissions::from_mode(mode | 0o600))?;
    }
    Ok(())
}

/// Append-only, created `0644` like nginx's logs.
fn open_file(p: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o644)
        .open(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_below_the_configured_one_are_not_written() {
        let path = std::env::temp_dir().join(format!("ls-log-levels-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let log = Log::open(&LogTarget::File(path.clone()), Level::Warn);
        log.info(format_args!("an info line"));
        log.notice(format_args!("a notice line"));
        log.warn(format_args!("a warn line"));
        log.error(format_args!("an error line"));
        log.write(Level::Crit, format_args!("a crit line"));
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        let pid = std::process::id();
        for (line, (level, msg)) in lines.iter().zip([
            ("warn", "a warn line"),
            ("error", "an error line"),
            ("crit", "a crit line"),
        ]) {
            // `YYYY/MM/DD HH:MM:SS [level] pid#0: message`
            let (stamp, rest) = line.split_at(19);
            assert!(
                stamp.bytes().enumerate().all(|(i, b)| match i {
                    4 | 7 => b == b'/',
                    10 => b == b' ',
                    13 | 16 => b == b':',
                    _ => b.is_ascii_digit(),
                }),
                "{line}"
            );
            assert_eq!(rest, format!(" [{level}] {pid}#0: {msg}"));
        }
    }
}
