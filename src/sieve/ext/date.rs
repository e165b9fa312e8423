//! RFC 5260 `date` and `currentdate`: date parts of a header's date or of the current time,
//! in the zone `:zone` names, the header's own zone (`:originalzone`) or the server's.
//! The server's zone is UTC here (see docs/sieve.md: mailcove does not read the system zone
//! database; sites run in UTC).

use mail_parser::DateTime;

const PARTS: &[&str] = &[
    "year", "month", "day", "date", "julian", "hour", "minute", "second", "time", "iso8601",
    "std11", "zone", "weekday",
];

/// Whether `p` names a date part (case-insensitive).
pub fn is_date_part(p: &str) -> bool {
    PARTS.contains(&p.to_ascii_lowercase().as_str())
}

/// `+hhmm` / `-hhmm` as minutes east of UTC.
pub fn parse_zone(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 5 || !b.get(1..)?.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let h: i32 = s.get(1..3)?.parse().ok()?;
    let m: i32 = s.get(3..5)?.parse().ok()?;
    (h <= 23 && m <= 59).then_some(sign * (h * 60 + m))
}

/// A header's date value: the instant (Unix seconds) and its own zone (minutes east).
pub fn parse_header_date(value: &str) -> Option<(i64, i32)> {
    let dt = DateTime::parse_rfc822(value)?;
    if !dt.is_valid() {
        return None;
    }
    let off = (i32::from(dt.tz_hour) * 60 + i32::from(dt.tz_minute))
        * if dt.tz_before_gmt { -1 } else { 1 };
    Some((dt.to_timestamp(), off))
}

/// Date part `part` of instant `ts` seen in zone `zone` (minutes east of UTC).
pub fn date_part(ts: i64, zone: i32, part: &str) -> Option<String> {
    let local = ts + i64::from(zone) * 60;
    let dt = DateTime::from_timestamp(local);
    let days = local.div_euclid(86400);
    let z = zone_string(zone);
    Some(match part.to_ascii_lowercase().as_str() {
        "year" => format!("{:04}", dt.year),
        "month" => format!("{:02}", dt.month),
        "day" => format!("{:02}", dt.day),
        "date" => format!("{:04}-{:02}-{:02}", dt.year, dt.month, dt.day),
        // Modified Julian Day: days since 1858-11-17, which is 40587 days before 1970-01-01.
        "julian" => (days + 40587).to_string(),
        "hour" => format!("{:02}", dt.hour),
        "minute" => format!("{:02}", dt.minute),
        "second" => format!("{:02}", dt.second),
        "time" => format!("{:02}:{:02}:{:02}", dt.hour, dt.minute, dt.second),
        "iso8601" => {
            let zz = format!(
                "{}:{}",
                z.get(..3).unwrap_or("+00"),
                z.get(3..).unwrap_or("00")
            );
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{zz}",
                dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second
            )
        }
        "std11" => {
            const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            let wd = usize::try_from((days + 4).rem_euclid(7)).unwrap_or(0);
            format!(
                "{}, {:02} {} {:04} {:02}:{:02}:{:02} {z}",
                DAYS.get(wd).unwrap_or(&"Sun"),
                dt.day,
                MONTHS
                    .get(usize::from(dt.month.saturating_sub(1)))
                    .unwrap_or(&"Jan"),
                dt.year,
                dt.hour,
                dt.minute,
                dt.second
            )
        }
        "zone" => z,
        "weekday" => (days + 4).rem_euclid(7).to_string(),
        _ => return None,
    })
}

fn zone_string(zone: i32) -> String {
    let sign = if zone < 0 { '-' } else { '+' };
    let a = zone.abs();
    format!("{sign}{:02}{:02}", a / 60, a % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_a_header_date() {
        let (ts, off) = parse_header_date("Fri, 19 Nov 1982 10:10:00 -0500").expect("date");
        assert_eq!(off, -300);
        assert_eq!(date_part(ts, off, "date").as_deref(), Some("1982-11-19"));
        assert_eq!(date_part(ts, off, "time").as_deref(), Some("10:10:00"));
        assert_eq!(date_part(ts, 0, "hour").as_deref(), Some("15"));
        assert_eq!(date_part(ts, off, "weekday").as_deref(), Some("5"));
        assert_eq!(date_part(ts, off, "zone").as_deref(), Some("-0500"));
        assert_eq!(
            date_part(ts, off, "iso8601").as_deref(),
            Some("1982-11-19T10:10:00-05:00")
        );
        assert_eq!(
            date_part(ts, off, "std11").as_deref(),
            Some("Fri, 19 Nov 1982 10:10:00 -0500")
        );
        // 1982-11-19 is MJD 45292.
        assert_eq!(date_part(ts, off, "julian").as_deref(), Some("45292"));
        assert_eq!(parse_zone("+0130"), Some(90));
        assert_eq!(parse_zone("0130"), None);
    }
}
