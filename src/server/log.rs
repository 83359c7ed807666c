//! The error log: `YYYY/MM/DD HH:MM:SS [level] pid#0: message`, as nginx
//! writes it, to stderr or a file, filtered by level. Writes are rare (errors,
//! start and stop) and go straight to the descriptor.

use std::fmt;
use std::io::Write;

use crate::config::{Level, LogTarget};

/// Where error messages go and from which level on.
pub struct Log {
    level: Level,
    file: Option<std::fs::File>,
}

impl Log {
    /// Open the log of `target` (a file is opened for appending; if that
    /// fails, stderr is used and the failure reported there).
    pub fn open(target: &LogTarget, level: Level) -> Log {
        let file = match target {
            LogTarget::File(p) => {
                match std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                {
                    Ok(f) => Some(f),
                    Err(e) => {
                        eprintln!(
                            "localserver: [alert] could not open error log {}: {e}",
                            p.display()
                        );
                        None
                    }
                }
            }
            _ => None,
        };
        Log { level, file }
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
        let line = format!(
            "{} [{}] {}#0: {args}\n",
            timestamp(now),
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

/// `YYYY/MM/DD HH:MM:SS` in UTC.
fn timestamp(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil-from-days (H. Hinnant), valid for the whole i64 day range we use.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}/{m:02}/{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(0), "1970/01/01 00:00:00");
        assert_eq!(timestamp(951_782_400), "2000/02/29 00:00:00");
        assert_eq!(timestamp(1_795_642_200), "2026/11/25 21:30:00");
    }
}
