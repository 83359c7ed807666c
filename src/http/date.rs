//! HTTP dates (RFC 9110 §5.6.7): formatting as IMF-fixdate and parsing the
//! three accepted forms, with plain integer arithmetic (no libc, no time zone:
//! HTTP dates are always GMT). Also the two log timestamps nginx writes, in
//! local time: the caller passes the zone's offset (from `sys::utc_offset`),
//! so the formatting stays pure.
//!
//! Conversions use Howard Hinnant's days-from-civil / civil-from-days
//! algorithms on the proleptic Gregorian calendar. Formatting clamps to the
//! years 0000..=9999, the range a four-digit year can show.

/// Earliest second that can be formatted: 0000-01-01T00:00:00Z.
const MIN_SECS: i64 = -62_167_219_200;
/// Latest second that can be formatted: 9999-12-31T23:59:59Z.
const MAX_SECS: i64 = 253_402_300_799;
const SECS_PER_DAY: i64 = 86_400;

const DAY_NAMES: [&[u8; 3]; 7] = [b"Sun", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat"];
const DAY_NAMES_LONG: [&[u8]; 7] = [
    b"Sunday",
    b"Monday",
    b"Tuesday",
    b"Wednesday",
    b"Thursday",
    b"Friday",
    b"Saturday",
];
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// `(year, month 1..=12, day 1..=31)` of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a valid civil date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // [0, 399]
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March-based month
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn two_digits(v: u32) -> [u8; 2] {
    [b'0' + (v / 10 % 10) as u8, b'0' + (v % 10) as u8]
}

/// Formats `unix_secs` as an IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`
/// (RFC 9110 §5.6.7). Times outside years 0000..=9999 are clamped.
pub fn format_http_date(unix_secs: i64) -> [u8; 29] {
    let t = unix_secs.clamp(MIN_SECS, MAX_SECS);
    let days = t.div_euclid(SECS_PER_DAY);
    let sod = t.rem_euclid(SECS_PER_DAY) as u32;
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday (index 4).
    let wd = DAY_NAMES
        .get((days + 4).rem_euclid(7) as usize)
        .copied()
        .unwrap_or(b"Thu");
    let mo = MONTHS
        .get(month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or(b"Jan");
    let y = year.clamp(0, 9999) as u32;
    let [y0, y1] = two_digits(y / 100);
    let [y2, y3] = two_digits(y % 100);
    let [d0, d1] = two_digits(day);
    let [h0, h1] = two_digits(sod / 3600);
    let [m0, m1] = two_digits(sod / 60 % 60);
    let [s0, s1] = two_digits(sod % 60);
    let [w0, w1, w2] = *wd;
    let [n0, n1, n2] = *mo;
    [
        w0, w1, w2, b',', b' ', d0, d1, b' ', n0, n1, n2, b' ', y0, y1, y2, y3, b' ', h0, h1, b':',
        m0, m1, b':', s0, s1, b' ', b'G', b'M', b'T',
    ]
}

/// Local civil time of `unix_secs` shifted by `offset` seconds (clamped
/// to the four-digit years): `(year, month, day, second of day)`.
fn local_civil(unix_secs: i64, offset: i64) -> (u32, u32, u32, u32) {
    let t = unix_secs.saturating_add(offset).clamp(MIN_SECS, MAX_SECS);
    let (year, month, day) = civil_from_days(t.div_euclid(SECS_PER_DAY));
    let sod = t.rem_euclid(SECS_PER_DAY) as u32;
    (year.clamp(0, 9999) as u32, month, day, sod)
}

/// The digits of a local time: `YYYY`, `MM`, `DD`, `hh`, `mm`, `ss`, and the
/// month's number (1-12).
struct LocalDigits {
    year: [u8; 4],
    month: u32,
    mon: [u8; 2],
    day: [u8; 2],
    hour: [u8; 2],
    min: [u8; 2],
    sec: [u8; 2],
}

fn local_digits(unix_secs: i64, offset: i64) -> LocalDigits {
    let (y, month, day, sod) = local_civil(unix_secs, offset);
    let [y0, y1] = two_digits(y / 100);
    let [y2, y3] = two_digits(y % 100);
    LocalDigits {
        year: [y0, y1, y2, y3],
        month,
        mon: two_digits(month),
        day: two_digits(day),
        hour: two_digits(sod / 3600),
        min: two_digits(sod / 60 % 60),
        sec: two_digits(sod % 60),
    }
}

/// The zone offset's sign, hours and minutes (`+`, `01`, `00`).
fn offset_digits(offset: i64) -> (u8, [u8; 2], [u8; 2]) {
    let sign = if offset < 0 { b'-' } else { b'+' };
    let off_min = (offset.unsigned_abs() / 60).min(99 * 60 + 59) as u32;
    (sign, two_digits(off_min / 60), two_digits(off_min % 60))
}

/// nginx's `$time_local` for the access log: `26/Nov/2026:00:14:34 +0100`,
/// `unix_secs` seen in a zone `offset` seconds east of UTC.
pub fn format_log_time(unix_secs: i64, offset: i64) -> [u8; 26] {
    let t = local_digits(unix_secs, offset);
    let mo = MONTHS
        .get(t.month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or(b"Jan");
    let ([y0, y1, y2, y3], [n0, n1, n2], [d0, d1]) = (t.year, *mo, t.day);
    let ([h0, h1], [m0, m1], [s0, s1]) = (t.hour, t.min, t.sec);
    let (sign, [oh0, oh1], [om0, om1]) = offset_digits(offset);
    [
        d0, d1, b'/', n0, n1, n2, b'/', y0, y1, y2, y3, b':', h0, h1, b':', m0, m1, b':', s0, s1,
        b' ', sign, oh0, oh1, om0, om1,
    ]
}

/// `$time_iso8601`: `2026-11-26T00:14:34+01:00`, local time.
pub fn format_iso8601(unix_secs: i64, offset: i64) -> [u8; 25] {
    let t = local_digits(unix_secs, offset);
    let ([y0, y1, y2, y3], [mo0, mo1], [d0, d1]) = (t.year, t.mon, t.day);
    let ([h0, h1], [m0, m1], [s0, s1]) = (t.hour, t.min, t.sec);
    let (sign, [oh0, oh1], [om0, om1]) = offset_digits(offset);
    [
        y0, y1, y2, y3, b'-', mo0, mo1, b'-', d0, d1, b'T', h0, h1, b':', m0, m1, b':', s0, s1,
        sign, oh0, oh1, b':', om0, om1,
    ]
}

/// nginx's error log timestamp: `2026/11/26 00:14:34`, local time.
pub fn format_error_log_time(unix_secs: i64, offset: i64) -> [u8; 19] {
    let t = local_digits(unix_secs, offset);
    let ([y0, y1, y2, y3], [mo0, mo1], [d0, d1]) = (t.year, t.mon, t.day);
    let ([h0, h1], [m0, m1], [s0, s1]) = (t.hour, t.min, t.sec);
    [
        y0, y1, y2, y3, b'/', mo0, mo1, b'/', d0, d1, b' ', h0, h1, b':', m0, m1, b':', s0, s1,
    ]
}

/// The value of `n` ASCII digits, or `None` if any is not a digit.
fn digits(ds: &[u8]) -> Option<u32> {
    ds.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

fn month_from_name(name: &[u8]) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| &m[..] == name)
        .map(|i| i as u32 + 1)
}

fn is_day_name(name: &[u8]) -> bool {
    DAY_NAMES.iter().any(|d| &d[..] == name)
}

/// Seconds since the epoch of validated fields; `None` for an impossible date
/// or time. A leap second (`:60`) is accepted and folds into the next minute.
fn to_unix(year: i64, month: u32, day: u32, time: &[u8]) -> Option<i64> {
    let [h0, h1, b':', m0, m1, b':', s0, s1] = *time else {
        return None;
    };
    let (h, m, s) = (digits(&[h0, h1])?, digits(&[m0, m1])?, digits(&[s0, s1])?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * SECS_PER_DAY + i64::from(h * 3600 + m * 60 + s))
}

/// Parses an HTTP-date in any of the three forms of RFC 9110 §5.6.7:
/// `Sun, 06 Nov 1994 08:49:37 GMT` (IMF-fixdate),
/// `Sunday, 06-Nov-94 08:49:37 GMT` (RFC 850) and
/// `Sun Nov  6 08:49:37 1994` (asctime). Names are case-sensitive as the
/// grammar says; the weekday must be a real day name but is not checked
/// against the date (as nginx does). An RFC 850 two-digit year below 70 is
/// taken as 20xx, else 19xx: a fixed reading of RFC 9110's "more than 50
/// years in the future" rule that keeps this function pure.
pub fn parse_http_date(b: &[u8]) -> Option<i64> {
    match b.len() {
        29 => parse_imf_fixdate(b),
        24 => parse_asctime(b),
        _ => parse_rfc850(b),
    }
}

/// Whether `b` has the literal `lit` at `at`.
fn has_at(b: &[u8], at: usize, lit: &[u8]) -> bool {
    b.get(at..at + lit.len()) == Some(lit)
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`
fn parse_imf_fixdate(b: &[u8]) -> Option<i64> {
    let layout = has_at(b, 3, b", ")
        && has_at(b, 7, b" ")
        && has_at(b, 11, b" ")
        && has_at(b, 16, b" ")
        && has_at(b, 25, b" GMT");
    if !layout || b.len() != 29 || !is_day_name(b.get(..3)?) {
        return None;
    }
    let day = digits(b.get(5..7)?)?;
    let month = month_from_name(b.get(8..11)?)?;
    let year = i64::from(digits(b.get(12..16)?)?);
    to_unix(year, month, day, b.get(17..25)?)
}

/// `Sun Nov  6 08:49:37 1994`; the day is `2DIGIT / ( SP DIGIT )`.
fn parse_asctime(b: &[u8]) -> Option<i64> {
    let layout =
        has_at(b, 3, b" ") && has_at(b, 7, b" ") && has_at(b, 10, b" ") && has_at(b, 19, b" ");
    if !layout || b.len() != 24 || !is_day_name(b.get(..3)?) {
        return None;
    }
    let month = month_from_name(b.get(4..7)?)?;
    let day_field = b.get(8..10)?;
    let day = digits(day_field.strip_prefix(b" ").unwrap_or(day_field))?;
    let year = i64::from(digits(b.get(20..24)?)?);
    to_unix(year, month, day, b.get(11..19)?)
}

/// `Sunday, 06-Nov-94 08:49:37 GMT` (RFC 850, obsolete but still accepted).
fn parse_rfc850(b: &[u8]) -> Option<i64> {
    let comma = memchr::memchr(b',', b)?;
    let (name, rest) = b.split_at_checked(comma)?;
    // rest: `, 06-Nov-94 08:49:37 GMT`
    let layout = has_at(rest, 0, b", ")
        && has_at(rest, 4, b"-")
        && has_at(rest, 8, b"-")
        && has_at(rest, 11, b" ")
        && has_at(rest, 20, b" GMT");
    if !layout || rest.len() != 24 || !DAY_NAMES_LONG.contains(&name) {
        return None;
    }
    let day = digits(rest.get(2..4)?)?;
    let month = month_from_name(rest.get(5..8)?)?;
    let yy = i64::from(digits(rest.get(9..11)?)?);
    let year = if yy < 70 { 2000 + yy } else { 1900 + yy };
    to_unix(year, month, day, rest.get(12..20)?)
}

/// The formatted `Date` of the current second, reformatted only when the
/// second changes (a busy server formats once per second, not per response).
#[derive(Clone, Copy, Debug, Default)]
pub struct DateCache {
    /// The second `text` was formatted for; `None` before the first `get`.
    secs: Option<i64>,
    text: [u8; 29],
}

impl DateCache {
    /// An empty cache; the first `get` formats.
    pub fn new() -> DateCache {
        DateCache::default()
    }

    /// The IMF-fixdate of `unix_secs`.
    pub fn get(&mut self, unix_secs: i64) -> &[u8; 29] {
        if self.secs != Some(unix_secs) {
            self.text = format_http_date(unix_secs);
            self.secs = Some(unix_secs);
        }
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601() {
        assert_eq!(
            &format_iso8601(1_700_000_000, 0),
            b"2023-11-14T22:13:20+00:00"
        );
        assert_eq!(
            &format_iso8601(1_700_000_000, -5 * 3600 - 1800),
            b"2023-11-14T16:43:20-05:30"
        );
    }
    use crate::testkit::xorshift;

    #[test]
    fn log_times() {
        let cases: &[(i64, i64, &str, &str)] = &[
            (0, 0, "01/Jan/1970:00:00:00 +0000", "1970/01/01 00:00:00"),
            (
                1_795_652_074,
                0,
                "26/Nov/2026:00:14:34 +0000",
                "2026/11/26 00:14:34",
            ),
            // East of UTC: the local clock is ahead, the date may roll over.
            (
                1_795_652_074,
                3_600,
                "26/Nov/2026:01:14:34 +0100",
                "2026/11/26 01:14:34",
            ),
            // West, with minutes (Newfoundland), back into the previous day.
            (
                1_795_652_074,
                -(3 * 3_600 + 1_800),
                "25/Nov/2026:20:44:34 -0330",
                "2026/11/25 20:44:34",
            ),
            (
                951_825_599,
                0,
                "29/Feb/2000:11:59:59 +0000",
                "2000/02/29 11:59:59",
            ),
            (
                1_700_000_000,
                5 * 3_600 + 2_700,
                "15/Nov/2023:03:58:20 +0545",
                "2023/11/15 03:58:20",
            ),
        ];
        for &(t, off, access, error) in cases {
            assert_eq!(
                std::str::from_utf8(&format_log_time(t, off)).unwrap(),
                access,
                "{t} {off}"
            );
            assert_eq!(
                std::str::from_utf8(&format_error_log_time(t, off)).unwrap(),
                error,
                "{t} {off}"
            );
        }
        // Out of range clamps instead of panicking.
        assert_eq!(&format_log_time(i64::MAX, i64::MAX)[..11], b"31/Dec/9999");
        assert_eq!(&format_error_log_time(i64::MIN, -1)[..10], b"0000/01/01");
    }

    #[test]
    fn known_dates() {
        let cases: &[(i64, &str)] = &[
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_078_012_800, "Sun, 29 Feb 2004 00:00:00 GMT"),
            (4_107_456_000, "Sun, 28 Feb 2100 00:00:00 GMT"),
            (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"),
            (2_147_483_647, "Tue, 19 Jan 2038 03:14:07 GMT"),
            (2_147_483_648, "Tue, 19 Jan 2038 03:14:08 GMT"),
            (4_102_444_800, "Fri, 01 Jan 2100 00:00:00 GMT"),
            (1_700_000_000, "Tue, 14 Nov 2023 22:13:20 GMT"),
            (-1, "Wed, 31 Dec 1969 23:59:59 GMT"),
            (-86_400 * 365, "Wed, 01 Jan 1969 00:00:00 GMT"),
            (MAX_SECS, "Fri, 31 Dec 9999 23:59:59 GMT"),
            (i64::MAX, "Fri, 31 Dec 9999 23:59:59 GMT"),
            (MIN_SECS, "Sat, 01 Jan 0000 00:00:00 GMT"),
            (i64::MIN, "Sat, 01 Jan 0000 00:00:00 GMT"),
        ];
        for (secs, want) in cases {
            let got = format_http_date(*secs);
            assert_eq!(std::str::from_utf8(&got).unwrap(), *want, "{secs}");
            if (MIN_SECS..=MAX_SECS).contains(secs) {
                assert_eq!(parse_http_date(want.as_bytes()), Some(*secs), "{want}");
            }
        }
    }

    #[test]
    fn the_three_forms_of_rfc_9110() {
        let want = Some(784_111_777);
        assert_eq!(parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"), want);
        assert_eq!(parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT"), want);
        assert_eq!(parse_http_date(b"Sun Nov  6 08:49:37 1994"), want);
        assert_eq!(parse_http_date(b"Sun Nov 06 08:49:37 1994"), want);
        assert_eq!(
            parse_http_date(b"Thursday, 01-Jan-04 00:00:00 GMT"),
            parse_http_date(b"Thu, 01 Jan 2004 00:00:00 GMT")
        );
    }

    #[test]
    fn malformed_dates_are_refused() {
        let bad: &[&[u8]] = &[
            b"",
            b"Sun, 06 Nov 1994 08:49:37 UTC",
            b"sun, 06 Nov 1994 08:49:37 GMT",
            b"Sun, 06 nov 1994 08:49:37 GMT",
            b"Xyz, 06 Nov 1994 08:49:37 GMT",
            b"Sun, 6 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov 94 08:49:37 GMT",
            b"Sun, 06 Nov 1994 08:49:37 GMT ",
            b"Sun, 06 Nov 1994 8:49:37 GMT",
            b"Sun, 06 Nov 1994 24:00:00 GMT",
            b"Sun, 06 Nov 1994 23:60:00 GMT",
            b"Sun, 06 Nov 1994 23:59:61 GMT",
            b"Sun, 31 Nov 1994 08:49:37 GMT",
            b"Sun, 00 Nov 1994 08:49:37 GMT",
            b"Sun, 29 Feb 1900 08:49:37 GMT",
            b"Sun, 29 Feb 1999 08:49:37 GMT",
            b"Sun, 0x 11 1994 08:49:37 GMT",
            b"Sun, +6 Nov 1994 08:49:37 GMT",
            b"Sunday, 06-Nov-1994 08:49:37 GMT",
            b"Sun, 06-Nov-94 08:49:37 GMT",
            b"Sunday 06-Nov-94 08:49:37 GMT",
            b"Sun Nov  6 08:49:37 94",
            b"Sun Nov 6 08:49:37 1994",
            b"1994-11-06T08:49:37Z",
        ];
        for b in bad {
            assert_eq!(parse_http_date(b), None, "{}", String::from_utf8_lossy(b));
        }
    }

    #[test]
    fn leap_years() {
        for (year, leap) in [
            (1900, false),
            (2000, true),
            (2004, true),
            (2023, false),
            (2100, false),
            (2400, true),
        ] {
            assert_eq!(is_leap(year), leap, "{year}");
            let feb29 = format!("Mon, 29 Feb {year} 00:00:00 GMT");
            assert_eq!(parse_http_date(feb29.as_bytes()).is_some(), leap, "{feb29}");
        }
        // The day after 28 Feb 2000 is 29 Feb; after 28 Feb 2100 it is 1 Mar.
        let d = parse_http_date(b"Mon, 28 Feb 2000 12:00:00 GMT").unwrap();
        assert_eq!(&format_http_date(d + 86_400)[..16], b"Tue, 29 Feb 2000");
        let d = parse_http_date(b"Sun, 28 Feb 2100 12:00:00 GMT").unwrap();
        assert_eq!(&format_http_date(d + 86_400)[..16], b"Mon, 01 Mar 2100");
    }

    #[test]
    fn round_trip_over_many_values() {
        let mut s = 0x9E37_79B9_7F4A_7C15;
        for i in 0..20_000i64 {
            let t = match i % 3 {
                0 => (xorshift(&mut s) % (MAX_SECS - MIN_SECS) as u64) as i64 + MIN_SECS,
                1 => (xorshift(&mut s) % 4_000_000_000) as i64,
                _ => i * 86_399,
            };
            let f = format_http_date(t);
            assert_eq!(
                parse_http_date(&f),
                Some(t),
                "{}",
                String::from_utf8_lossy(&f)
            );
        }
        // Every day boundary over a few centuries keeps civil_from_days and
        // days_from_civil inverse to each other.
        for days in -200_000..200_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn mutated_dates_never_panic_and_parse_consistently() {
        let seeds: [&[u8]; 3] = [
            b"Sun, 06 Nov 1994 08:49:37 GMT",
            b"Sunday, 06-Nov-94 08:49:37 GMT",
            b"Sun Nov  6 08:49:37 1994",
        ];
        let alphabet = b"0123456789 ,:-GMTSunNovFebx\xff";
        let mut s = 0x2545_F491_4F6C_DD1D;
        for i in 0..20_000 {
            let mut v = seeds[i % 3].to_vec();
            for _ in 0..(xorshift(&mut s) % 3 + 1) {
                let at = (xorshift(&mut s) as usize) % (v.len() + 1);
                let c = alphabet[(xorshift(&mut s) as usize) % alphabet.len()];
                match xorshift(&mut s) % 3 {
                    0 if at < v.len() => v[at] = c,
                    1 if at < v.len() => {
                        v.remove(at);
                    }
                    _ => v.insert(at, c),
                }
            }
            if let Some(t) = parse_http_date(&v) {
                // Whatever is accepted denotes a real second that formats and
                // parses back to itself.
                assert_eq!(parse_http_date(&format_http_date(t)), Some(t));
            }
        }
    }

    #[test]
    fn cache_reformats_only_when_the_second_changes() {
        let mut c = DateCache::new();
        assert_eq!(c.get(0), &format_http_date(0));
        assert_eq!(c.get(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(c.get(1), b"Thu, 01 Jan 1970 00:00:01 GMT");
        assert_eq!(c.get(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
