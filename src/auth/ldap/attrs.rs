//! Dovecot's `pass_attrs` / `user_attrs` / `iterate_attrs`: which LDAP attribute becomes which
//! passdb/userdb field, e.g. `uid=user,userPassword=password` or
//! `homeDirectory=home,mailQuota=quota_rule=*:bytes=%$`.
//!
//! Each comma-separated item is `ldapAttr=field` (the value as is), `ldapAttr=field=template`
//! (the template with `%$` for the value and the lookup's `%` variables) or `=field=template`
//! (a static field set for every user found). An attribute the entry lacks sets nothing.

use std::collections::HashMap;
use std::path::PathBuf;

use super::template::{Escape, Template, Vars};
use crate::auth::UserInfo;
use crate::auth::db::DbError;

/// One item of the map.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    /// The LDAP attribute; `None` for a static `=field=template`.
    attr: Option<String>,
    /// The passdb/userdb field.
    field: String,
    /// The value template, if any.
    template: Option<Template>,
}

/// A parsed attribute map.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttrMap {
    items: Vec<Item>,
}

/// The fields one entry yielded, in map order.
pub type Fields = Vec<(String, String)>;

impl AttrMap {
    /// Parses a Dovecot attribute list.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut items = Vec::new();
        for raw in text.split(',') {
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            let (attr, rest) = raw.split_once('=').unwrap_or((raw, ""));
            let (field, template) = match rest.split_once('=') {
                Some((field, template)) => (field, Some(Template::parse(template, true)?)),
                None => (rest, None),
            };
            let attr = attr.trim();
            let field = field.trim();
            if field.is_empty() {
                return Err(format!("{raw:?}: no field name (want ldapAttr=field)"));
            }
            if !field
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(format!("{raw:?}: field name {field:?} is not a word"));
            }
            if !attr
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b';' | b'.'))
            {
                return Err(format!("{raw:?}: {attr:?} is not an LDAP attribute name"));
            }
            if attr.is_empty() && template.is_none() {
                return Err(format!(
                    "{raw:?}: a static field needs a value (=field=value)"
                ));
            }
            items.push(Item {
                attr: (!attr.is_empty()).then(|| attr.to_owned()),
                field: field.to_owned(),
                template,
            });
        }
        Ok(AttrMap { items })
    }

    /// The LDAP attributes a search must return (at least one: `1.1`, RFC 4511's "no
    /// attributes", when the map names none).
    pub fn attributes(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for item in &self.items {
            if let Some(attr) = &item.attr
                && !out.iter().any(|a| a.eq_ignore_ascii_case(attr))
            {
                out.push(attr.clone());
            }
        }
        if out.is_empty() {
            out.push("1.1".to_owned());
        }
        out
    }

    /// Whether the map sets `field`.
    pub fn has_field(&self, field: &str) -> bool {
        self.items.iter().any(|i| i.field == field)
    }

    /// Applies the map to an entry's attributes (names compared case-insensitively, as LDAP
    /// does). Several values of one attribute are joined with `,` (Dovecot's separator); for
    /// `user` and `password` only the first value is used.
    pub fn apply(
        &self,
        entry: &HashMap<String, Vec<String>>,
        vars: &Vars<'_>,
    ) -> Result<Fields, DbError> {
        let mut out = Vec::new();
        for item in &self.items {
            let value = match &item.attr {
                None => String::new(),
                Some(attr) => {
                    let Some(values) = entry
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
                        .map(|(_, v)| v)
                        .filter(|v| !v.is_empty())
                    else {
                        continue;
                    };
                    if matches!(item.field.as_str(), "user" | "password") {
                        values[0].clone()
                    } else {
                        values.join(",")
                    }
                }
            };
            let value = match &item.template {
                None => value,
                Some(t) => t.expand(vars, Some(&value), Escape::None).ok_or_else(|| {
                    DbError::Config(format!("field {} longer than the limit", item.field))
                })?,
            };
            out.push((item.field.clone(), value));
        }
        Ok(out)
    }
}

