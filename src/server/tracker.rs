//! Connection accounting: the total, per remote IP, and per logged-in user and IP. Each admitted
//! connection or login holds a guard that gives its slot back when dropped, so no path can leak one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// Which limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The daemon-wide cap.
    Total,
    /// The per-IP cap.
    PerIp,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    per_userip: HashMap<(String, IpAddr), usize>,
}

/// Shared counters.
#[derive(Default, Clone)]
pub struct Tracker {
    inner: Arc<Mutex<Counts>>,
}

/// Holds one connection slot.
pub struct ConnGuard {
    tracker: Tracker,
    ip: IpAddr,
}

/// Holds one user+IP login slot.
pub struct LoginGuard {
    tracker: Tracker,
    key: (String, IpAddr),
}

impl Tracker {
    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a connection from `ip` unless a cap is reached.
    pub fn connect(
        &self,
        ip: IpAddr,
        max_total: usize,
        max_per_ip: usize,
    ) -> Result<ConnGuard, Refusal> {
        let mut c = self.lock();
        if c.total >= max_total {
            return Err(Refusal::Total);
        }
        let n = c.per_ip.entry(ip).or_insert(0);
        if *n >= max_per_ip {
            return Err(Refusal::PerIp);
        }
        *n += 1;
        c.total += 1;
        Ok(ConnGuard {
            tracker: self.clone(),
            ip,
        })
    }

    /// Admits a login of `user` from `ip` unless `max` sessions of that pair are already open.
    pub fn login(&self, user: &str, ip: IpAddr, max: usize) -> Option<LoginGuard> {
        let key = (user.to_ascii_lowercase(), ip);
        let mut c = self.lock();
        let n = c.per_userip.entry(key.clone()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(LoginGuard {
            tracker: self.clone(),
            key,
        })
    }

    /// Connections currently open.
    pub fn total(&self) -> usize {
        self.lock().total
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut c = self.tracker.lock();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

impl Drop for LoginGuard {
    fn drop(&mut self) {
        let mut c = self.tracker.lock();
        if let Some(n) = c.per_userip.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                c.per_userip.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_and_given_back() {
        let t = Tracker::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let g1 = t.connect(a, 3, 2).unwrap();
        let _g2 = t.connect(a, 3, 2).unwrap();
        assert_eq!(t.connect(a, 3, 2).err(), Some(Refusal::PerIp));
        let _g3 = t.connect(b, 3, 2).unwrap();
        assert_eq!(t.connect(b, 3, 2).err(), Some(Refusal::Total));
        drop(g1);
        assert!(t.connect(b, 3, 2).is_ok());
        let l1 = t.login("Demo", a, 1).unwrap();
        assert!(t.login("demo", a, 1).is_none());
        assert!(t.login("demo", b, 1).is_some());
        drop(l1);
        assert!(t.login("demo", a, 1).is_some());
    }
}
