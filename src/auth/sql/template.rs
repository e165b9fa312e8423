//! Dovecot's SQL query templates made safe: every variable (`%u`, `%{user}`, ...) becomes a bound
//! parameter, never text spliced into the SQL.
//!
//! Dovecot expands variables into the query text and its queries therefore quote them:
//! `WHERE username = '%u'`. Here a quoted string literal that contains variables becomes ONE
//! parameter whose value is the literal with the variables expanded (`'%n@%d'` binds
//! `"alice@example.org"`), and an unquoted variable becomes one parameter too. A user name like
//! `x' OR '1'='1` is then just a user name: it never reaches the SQL parser.
//!
//! Literals without variables are copied unchanged (`active = '1'`), except that `%%` stands
//! for `%` everywhere, as in Dovecot. Backslashes inside quoted literals are refused: MySQL reads
//! them as escapes and PostgreSQL and SQLite do not, so their meaning would differ per database.

use std::fmt::Write as _;

use super::super::db::LookupRequest;
use crate::config::SqlDriver;

/// A variable of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    /// `%u`, `%{user}`: the user name as given.
    User,
    /// `%n`, `%{username}`: the part before the first `@`.
    Username,
    /// `%d`, `%{domain}`: the part after the first `@`, empty without one.
    Domain,
    /// `%r`, `%{remote_ip}`: the client's address, empty without one.
    RemoteIp,
    /// `%l`, `%{local_ip}`: the address the client connected to.
    LocalIp,
    /// `%s`, `%{service}`: imap, pop3, lmtp, deliver, admin.
    Service,
}

/// A piece of one parameter's value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// The variable, lower-cased when `%L` was used.
    Var(Var, bool),
}

/// A parsed query: SQL text pieces with one parameter between each two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// `params.len() + 1` pieces of SQL.
    sql: Vec<String>,
    params: Vec<Vec<Part>>,
}

impl Template {
    /// Parses a Dovecot query; the error names what is wrong.
    pub fn parse(query: &str) -> Result<Self, String> {
        let mut sql = vec![String::new()];
        let mut params: Vec<Vec<Part>> = Vec::new();
        let mut chars = query.char_indices().peekable();
        while let Some((_, c)) = chars.next() {
            match c {
                '\'' => {
                    // A string literal: `''` inside is a quote.
                    let mut parts = Vec::new();
                    let mut raw = String::from("'");
                    let mut text = String::new();
                    let mut closed = false;
                    while let Some((_, c)) = chars.next() {
                        match c {
                            '\'' if chars.peek().map(|&(_, n)| n) == Some('\'') => {
                                chars.next();
                                raw.push_str("''");
                                text.push('\'');
                            }
                            '\'' => {
                                raw.push('\'');
                                closed = true;
                                break;
                            }
                            '\\' => {
                                return Err("a backslash inside a quoted string is read \
                                            differently by MySQL and PostgreSQL/SQLite; \
                                            not supported"
                                    .into());
                            }
                            '%' => match variable(&mut chars)? {
                                None => {
                                    raw.push('%');
                                    text.push('%');
                                }
                                Some(v) => {
                                    if !text.is_empty() {
                                        parts.push(Part::Text(std::mem::take(&mut text)));
                                    }
                                    parts.push(v);
                                }
                            },
                            c => {
                                raw.push(c);
                                text.push(c);
                            }
                        }
                    }
                    if !closed {
                        return Err("unterminated quoted string".into());
                    }
                    if parts.is_empty() {
                        push_sql(&mut sql, &raw);
                    } else {
                        if !text.is_empty() {
                            parts.push(Part::Text(text));
                        }
                        params.push(parts);
                        sql.push(String::new());
                    }
                }
                '"' | '`' => {
                    // A quoted identifier (or a MySQL string in double quotes): copied, and no
                    // variable may hide in it.
                    let mut raw = String::from(c);
                    let mut closed = false;
                    for (_, n) in chars.by_ref() {
                        if n == '%' || n == '\\' {
                            return Err(format!(
                                "'%' or '\\' inside a {c}-quoted name; quote values with '"
                            ));
                        }
                        raw.push(n);
                        if n == c {
                            closed = true;
                            break;
                        }
                    }
                    if !closed {
                        return Err(format!("unterminated {c}-quoted name"));
                    }
                    push_sql(&mut sql, &raw);
                }
                '%' => match variable(&mut chars)? {
                    None => push_sql(&mut sql, "%"),
                    Some(v) => {
                        params.push(vec![v]);
                        sql.push(String::new());
                    }
                },
                '?' | '$' => {
                    // Either is a placeholder for one of the drivers; a literal one in the
                    // query would shift the parameters.
                    return Err(format!(
                        "'{c}' outside a quoted string; write variables as %u or %{{user}}"
                    ));
                }
                c => {
                    let last = sql.len() - 1;
                    if let Some(s) = sql.get_mut(last) {
                        s.push(c);
                    }
                }
            }
        }
        if query.trim().is_empty() {
            return Err("empty query".into());
        }
        Ok(Template { sql, params })
    }

    /// The SQL text with the driver's placeholders (`$1`, `$2` for PostgreSQL, `?` else).
    pub fn sql(&self, driver: SqlDriver) -> String {
        let mut out = String::new();
        for (i, piece) in self.sql.iter().enumerate() {
            out.push_str(piece);
            if i < self.params.len() {
                match driver {
                    SqlDriver::Postgresql => {
                        let _ = write!(out, "${}", i + 1);
                    }
                    SqlDriver::Mysql | SqlDriver::Sqlite => out.push('?'),
                }
            }
        }
        out
    }

