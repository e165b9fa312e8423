//! IMAP `date` and `date-time` values (RFC 3501 section 9), validated on construction.
//!
//! Only calendar arithmetic lives here (days from the civil date, no time-zone
//! database): SEARCH compares dates and INTERNALDATE is written from a Unix time.

use std::fmt;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn is_leap(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The month number (1-12) of a three-letter English month name, any case.
pub(crate) fn month_from_name(name: &[u8]) -> Option<u8> {
    MONTHS
        .iter()
        .position(|m| m.as_bytes().eq_ignore_ascii_case(name))
        .and_then(|i| u8::try_from(i + 1).ok())
}

/// A calendar date (`date` in SEARCH): year 0-9999 as four digits allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl Date {
    /// Builds a date if it exists in the proleptic Gregorian calendar.
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        if year > 9999 || !(1..=12).contains(&month) || day == 0 {
            return None;
        }
        (day <= days_in_month(year, month)).then_some(Date { year, month, day })
    }

    /// Year.
    pub fn year(self) -> u16 {
        self.year
    }

    /// Month, 1-12.
    pub fn month(self) -> u8 {
        self.month
    }

    /// Day of month, 1-31.
    pub fn day(self) -> u8 {
        self.day
    }

    /// Days since 1970-01-01 (negative before), Howard Hinnant's `days_from_civil`.
    pub fn days_since_epoch(self) -> i64 {
        let m = i64::from(self.month);
        let y = i64::from(self.year) - i64::from(m <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` after 1970-01-01, if its year fits four digits.
    pub fn from_days_since_epoch(days: i64) -> Option<Date> {
        let z = days.checked_add(719_468)?;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        Date::new(
            u16::try_from(year).ok()?,
            u8::try_from(month).ok()?,
            u8::try_from(day).ok()?,
        )
    }
}

impl fmt::Display for Date {
    /// `date-text`: `1-Feb-1994`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let month = MONTHS
            .get(usize::from(self.month).wrapping_sub(1))
            .unwrap_or(&"Jan");
        write!(f, "{}-{}-{:04}", self.day, month, self.year)
    }
}

/// A `date-time` with its zone, as in APPEND and INTERNALDATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    date: Date,
    hour: u8,
    minute: u8,
    second: u8,
    /// Minutes east of UTC.
    zone: i16,
}

impl DateTime {
    /// Builds a date-time; the zone is in minutes east of UTC, at most ±23:59.
    /// Second 60 is allowed for a leap second.
    pub fn new(
        date: Date,
        hour: u8,
        minute: u8,
        second: u8,
        zone_minutes: i16,
    ) -> Option<DateTime> {
        if hour > 23 || minute > 59 || second > 60 || zone_minutes.unsigned_abs() >= 24 * 60 {
            return None;
        }
        Some(DateTime {
            date,
            hour,
            minute,
            second,
            zone: zone_minutes,
        })
    }

    /// The local date.
    pub fn date(&self) -> Date {
        self.date
    }

    /// Zone offset in minutes east of UTC.
    pub fn zone_minutes(&self) -> i16 {
        self.zone
    }

    /// Seconds since the Unix epoch of this instant.
    pub fn unix_timestamp(&self) -> i64 {
        self.date.days_since_epoch() * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - i64::from(self.zone) * 60
    }

    /// The instant `ts` shown in the zone `zone_minutes` east of UTC, if representable.
    pub fn from_unix_timestamp(ts: i64, zone_minutes: i16) -> Option<DateTime> {
        if zone_minutes.unsigned_abs() >= 24 * 60 {
            return None;
        }
        let local = ts.checked_add(i64::from(zone_minutes) * 60)?;
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400);
        let date = Date::from_days_since_epoch(days)?;
        DateTime::new(
            date,
            u8::try_from(secs / 3600).ok()?,
            u8::try_from(secs % 3600 / 60).ok()?,
            u8::try_from(secs % 60).ok()?,
            zone_minutes,
        )
    }
}

/// Length of the quoted `date-time` form.
const QUOTED_LEN: usize = 28;

impl DateTime {
    /// The quoted `date-time` form, `"17-Jul-1996 02:44:25 -0700"`, with `day_pad` before a
    /// one-digit day (RFC 3501 `date-day-fixed` has a space; Dovecot writes INTERNALDATE with
    /// `0`). Every field has a fixed width (years are 0-9999, zones within ±23:59), so it is
    /// built in place: INTERNALDATE is written for every message of a `FETCH 1:*`.
    fn quoted(&self, day_pad: u8) -> [u8; QUOTED_LEN] {
        fn two(n: u16) -> [u8; 2] {
            // Each digit is below 10.
            [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]
        }
        let month = MONTHS
            .get(usize::from(self.date.month).wrapping_sub(1))
            .unwrap_or(&"Jan")
            .as_bytes();
        let [d0, d1] = two(u16::from(self.date.day));
        let [y0, y1] = two(self.date.year / 100);
        let [y2, y3] = two(self.date.year % 100);
        let [h0, h1] = two(u16::from(self.hour));
        let [m0, m1] = two(u16::from(self.minute));
        let [s0, s1] = two(u16::from(self.second));
        let z = self.zone.unsigned_abs();
        let [zh0, zh1] = two(z / 60);
        let [zm0, zm1] = two(z % 60);
        let sign = if self.zone < 0 { b'-' } else { b'+' };
        let (mo0, mo1, mo2) = match month {
            [a, b, c] => (*a, *b, *c),
            _ => (b'J', b'a', b'n'),
        };
        [
            b'"',
            if d0 == b'0' { day_pad } else { d0 },
            d1,
            b'-',
            mo0,
            mo1,
            mo2,
            b'-',
            y0,
            y1,
            y2,
            y3,
            b' ',
            h0,
            h1,
            b':',
            m0,
            m1,
            b':',
            s0,
            s1,
            b' ',
            sign,
            zh0,
            zh1,
            zm0,
            zm1,
            b'"',
        ]
    }

    /// Appends the quoted form (see [`DateTime::quoted`]).
    pub fn write_quoted(&self, out: &mut Vec<u8>, day_pad: u8) {
        out.extend_from_slice(&self.quoted(day_pad));
    }
}

impl fmt::Display for DateTime {
    /// The quoted `date-time` form: `"17-Jul-1996 02:44:25 -0700"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let q = self.quoted(b' ');
        f.write_str(std::str::from_utf8(&q).map_err(|_| fmt::Error)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_calendar() {
        assert!(Date::new(2024, 2, 29).is_some());
        assert!(Date::new(2023, 2, 29).is_none());
        assert!(Date::new(1900, 2, 29).is_none());
        assert!(Date::new(2000, 2, 29).is_some());
        assert!(Date::new(2000, 4, 31).is_none());
        assert!(Date::new(2000, 13, 1).is_none());
        assert!(Date::new(2000, 1, 0).is_none());
    }

    #[test]
    fn epoch_round_trip() {
        let d = Date::new(1970, 1, 1).map(Date::days_since_epoch);
        assert_eq!(d, Some(0));
        for days in [-700_000i64, -1, 0, 1, 11_016, 19_782, 2_000_000] {
            let date = Date::from_days_since_epoch(days);
            assert_eq!(date.map(Date::days_since_epoch), Some(days));
        }
    }

    #[test]
    fn internaldate_format() {
        // RFC 3501 example: "17-Jul-1996 02:44:25 -0700"
        let date = Date::new(1996, 7, 17);
        let dt = date.and_then(|d| DateTime::new(d, 2, 44, 25, -7 * 60));
        let dt = dt.map(|d| d.to_string());
        assert_eq!(dt.as_deref(), Some("\"17-Jul-1996 02:44:25 -0700\""));
        let dt = DateTime::from_unix_timestamp(0, 90).map(|d| d.to_string());
        assert_eq!(dt.as_deref(), Some("\" 1-Jan-1970 01:30:00 +0130\""));
        let back = DateTime::from_unix_timestamp(837_596_665, -420);
        assert_eq!(back.map(|d| d.unix_timestamp()), Some(837_596_665));
    }

    #[test]
    fn quoted_form_matches_the_format_spec() {
        // Years 0-9999 in steps that hit every day, month and zone shape.
        let mut ts = -62_167_219_200i64; // 0000-01-01 00:00:00 UTC
        let mut checked = 0;
        while ts < 253_402_300_799 {
            for zone in [0i16, -420, 90, 1439, -1439, -59] {
                let Some(dt) = DateTime::from_unix_timestamp(ts, zone) else {
                    continue;
                };
                let month = MONTHS
                    .get(usize::from(dt.date.month) - 1)
                    .copied()
                    .unwrap_or("?");
                let z = dt.zone.unsigned_abs();
                let want = format!(
                    "\"{:>2}-{}-{:04} {:02}:{:02}:{:02} {}{:02}{:02}\"",
                    dt.date.day,
                    month,
                    dt.date.year,
                    dt.hour,
                    dt.minute,
                    dt.second,
                    if dt.zone < 0 { '-' } else { '+' },
                    z / 60,
                    z % 60
                );
                assert_eq!(dt.to_string(), want);
                let mut out = Vec::new();
                dt.write_quoted(&mut out, b'0');
                assert_eq!(out, want.replacen("\" ", "\"0", 1).into_bytes());
                checked += 1;
            }
            ts += 86_400 * 29 + 3_607;
        }
        assert!(checked > 100_000);
    }
}
