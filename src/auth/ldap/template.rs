//! Dovecot's `%` variables in LDAP filters, DNs and attribute templates, parsed once at start
//! and expanded per lookup with the escaping of where the value goes: RFC 4515 for a filter,
//! RFC 4514 for a DN, none for a mapped field value.
//!
//! Short forms `%u %n %d %r %l %s`, long forms `%{user} %{username} %{domain} %{remote_ip}
//! %{rip} %{local_ip} %{lip} %{service}`, Dovecot 2.3's case modifiers `%Lu` / `%Un` /
//! `%L{user}`, `%%` for a percent, and `%$` (the LDAP attribute's value, only in
//! `pass_attrs`/`user_attrs` templates).

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::limits::LDAP_MAX_EXPANDED_LEN;

/// A variable a template refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    /// `%u`: the user name as given.
    User,
    /// `%n`: the part before the first `@`.
    Name,
    /// `%d`: the part after the first `@` (empty without one).
    Domain,
    /// `%r`: the client's address.
    Remote,
    /// `%l`: the local address.
    Local,
    /// `%s`: the service.
    Service,
    /// `%$`: the attribute's value.
    Value,
}

/// Dovecot's `L`/`U` modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Var(Var, Case),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// The values of one lookup.
#[derive(Debug, Clone, Copy)]
pub struct Vars<'a> {
    /// `%u`.
    pub user: &'a str,
    /// `%r`.
    pub remote: Option<IpAddr>,
    /// `%l`.
    pub local: Option<IpAddr>,
    /// `%s`.
    pub service: &'a str,
}

/// How substituted values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// RFC 4515 filter assertion value.
    Filter,
    /// RFC 4514 attribute value in a DN.
    Dn,
    /// Inserted as is (mapped field values).
    None,
}

impl Template {
    /// Parses `text`; `%$` is accepted only when `allow_value`.
    pub fn parse(text: &str, allow_value: bool) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                lit.push(c);
                continue;
            }
            let mut case = Case::Keep;
            let mut next = chars.next();
            match next {
                Some('%') => {
                    lit.push('%');
                    continue;
                }
                Some('L') => {
                    case = Case::Lower;
                    next = chars.next();
                }
                Some('U') => {
                    case = Case::Upper;
                    next = chars.next();
                }
                _ => {}
            }
            let var = match next {
                Some('u') => Var::User,
                Some('n') => Var::Name,
                Some('d') => Var::Domain,
                Some('r') => Var::Remote,
                Some('l') => Var::Local,
                Some('s') => Var::Service,
                Some('$') => Var::Value,
                Some('{') => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(format!("unterminated %{{ in {text:?}")),
                        }
                    }
                    match name.as_str() {
                        "user" => Var::User,
                        "username" => Var::Name,
                        "domain" => Var::Domain,
                        "remote_ip" | "rip" => Var::Remote,
                        "local_ip" | "lip" => Var::Local,
                        "service" => Var::Service,
                        _ => return Err(format!("unknown variable %{{{name}}} in {text:?}")),
                    }
                }
                Some(other) => return Err(format!("unknown variable %{other} in {text:?}")),
                None => return Err(format!("lone % at the end of {text:?}")),
            };
            if var == Var::Value && !allow_value {
                return Err(format!(
                    "%$ is only allowed in attribute templates: {text:?}"
                ));
            }
            if !lit.is_empty() {
                pieces.push(Piece::Lit(std::mem::take(&mut lit)));
            }
            pieces.push(Piece::Var(var, case));
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        Ok(Template { pieces })
    }

    /// Whether the template has no text at all.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Expands the template; `value` is `%$`. `None` when the result would be longer than
    /// `limits::LDAP_MAX_EXPANDED_LEN`.
    pub fn expand(&self, vars: &Vars<'_>, value: Option<&str>, escape: Escape) -> Option<String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Lit(s) => out.push_str(s),
                Piece::Var(var, case) => {
                    let raw = var_value(*var, vars, value);
                    let cased = match case {
                        Case::Keep => raw,
                        Case::Lower => raw.to_lowercase(),
                        Case::Upper => raw.to_uppercase(),
                    };
                    match escape {
                        Escape::Filter => escape_filter_value(&cased, &mut out),
                        Escape::Dn => escape_dn_value(&cased, &mut out),
                        Escape::None => out.push_str(&cased),
                    }
                }
            }
            if out.len() > LDAP_MAX_EXPANDED_LEN {
                return None;
            }
        }
        Some(out)
    }
}

fn var_value(var: Var, vars: &Vars<'_>, value: Option<&str>) -> String {
    let ip = |ip: Option<IpAddr>| {
        ip.map(|ip| ip.to_canonical().to_string())
            .unwrap_or_default()
    };
    match var {
        Var::User => vars.user.to_owned(),
        Var::Name => vars.user.split('@').next().unwrap_or("").to_owned(),
        Var::Domain => vars
            .user
            .split_once('@')
            .map(|(_, d)| d)
            .unwrap_or("")
            .to_owned(),
        Var::Remote => ip(vars.remote),
        Var::Local => ip(vars.local),
        Var::Service => vars.service.to_owned(),
        Var::Value => value.unwrap_or("").to_owned(),
    }
}