    /// The parameters' values for `req`, in order.
    pub fn values(&self, req: &LookupRequest<'_>) -> Vec<String> {
        self.params
            .iter()
            .map(|parts| {
                let mut value = String::new();
                for part in parts {
                    match part {
                        Part::Text(t) => value.push_str(t),
                        Part::Var(v, lower) => {
                            let s = expand(*v, req);
                            if *lower {
                                value.push_str(&s.to_lowercase());
                            } else {
                                value.push_str(&s);
                            }
                        }
                    }
                }
                value
            })
            .collect()
    }

    /// Number of parameters.
    pub fn param_count(&self) -> usize {
        self.params.len()
    }
}

fn push_sql(sql: &mut [String], s: &str) {
    if let Some(last) = sql.last_mut() {
        last.push_str(s);
    }
}

/// The value of `v` for `req`.
fn expand(v: Var, req: &LookupRequest<'_>) -> String {
    let (user, domain) = match req.user.split_once('@') {
        Some((u, d)) => (u, d),
        None => (req.user, ""),
    };
    match v {
        Var::User => req.user.to_owned(),
        Var::Username => user.to_owned(),
        Var::Domain => domain.to_owned(),
        Var::RemoteIp => req.remote.map(|ip| ip.to_string()).unwrap_or_default(),
        Var::LocalIp => req.local.map(|ip| ip.to_string()).unwrap_or_default(),
        Var::Service => req.service.to_owned(),
    }
}

/// Reads what follows a `%`: `None` for `%%` (a literal percent), else the variable.
fn variable(
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
) -> Result<Option<Part>, String> {
    let mut lower = false;
    let mut next = chars.next().map(|(_, c)| c);
    if next == Some('L') {
        lower = true;
        next = chars.next().map(|(_, c)| c);
    }
    let var = match next {
        Some('%') if !lower => return Ok(None),
        Some('u') => Var::User,
        Some('n') => Var::Username,
        Some('d') => Var::Domain,
        Some('r') => Var::RemoteIp,
        Some('l') => Var::LocalIp,
        Some('s') => Var::Service,
        Some('{') => {
            let mut name = String::new();
            loop {
                match chars.next().map(|(_, c)| c) {
                    Some('}') => break,
                    Some(c) if name.len() < 32 => name.push(c),
                    _ => return Err("unterminated %{...} variable".into()),
                }
            }
            match name.trim() {
                "user" => Var::User,
                "username" => Var::Username,
                "domain" => Var::Domain,
                "remote_ip" | "rip" => Var::RemoteIp,
                "local_ip" | "lip" => Var::LocalIp,
                "service" => Var::Service,
                other => {
                    return Err(format!(
                        "unknown variable %{{{other}}} (known: user, username, domain, \
                         remote_ip, local_ip, service)"
                    ));
                }
            }
        }
        Some(c) => {
            return Err(format!(
                "unknown variable %{c} (known: %u %n %d %r %l %s, %% for a percent sign)"
            ));
        }
        None => return Err("'%' at the end of the query".into()),
    };
    Ok(Some(Part::Var(var, lower)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(user: &str) -> LookupRequest<'_> {
        LookupRequest {
            user,
            remote: Some("192.0.2.7".parse().unwrap()),
            local: Some("::1".parse().unwrap()),
            service: "imap",
        }
    }

    #[test]
    fn quoted_variables_become_one_parameter() {
        let t = Template::parse(
            "SELECT username AS user, password FROM mailbox WHERE username = '%u' AND active = '1'",
        )
        .unwrap();
        assert_eq!(
            t.sql(SqlDriver::Postgresql),
            "SELECT username AS user, password FROM mailbox WHERE username = $1 AND active = '1'"
        );
        assert_eq!(
            t.sql(SqlDriver::Mysql),
            "SELECT username AS user, password FROM mailbox WHERE username = ? AND active = '1'"
        );
        assert_eq!(t.values(&req("x' OR '1'='1")), vec!["x' OR '1'='1"]);
    }

    #[test]
    fn mixed_literals_and_long_forms() {
        let t = Template::parse(
            "SELECT 1 FROM u WHERE a = '%n@%d' AND b = %{service} AND c LIKE '50%%' \
             AND d = '%{remote_ip}' AND e = '%Lu' AND f = 'it''s %l'",
        )
        .unwrap();
        assert_eq!(
            t.sql(SqlDriver::Postgresql),
            "SELECT 1 FROM u WHERE a = $1 AND b = $2 AND c LIKE '50%' AND d = $3 AND e = $4 \
             AND f = $5"
        );
        assert_eq!(
            t.values(&req("Al@Example.ORG")),
            vec![
                "Al@Example.ORG",
                "imap",
                "192.0.2.7",
                "al@example.org",
                "it's ::1"
            ]
        );
        assert_eq!(t.param_count(), 5);
    }

    #[test]
    fn user_without_domain() {
        let t = Template::parse("SELECT 1 WHERE a = '%n' AND b = '%d'").unwrap();
        assert_eq!(t.values(&req("bob")), vec!["bob", ""]);
    }

    #[test]
    fn refused_templates() {
        for bad in [
            "SELECT 1 WHERE a = '%x'",
            "SELECT 1 WHERE a = '%{nope}'",
            "SELECT 1 WHERE a = 'unterminated",
            "SELECT 1 WHERE a = 'back\\slash %u'",
            "SELECT 1 WHERE a = ?",
            "SELECT 1 WHERE a = $1",
            "SELECT 1 WHERE \"%u\" = 1",
            "SELECT 1 WHERE a = %",
            "   ",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }
}
