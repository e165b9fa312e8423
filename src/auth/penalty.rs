//! The failed-login penalty, per remote address, as Dovecot's auth penalty.
//!
//! Each failed login from an address makes the answer to that failure wait
//! longer: `failure_delay`, doubled for each consecutive failure, capped at
//! `failure_delay_max`. A success resets the address; an address without a
//! failure for `AUTH_PENALTY_FORGET_SECS` is forgotten. The table holds at
//! most `MAX_AUTH_PENALTY_ENTRIES` addresses: when full, forgotten entries
//! are purged, then the least recently failed one is evicted.
//!
//! IPv6 addresses are counted per /64: a single host usually owns a whole
//! /64 and could otherwise rotate addresses to escape the penalty.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::limits::{AUTH_PENALTY_FORGET_SECS, MAX_AUTH_PENALTY_ENTRIES};

/// The delay after the `failures`-th consecutive failure (1-based):
/// `base * 2^(failures-1)`, capped at `max`; zero for no failure.
pub fn penalty_delay(base: Duration, max: Duration, failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let shift = failures.saturating_sub(1).min(31);
    base.checked_mul(1u32 << shift).unwrap_or(max).min(max)
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
}

/// Consecutive-failure counts per remote address (bounded).
#[derive(Debug)]
pub(crate) struct PenaltyTable {
    records: Mutex<HashMap<IpAddr, Record>>,
    capacity: usize,
    forget_after: Duration,
}

impl Default for PenaltyTable {
    fn default() -> Self {
        Self::with_capacity(MAX_AUTH_PENALTY_ENTRIES)
    }
}

impl PenaltyTable {
    /// A table remembering at most `capacity` addresses.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            records: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            forget_after: Duration::from_secs(AUTH_PENALTY_FORGET_SECS),
        }
    }

    /// Records a failure from `ip` at `now`; returns the consecutive count.
    pub(crate) fn record_failure(&self, ip: IpAddr, now: Instant) -> u32 {
        let key = penalty_key(ip);
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if !records.contains_key(&key) && records.len() >= self.capacity {
            let forget = self.forget_after;
            records.retain(|_, r| now.saturating_duration_since(r.last) < forget);
            if records.len() >= self.capacity
                && let Some(oldest) = records.iter().min_by_key(|(_, r)| r.last).map(|(k, _)| *k)
            {
                records.remove(&oldest);
            }
        }
        let record = records.entry(key).or_insert(Record {
            failures: 0,
            last: now,
        });
        if now.saturating_duration_since(record.last) >= self.forget_after {
            record.failures = 0;
        }
        record.failures = record.failures.saturating_add(1);
        record.last = now;
        record.failures
    }

    /// Forgets `ip`'s failures after a successful login.
    pub(crate) fn record_success(&self, ip: IpAddr) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.remove(&penalty_key(ip));
    }

    /// Current consecutive failures of `ip` (0 once forgotten).
    pub(crate) fn failures(&self, ip: IpAddr, now: Instant) -> u32 {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records
            .get(&penalty_key(ip))
            .filter(|r| now.saturating_duration_since(r.last) < self.forget_after)
            .map_or(0, |r| r.failures)
    }

    /// Number of addresses remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.records.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// The address a penalty is counted against: IPv4 as is, IPv6 by its /64,
/// IPv4-mapped IPv6 as the IPv4 address.
pub(crate) fn penalty_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn delay_doubles_and_caps() {
        let base = Duration::from_millis(500);
        let max = Duration::from_secs(5);
        assert_eq!(penalty_delay(base, max, 0), Duration::ZERO);
        assert_eq!(penalty_delay(base, max, 1), Duration::from_millis(500));
        assert_eq!(penalty_delay(base, max, 2), Duration::from_millis(1000));
        assert_eq!(penalty_delay(base, max, 3), Duration::from_millis(2000));
        assert_eq!(penalty_delay(base, max, 4), Duration::from_millis(4000));
        assert_eq!(penalty_delay(base, max, 5), max);
        assert_eq!(penalty_delay(base, max, 40), max);
        assert_eq!(penalty_delay(base, max, u32::MAX), max);
        assert_eq!(
            penalty_delay(Duration::from_secs(u64::MAX / 2), max, 3),
            max
        );
    }

    #[test]
    fn counts_reset_on_success_and_after_idle_hour() {
        let t = PenaltyTable::default();
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let now = Instant::now();
        assert_eq!(t.record_failure(ip, now), 1);
        assert_eq!(t.record_failure(ip, now), 2);
        assert_eq!(t.failures(ip, now), 2);
        t.record_success(ip);
        assert_eq!(t.failures(ip, now), 0);
        assert_eq!(t.record_failure(ip, now), 1);
        let later = now + Duration::from_secs(AUTH_PENALTY_FORGET_SECS);
        assert_eq!(t.failures(ip, later), 0);
        assert_eq!(t.record_failure(ip, later), 1);
    }

    #[test]
    fn ipv6_counted_per_64_and_mapped_v4_as_v4() {
        let t = PenaltyTable::default();
        let now = Instant::now();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        t.record_failure(a, now);
        assert_eq!(t.record_failure(b, now), 2);
        assert_eq!(t.failures(other, now), 0);
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        t.record_failure(mapped, now);
        assert_eq!(t.failures(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)), now), 1);
    }

    #[test]
    fn table_is_bounded_and_evicts_oldest() {
        let t = PenaltyTable::with_capacity(3);
        let now = Instant::now();
        for i in 0..3u8 {
            t.record_failure(
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)),
                now + Duration::from_secs(u64::from(i)),
            );
        }
        let newcomer = IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1));
        t.record_failure(newcomer, now + Duration::from_secs(10));
        assert_eq!(t.len(), 3);
        assert_eq!(t.failures(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)), now), 0);
        assert_eq!(t.failures(newcomer, now + Duration::from_secs(10)), 1);
        assert_eq!(t.failures(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), now), 1);
    }
}
