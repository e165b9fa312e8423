//! RFC 5235 `spamtest`, `spamtestplus` and `virustest`, read from the headers the site names
//! (`RunOptions::spam_header`, `RunOptions::virus_header`), as Pigeonhole's
//! `sieve_spamtest_status_header` and `sieve_virustest_status_header` do.

/// The first decimal number in `s` (`5.3`, `score=5.3`, `Yes, score=-1.2`).
fn first_number(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b.get(i).copied().unwrap_or(0);
        let neg = c == b'-' && b.get(i + 1).is_some_and(u8::is_ascii_digit);
        if c.is_ascii_digit() || neg {
            let start = i;
            i += 1;
            while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'.') {
                i += 1;
            }
            return s.get(start..i)?.trim_end_matches('.').parse().ok();
        }
        i += 1;
    }
    None
}

/// The `spamtest` value: "0" when the message was not tested (no header), else 1 (not spam)
/// to 10 (certainly spam) by the score's share of `max`; with `:percent` 0 to 100.
pub fn spam_value(header: Option<&str>, max: f64, percent: bool) -> String {
    let Some(score) = header.and_then(first_number) else {
        return "0".to_string();
    };
    let share = if max > 0.0 {
        (score / max).clamp(0.0, 1.0)
    } else {
        1.0
    };
    if percent {
        // Rounded to whole percent; value is 0..=100.
        format!("{}", (share * 100.0).round() as u32)
    } else {
        format!("{}", 1 + (share * 9.0).round() as u32)
    }
}

/// The `virustest` value (RFC 5235 section 3.3): "0" not tested, "1" clean ... "5" infected.
/// A header holding a digit 0-5 gives it; "yes"/"infected" reads as 5, any other text as 1.
pub fn virus_value(header: Option<&str>) -> String {
    let Some(h) = header.map(str::trim) else {
        return "0".to_string();
    };
    if let Some(d) = h.chars().next().filter(|c| ('0'..='5').contains(c)) {
        return d.to_string();
    }
    let l = h.to_ascii_lowercase();
    if l.starts_with("yes") || l.contains("infected") {
        "5".to_string()
    } else {
        "1".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_map_to_rfc5235_ranges() {
        assert_eq!(spam_value(None, 10.0, false), "0");
        assert_eq!(spam_value(Some("Yes, score=10.0"), 10.0, false), "10");
        assert_eq!(spam_value(Some("-3.1"), 10.0, false), "1");
        assert_eq!(spam_value(Some("5.0"), 10.0, true), "50");
        assert_eq!(spam_value(Some("25"), 10.0, true), "100");
        assert_eq!(virus_value(Some("3")), "3");
        assert_eq!(virus_value(Some("Infected: EICAR")), "5");
        assert_eq!(virus_value(None), "0");
    }
}
