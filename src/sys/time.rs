//! The local time zone's offset from UTC, for log timestamps (nginx logs in
//! local time). `localtime_r` reads the zone once (`TZ` or
//! `/etc/localtime`); callers cache the result per second.

use std::mem;

/// Seconds east of UTC of the local zone at `unix` (daylight saving
/// included); 0 if the time cannot be converted.
pub fn utc_offset(unix: i64) -> i64 {
    let t: libc::time_t = unix;
    // SAFETY: all-zero `tm` is valid plain data (a null `tm_zone` pointer
    // is only ever written by libc, never read here).
    let mut tm: libc::tm = unsafe { mem::zeroed() };
    // SAFETY: both pointers are live for the call; localtime_r is the
    // reentrant form and keeps no reference to them.
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    if r.is_null() { 0 } else { tm.tm_gmtoff }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_is_within_a_day_and_whole_minutes() {
        for t in [0, 1_700_000_000, 1_795_652_074] {
            let off = utc_offset(t);
            assert!(off.abs() < 86_400, "{off}");
            assert_eq!(off % 60, 0, "{off}");
        }
    }
}
