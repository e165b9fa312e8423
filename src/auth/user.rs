//! A user as the users file describes it, its extra fields, and the passdb fields that restrict
//! where a correct password may log in from.

use std::net::IpAddr;
use std::path::PathBuf;

/// A user as the users file describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The name as written in the file (use it, not what the client typed).
    pub name: String,
    /// uid field, if set.
    pub uid: Option<u32>,
    /// gid field, if set.
    pub gid: Option<u32>,
    /// home field, if set.
    pub home: Option<PathBuf>,
    /// Extra fields in file order: `key=value` as `(key, Some(value))`, bare
    /// `key` as `(key, None)`; keys keep their `userdb_` prefix.
    pub extra: Vec<(String, Option<String>)>,
}

impl UserInfo {
    /// The value of extra field `key`, preferring `userdb_<key>` over `key`
    /// (Dovecot's userdb fields); a bare key yields `Some("")`.
    pub fn field(&self, key: &str) -> Option<&str> {
        let userdb_key = format!("userdb_{key}");
        let find = |k: &str| {
            self.extra
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.as_deref().unwrap_or(""))
        };
        find(&userdb_key).or_else(|| find(key))
    }
}

/// Dovecot passdb extra fields that restrict a correct login: `nologin`
/// and `allow_nets`. Unparsable nets deny (fail closed).
pub(super) fn check_passdb_fields(info: &UserInfo, remote: IpAddr) -> Result<(), &'static str> {
    if info.extra.iter().any(|(k, _)| k == "nologin") {
        return Err("nologin set for user");
    }
    if let Some((_, nets)) = info.extra.iter().find(|(k, _)| k == "allow_nets") {
        let remote = remote.to_canonical();
        let nets = nets.as_deref().unwrap_or("");
        if !nets
            .split(',')
            .any(|net| ip_in_net(remote, net.trim()).unwrap_or(false))
        {
            return Err("remote address not in allow_nets");
        }
    }
    Ok(())
}

/// Whether `ip` is in `net` (`addr` or `addr/prefix`); `None` if unparsable.
fn ip_in_net(ip: IpAddr, net: &str) -> Option<bool> {
    let (addr, prefix) = match net.split_once('/') {
        Some((a, p)) => (a, Some(p.parse::<u32>().ok()?)),
        None => (net, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    match (ip, addr.to_canonical()) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let bits = prefix.unwrap_or(32);
            if bits > 32 {
                return None;
            }
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            Some(u32::from(ip) & mask == u32::from(net) & mask)
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let bits = prefix.unwrap_or(128);
            if bits > 128 {
                return None;
            }
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            Some(u128::from(ip) & mask == u128::from(net) & mask)
        }
        _ => Some(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nets() {
        let v4: IpAddr = "192.0.2.9".parse().unwrap();
        assert_eq!(ip_in_net(v4, "192.0.2.0/24"), Some(true));
        assert_eq!(ip_in_net(v4, "192.0.3.0/24"), Some(false));
        assert_eq!(ip_in_net(v4, "192.0.2.9"), Some(true));
        assert_eq!(ip_in_net(v4, "0.0.0.0/0"), Some(true));
        assert_eq!(ip_in_net(v4, "::/0"), Some(false));
        assert_eq!(ip_in_net(v4, "192.0.2.0/33"), None);
        assert_eq!(ip_in_net(v4, "nonsense"), None);
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(ip_in_net(v6, "2001:db8::/32"), Some(true));
        assert_eq!(ip_in_net(v6, "2001:db9::/32"), Some(false));
    }

    #[test]
    fn passdb_fields_restrict_correct_logins() {
        let mut info = UserInfo {
            name: "a".into(),
            uid: None,
            gid: None,
            home: None,
            extra: vec![("allow_nets".into(), Some("10.0.0.0/8,::1".into()))],
        };
        assert!(check_passdb_fields(&info, "10.1.2.3".parse().unwrap()).is_ok());
        assert!(check_passdb_fields(&info, "::ffff:10.1.2.3".parse().unwrap()).is_ok());
        assert!(check_passdb_fields(&info, "::1".parse().unwrap()).is_ok());
        assert!(check_passdb_fields(&info, "192.0.2.1".parse().unwrap()).is_err());
        info.extra = vec![("nologin".into(), None)];
        assert!(check_passdb_fields(&info, "10.1.2.3".parse().unwrap()).is_err());
    }

    #[test]
    fn field_prefers_userdb_prefix() {
        let info = UserInfo {
            name: "a".into(),
            uid: None,
            gid: None,
            home: None,
            extra: vec![
                ("quota_rule".into(), Some("passdb".into())),
                ("userdb_quota_rule".into(), Some("*:storage=1G".into())),
                ("flag".into(), None),
            ],
        };
        assert_eq!(info.field("quota_rule"), Some("*:storage=1G"));
        assert_eq!(info.field("flag"), Some(""));
        assert_eq!(info.field("missing"), None);
    }
}