/// Builds the user from mapped fields: `user` renames, `home`/`uid`/`gid` fill their places,
/// `password` is returned apart, every other field is an extra field (`nologin`,
/// `allow_nets`, `mail`, `quota_rule`, `userdb_*`, ...).
pub fn build_user(
    default_name: &str,
    fields: Fields,
) -> Result<(UserInfo, Option<String>), DbError> {
    let mut info = UserInfo {
        name: default_name.to_owned(),
        uid: None,
        gid: None,
        home: None,
        extra: Vec::new(),
    };
    let mut password = None;
    for (field, value) in fields {
        match field.as_str() {
            "user" if !value.is_empty() => info.name = value,
            "user" => {}
            "password" => password = Some(value),
            "home" => info.home = Some(PathBuf::from(value)),
            "uid" => info.uid = Some(parse_id(&field, &value)?),
            "gid" => info.gid = Some(parse_id(&field, &value)?),
            _ => info.extra.push((field, Some(value))),
        }
    }
    Ok((info, password))
}

fn parse_id(field: &str, value: &str) -> Result<u32, DbError> {
    value
        .trim()
        .parse()
        .map_err(|_| DbError::Config(format!("{field} {value:?} is not a number")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars<'static> {
        Vars {
            user: "ann@example.org",
            remote: None,
            local: None,
            service: "imap",
        }
    }

    #[test]
    fn parses_dovecot_lists() {
        let m = AttrMap::parse(
            "homeDirectory=home, uidNumber=uid,gidNumber=gid,mailQuota=quota_rule=*:bytes=%$,=mail=maildir:~/Maildir",
        )
        .unwrap();
        assert_eq!(
            m.attributes(),
            ["homeDirectory", "uidNumber", "gidNumber", "mailQuota"]
        );
        assert!(m.has_field("quota_rule"));
        assert!(AttrMap::parse("uid").is_err());
        assert!(AttrMap::parse("=nologin").is_err());
        assert!(AttrMap::parse("a b=user").is_err());
        assert!(AttrMap::parse("uid=us er").is_err());
        assert!(AttrMap::parse("uid=x=%q").is_err());
        assert_eq!(AttrMap::parse("").unwrap().attributes(), ["1.1"]);
    }

    #[test]
    fn applies_values_templates_and_statics() {
        let m = AttrMap::parse(
            "uid=user,userPassword=password,homeDirectory=home,uidNumber=uid,mailQuota=quota_rule=*:bytes=%$,=mail=maildir:/m/%d/%n,missing=absent,mailHost=allow_nets",
        )
        .unwrap();
        let mut entry = HashMap::new();
        entry.insert("UID".to_owned(), vec!["ann".to_owned()]);
        entry.insert(
            "userpassword".to_owned(),
            vec!["{SSHA}x".to_owned(), "{CRYPT}y".to_owned()],
        );
        entry.insert("homeDirectory".to_owned(), vec!["/home/ann".to_owned()]);
        entry.insert("uidNumber".to_owned(), vec!["1001".to_owned()]);
        entry.insert("mailQuota".to_owned(), vec!["1048576".to_owned()]);
        entry.insert(
            "mailHost".to_owned(),
            vec!["10.0.0.0/8".to_owned(), "::1".to_owned()],
        );
        let fields = m.apply(&entry, &vars()).unwrap();
        let (info, password) = build_user("ann@example.org", fields).unwrap();
        assert_eq!(password.as_deref(), Some("{SSHA}x"));
        assert_eq!(info.name, "ann");
        assert_eq!(info.uid, Some(1001));
        assert_eq!(info.home, Some(PathBuf::from("/home/ann")));
        assert_eq!(info.field("quota_rule"), Some("*:bytes=1048576"));
        assert_eq!(info.field("mail"), Some("maildir:/m/example.org/ann"));
        assert_eq!(info.field("allow_nets"), Some("10.0.0.0/8,::1"));
        assert_eq!(info.field("absent"), None);

        let mut bad = HashMap::new();
        bad.insert("uidNumber".to_owned(), vec!["x".to_owned()]);
        let fields = m.apply(&bad, &vars()).unwrap();
        assert!(matches!(build_user("a", fields), Err(DbError::Config(_))));
    }
}
