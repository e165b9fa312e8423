//! RFC 5230 `vacation` and RFC 6131 `vacation-seconds`: the default handle and the clamped
//! response period. Whether a reply is sent (RFC 3834) and the sending belong to delivery.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::limits::{
    SIEVE_VACATION_DEFAULT_DAYS, SIEVE_VACATION_MAX_DAYS, SIEVE_VACATION_MIN_DAYS,
    SIEVE_VACATION_MIN_SECONDS,
};

const DAY: u64 = 24 * 3600;

/// The period: `:days` clamped to the site's range, `:seconds` clamped between
/// [`SIEVE_VACATION_MIN_SECONDS`] and the maximum days, the default 7 days.
pub fn period(days: Option<u64>, seconds: Option<u64>) -> Duration {
    let max = SIEVE_VACATION_MAX_DAYS * DAY;
    let secs = match (days, seconds) {
        (_, Some(s)) => s.clamp(SIEVE_VACATION_MIN_SECONDS, max),
        (Some(d), None) => d.clamp(SIEVE_VACATION_MIN_DAYS, SIEVE_VACATION_MAX_DAYS) * DAY,
        (None, None) => SIEVE_VACATION_DEFAULT_DAYS * DAY,
    };
    Duration::from_secs(secs)
}

/// The handle when `:handle` is not given (RFC 5230 section 4.2: vacation actions that differ
/// in `:subject`, `:from`, `:mime` or the reason are different responses): a digest of them.
pub fn default_handle(
    reason: &str,
    subject: Option<&str>,
    from: Option<&str>,
    mime: bool,
) -> String {
    let mut h = Sha256::new();
    for part in [reason, subject.unwrap_or(""), from.unwrap_or("")] {
        h.update(part.as_bytes());
        h.update(b"\0");
    }
    h.update(if mime { b"1" } else { b"0" });
    let d = h.finalize();
    let mut out = String::from("default-");
    for b in d.as_slice().iter().take(16) {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_clamped() {
        assert_eq!(period(None, None), Duration::from_secs(7 * DAY));
        assert_eq!(period(Some(0), None), Duration::from_secs(DAY));
        assert_eq!(period(Some(1000), None), Duration::from_secs(90 * DAY));
        assert_eq!(period(None, Some(1)), Duration::from_secs(60));
        assert_eq!(period(None, Some(3600)), Duration::from_secs(3600));
        assert_ne!(
            default_handle("a", None, None, false),
            default_handle("a", Some("s"), None, false)
        );
    }
}
