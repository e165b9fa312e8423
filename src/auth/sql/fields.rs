//! A result row's columns as Dovecot reads them, turned into [`PassRecord`] and [`UserInfo`].
//!
//! * `password` is the stored hash (bare hashes get `default_pass_scheme` as their `{SCHEME}`).
//! * `user` renames the user (the name as stored); `username` plus `domain` does too
//!   (`username@domain`), as Dovecot's default queries return them.
//! * `home`, `uid` and `gid` (or `userdb_home`, ... from a password query, Dovecot's prefetch)
//!   fill the fields the users file has; every other column becomes an extra field under its
//!   column name (`mail`, `quota_rule`, `userdb_quota_rule`, `nologin`, `allow_nets`, ...).
//! * A NULL column is no field at all, as in Dovecot: `nologin` is set by any non-NULL value.

use std::path::PathBuf;

use super::super::UserInfo;
use super::super::db::{DbError, PassRecord};

/// One row: lower-cased column names and their values (None for NULL).
pub type Row = Vec<(String, Option<String>)>;

fn name_of(row: &Row, asked: &str) -> String {
    let get = |k: &str| {
        row.iter()
            .find(|(c, v)| c == k && v.as_deref().is_some_and(|v| !v.is_empty()))
            .and_then(|(_, v)| v.clone())
    };
    if let Some(u) = get("user") {
        return u;
    }
    match (get("username"), get("domain")) {
        (Some(u), Some(d)) => format!("{u}@{d}"),
        (Some(u), None) => u,
        _ => asked.to_owned(),
    }
}

fn id(column: &str, value: &str) -> Result<u32, DbError> {
    if let Ok(n) = value.trim().parse::<u32>() {
        return Ok(n);
    }
    let found = if column.ends_with("uid") {
        nix::unistd::User::from_name(value)
            .ok()
            .flatten()
            .map(|u| u.uid.as_raw())
    } else {
        nix::unistd::Group::from_name(value)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw())
    };
    found
        .ok_or_else(|| DbError::Config(format!("{column} {value:?} is not a number or known name")))
}

/// The userdb fields of `row` (prefix `userdb_` accepted when `prefixed`).
fn user_info(row: Row, asked: &str, from_passdb: bool) -> Result<UserInfo, DbError> {
    let mut info = UserInfo {
        name: name_of(&row, asked),
        uid: None,
        gid: None,
        home: None,
        extra: Vec::new(),
    };
    for (column, value) in row {
        let Some(value) = value else { continue };
        let field = if from_passdb {
            column.strip_prefix("userdb_")
        } else {
            Some(column.strip_prefix("userdb_").unwrap_or(&column))
        };
        match (field, column.as_str()) {
            (_, "password" | "user" | "username" | "domain") => {}
            (Some("home"), _) => info.home = Some(PathBuf::from(value)),
            (Some("uid"), _) => info.uid = Some(id("uid", &value)?),
            (Some("gid"), _) => info.gid = Some(id("gid", &value)?),
            _ => info.extra.push((column, Some(value))),
        }
    }
    Ok(info)
}

/// The record of a password query's row.
pub fn pass_record(row: Row, asked: &str, default_scheme: &str) -> Result<PassRecord, DbError> {
    let password = row
        .iter()
        .find(|(c, _)| c == "password")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| DbError::Config("password_query returned no password column".into()))?;
    // NULL (or empty) is a locked account: no password logs in.
    let password = match password.filter(|p| !p.is_empty()) {
        Some(p) if p.starts_with('{') => p,
        Some(p) => format!("{{{default_scheme}}}{p}"),
        None => "{CRYPT}*".to_owned(),
    };
    Ok(PassRecord {
        info: user_info(row, asked, true)?,
        password: Some(password),
    })
}

/// The user of a user query's row.
pub fn user_record(row: Row, asked: &str) -> Result<UserInfo, DbError> {
    user_info(row, asked, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cols: &[(&str, Option<&str>)]) -> Row {
        cols.iter()
            .map(|(c, v)| (c.to_string(), v.map(str::to_string)))
            .collect()
    }

    #[test]
    fn password_rows() {
        let r = pass_record(
            row(&[
                ("user", Some("Alice@example.org")),
                ("password", Some("$6$salt$hash")),
                ("nologin", None),
                ("allow_nets", Some("10.0.0.0/8")),
                ("userdb_home", Some("/var/vmail/alice")),
                ("userdb_quota_rule", Some("*:storage=1G")),
            ]),
            "alice@example.org",
            "CRYPT",
        )
        .unwrap();
        assert_eq!(r.password.as_deref(), Some("{CRYPT}$6$salt$hash"));
        assert_eq!(r.info.name, "Alice@example.org");
        assert_eq!(r.info.home, Some(PathBuf::from("/var/vmail/alice")));
        assert_eq!(
            r.info.extra,
            vec![
                ("allow_nets".to_string(), Some("10.0.0.0/8".to_string())),
                (
                    "userdb_quota_rule".to_string(),
                    Some("*:storage=1G".to_string())
                )
            ]
        );
        assert_eq!(r.info.field("quota_rule"), Some("*:storage=1G"));
        let locked = pass_record(row(&[("password", None)]), "bob", "CRYPT").unwrap();
        assert_eq!(locked.password.as_deref(), Some("{CRYPT}*"));
        assert_eq!(locked.info.name, "bob");
        let named = pass_record(
            row(&[
                ("username", Some("carol")),
                ("domain", Some("example.org")),
                ("password", Some("{PLAIN}x")),
            ]),
            "Carol@Example.org",
            "CRYPT",
        )
        .unwrap();
        assert_eq!(named.info.name, "carol@example.org");
        assert_eq!(named.password.as_deref(), Some("{PLAIN}x"));
        assert!(pass_record(row(&[("user", Some("x"))]), "x", "CRYPT").is_err());
    }

    #[test]
    fn user_rows() {
        let u = user_record(
            row(&[
                ("home", Some("/srv/mail/d/u")),
                ("uid", Some("5000")),
                ("gid", Some("5000")),
                ("mail", Some("maildir:~/Maildir")),
                ("quota_rule", Some("*:storage=10M")),
                ("nologin", Some("Y")),
            ]),
            "u@d",
        )
        .unwrap();
        assert_eq!(u.name, "u@d");
        assert_eq!((u.uid, u.gid), (Some(5000), Some(5000)));
        assert_eq!(u.home, Some(PathBuf::from("/srv/mail/d/u")));
        assert_eq!(u.field("mail"), Some("maildir:~/Maildir"));
        assert_eq!(u.field("quota_rule"), Some("*:storage=10M"));
        assert_eq!(u.field("nologin"), Some("Y"));
        assert!(user_record(row(&[("uid", Some("no-such-user-xyz"))]), "u").is_err());
    }
}