/// RFC 4515 section 3: in an assertion value `*`, `(`, `)`, `\` and NUL must be written `\xx`.
/// Every byte outside printable ASCII is escaped too, so the filter text stays ASCII whatever
/// the client sent (RFC 4515 allows UTF-8 there, but escaping is always valid and leaves no
/// room for a server or library that mishandles it).
pub fn escape_filter_value(value: &str, out: &mut String) {
    for &b in value.as_bytes() {
        if matches!(b, b'*' | b'(' | b')' | b'\\') || !(0x20..0x7f).contains(&b) {
            let _ = write!(out, "\\{b:02x}");
        } else {
            out.push(char::from(b));
        }
    }
}

/// RFC 4514 section 2.4: in an attribute value of a DN, `" + , ; < > \` and NUL, a leading
/// space or `#` and a trailing space are escaped (`=` too, as OpenLDAP's own `ldap_dn2str`).
/// Control bytes are hex-escaped; other UTF-8 stays as it is (it is valid in a DN string).
pub fn escape_dn_value(value: &str, out: &mut String) {
    let len = value.len();
    for (i, c) in value.char_indices() {
        let special = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '=')
            || (i == 0 && matches!(c, ' ' | '#'))
            || (i + 1 == len && c == ' ');
        if special || (c as u32) < 0x20 || c == '\u{7f}' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "\\{b:02x}");
            }
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(user: &str) -> Vars<'_> {
        Vars {
            user,
            remote: Some("::ffff:192.0.2.7".parse().unwrap()),
            local: Some("127.0.0.1".parse().unwrap()),
            service: "imap",
        }
    }

    fn filter(t: &str, user: &str) -> String {
        Template::parse(t, false)
            .unwrap()
            .expand(&vars(user), None, Escape::Filter)
            .unwrap()
    }

    #[test]
    fn variables_short_and_long() {
        let t = "%u|%n|%d|%r|%l|%s|%{user}|%{username}|%{domain}|%{rip}|%{lip}|%{service}|%%";
        assert_eq!(
            filter(t, "Ann@Example.org"),
            "Ann@Example.org|Ann|Example.org|192.0.2.7|127.0.0.1|imap|\
             Ann@Example.org|Ann|Example.org|192.0.2.7|127.0.0.1|imap|%"
        );
        assert_eq!(
            filter("%Lu %Un %d.", "Ann@Example.org"),
            "ann@example.org ANN Example.org."
        );
        assert_eq!(filter("(uid=%n)(d=%d)", "bare"), "(uid=bare)(d=)");
    }

    #[test]
    fn filter_values_are_escaped_per_rfc4515() {
        // RFC 4515 section 4's examples: `*` -> \2a, `(` -> \28, `)` -> \29, `\` -> \5c.
        assert_eq!(filter("(uid=%u)", "*"), "(uid=\\2a)");
        assert_eq!(filter("(uid=%u)", ")(uid=*"), "(uid=\\29\\28uid=\\2a)");
        assert_eq!(filter("(uid=%u)", "a\\b"), "(uid=a\\5cb)");
        assert_eq!(filter("(uid=%u)", "a\0b"), "(uid=a\\00b)");
        // Non-ASCII as its UTF-8 bytes: RFC 4515's "Lu\c4\8di\c4\87" example.
        assert_eq!(
            filter("(sn=%u)", "Lu\u{10d}i\u{107}"),
            "(sn=Lu\\c4\\8di\\c4\\87)"
        );
        // The template's own text is not escaped.
        assert_eq!(filter("(&(a=*)(uid=%u))", "x"), "(&(a=*)(uid=x))");
    }

    #[test]
    fn dn_values_are_escaped_per_rfc4514() {
        let t = Template::parse("uid=%n,ou=people", false).unwrap();
        let dn = |u: &str| t.expand(&vars(u), None, Escape::Dn).unwrap();
        assert_eq!(dn("ann"), "uid=ann,ou=people");
        assert_eq!(dn("a,ou=admins"), "uid=a\\2cou\\3dadmins,ou=people");
        assert_eq!(dn(" #x "), "uid=\\20#x\\20,ou=people");
        assert_eq!(dn("#x+y"), "uid=\\23x\\2by,ou=people");
        assert_eq!(dn("\u{e9}"), "uid=\u{e9},ou=people");
    }

    #[test]
    fn value_templates_and_errors() {
        let t = Template::parse("*:bytes=%$", true).unwrap();
        assert_eq!(
            t.expand(&vars("a"), Some("1024"), Escape::None).unwrap(),
            "*:bytes=1024"
        );
        assert!(Template::parse("%$", false).is_err());
        assert!(Template::parse("%x", false).is_err());
        assert!(Template::parse("%{nope}", false).is_err());
        assert!(Template::parse("%{user", false).is_err());
        assert!(Template::parse("abc%", false).is_err());
        let long = "x".repeat(LDAP_MAX_EXPANDED_LEN);
        let t = Template::parse("%u", false).unwrap();
        assert!(t.expand(&vars(&long), None, Escape::None).is_some());
        let t = Template::parse("a%u", false).unwrap();
        assert!(t.expand(&vars(&long), None, Escape::None).is_none());
    }
}
