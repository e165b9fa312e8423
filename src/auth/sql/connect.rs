//! Dovecot's `connect` setting (dovecot-sql.conf.ext) turned into the database URL the SQL
//! driver takes: a file path for SQLite; `host=... port=... dbname=... user=... password=...`
//! for PostgreSQL and MySQL/MariaDB, values optionally in single quotes (libpq's rules:
//! `\'` and `\\` inside), `host=/path` a Unix socket directory (PostgreSQL) or socket file
//! (MySQL). Dovecot's `maxconns=N` sets the pool size.

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use crate::config::SqlDriver;
use crate::limits::{DEFAULT_SQL_MAX_CONNECTIONS, MAX_SQL_MAX_CONNECTIONS};

/// Where and how to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// The driver URL (it may carry the password: never log it).
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// Splits `key=value key='quoted value'` into pairs.
fn pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            if c.is_whitespace() {
                return Err(format!("{key:?} has no '=value'"));
            }
            key.push(c);
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.push(chars.next().ok_or("unterminated quoted value")?),
                    '\'' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(format!("unterminated quoted value of {key:?}"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        if key.is_empty() {
            return Err("a value without a key".into());
        }
        out.push((key.to_ascii_lowercase(), value));
    }
}

/// Parses `connect` for `driver`; the error says what is wrong (without the password).
pub fn parse(driver: SqlDriver, connect: &str) -> Result<Connect, String> {
    if driver == SqlDriver::Sqlite {
        let path = connect.trim();
        if path.is_empty() {
            return Err("the SQLite connect setting is the database file's path".into());
        }
        // Read-only: authentication never writes, and a typo in the path must not create an
        // empty database that answers "no such user" for everyone.
        return Ok(Connect {
            url: format!("sqlite:{}?mode=ro", enc(path)),
            max_connections: DEFAULT_SQL_MAX_CONNECTIONS,
        });
    }
    let mut host = None;
    let mut port = None;
    let mut dbname = None;
    let mut user = None;
    let mut password = None;
    let mut maxconns = DEFAULT_SQL_MAX_CONNECTIONS;
    let mut extra = Vec::new();
    for (key, value) in pairs(connect)? {
        let slot = match key.as_str() {
            "host" => &mut host,
            "port" => &mut port,
            "dbname" => &mut dbname,
            "user" => &mut user,
            "password" => &mut password,
            "maxconns" => {
                maxconns = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_SQL_MAX_CONNECTIONS).contains(n))
                    .ok_or(format!(
                        "maxconns must be between 1 and {MAX_SQL_MAX_CONNECTIONS}"
                    ))?;
                continue;
            }
            // libpq's own names, as Dovecot passes them to libpq.
            "sslmode" | "sslrootcert" | "sslcert" | "sslkey" | "application_name"
                if driver == SqlDriver::Postgresql =>
            {
                extra.push((key, value));
                continue;
            }
            // Dovecot's MySQL names (doc/dovecot-sql-example.conf.ext).
            "ssl_ca" | "ssl_cert" | "ssl_key" | "ssl_verify_server_cert"
                if driver == SqlDriver::Mysql =>
            {
                extra.push((key, value));
                continue;
            }
            other => {
                return Err(format!(
                    "unsupported connect key {other:?} (supported: host, port, dbname, user, \
                     password, maxconns{})",
                    if driver == SqlDriver::Postgresql {
                        ", sslmode, sslrootcert, sslcert, sslkey, application_name"
                    } else {
                        ", ssl_ca, ssl_cert, ssl_key, ssl_verify_server_cert"
                    }
                ));
            }
        };
        if slot.is_some() {
            return Err(format!("{key} given twice (one server per database)"));
        }
        *slot = Some(value);
    }
    if let Some(p) = &port
        && p.parse::<u16>().is_err()
    {
        return Err("port must be a number".into());
    }
    let host = host.unwrap_or_else(|| "localhost".into());
    let socket = host.starts_with('/').then(|| host.clone());
    let mut url = String::from(match driver {
        SqlDriver::Postgresql => "postgres://",
        _ => "mysql://",
    });
    if let Some(u) = &user {
        url.push_str(&enc(u));
        if let Some(pw) = &password {
            url.push(':');
            url.push_str(&enc(pw));
        }
        url.push('@');
    }
    if socket.is_some() {
        url.push_str("localhost");
    } else if host.contains(':') {
        url.push('[');
        url.push_str(&host);
        url.push(']');
    } else if host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
    {
        url.push_str(&host);
    } else {
        return Err("host must be a name, an address or a socket path".into());
    }
    if let Some(p) = &port {
        url.push(':');
        url.push_str(p);
    }
    url.push('/');
    if let Some(db) = &dbname {
        url.push_str(&enc(db));
    }
    let mut query: Vec<(String, String)> = Vec::new();
    match driver {
        SqlDriver::Postgresql => {
            if let Some(s) = socket {
                query.push(("host".into(), s));
            }
            // Without `sslmode`, libpq's (and Dovecot's) default: `prefer`.
            query.extend(extra);
        }
        _ => {
            if let Some(s) = socket {
                query.push(("socket".into(), s));
            }
            // As Dovecot's MySQL driver: TLS when a CA or client certificate is named, the
            // server's name checked only with `ssl_verify_server_cert=yes`.
            let mut tls = false;
            let mut verify = false;
            for (k, v) in extra {
                match k.as_str() {
                    "ssl_verify_server_cert" => {
                        verify = match v.as_str() {
                            "yes" | "1" => true,
                            "no" | "0" => false,
                            _ => return Err("ssl_verify_server_cert must be yes or no".into()),
                        }
                    }
                    _ => {
                        tls = true;
                        query.push((k.replace('_', "-"), v));
                    }
                }
            }
            let mode = match (tls, verify) {
                (false, false) => "DISABLED",
                (false, true) => {
                    return Err("ssl_verify_server_cert needs ssl_ca (the CA to check with)".into());
                }
                (true, false) => "REQUIRED",
                (true, true) => "VERIFY_IDENTITY",
            };
            query.push(("ssl-mode".into(), mode.into()));
        }
    }
    for (i, (k, v)) in query.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(k);
        url.push('=');
        url.push_str(&enc(v));
    }
    Ok(Connect {
        url,
        max_connections: maxconns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgresql_as_dovecot_writes_it() {
        let c = parse(
            SqlDriver::Postgresql,
            "host=db.example.org port=5433 dbname=mail user=dovecot password='p@ss w\\'d' maxconns=3",
        )
        .unwrap();
        assert_eq!(
            c.url,
            "postgres://dovecot:p%40ss%20w%27d@db.example.org:5433/mail"
        );
        assert_eq!(c.max_connections, 3);
        let s = parse(
            SqlDriver::Postgresql,
            "host=/var/run/postgresql dbname=mail",
        )
        .unwrap();
        assert_eq!(
            s.url,
            "postgres://localhost/mail?host=%2Fvar%2Frun%2Fpostgresql"
        );
        let t = parse(
            SqlDriver::Postgresql,
            "host=db dbname=mail sslmode=verify-full sslrootcert=/etc/ssl/db-ca.pem",
        )
        .unwrap();
        assert_eq!(
            t.url,
            "postgres://db/mail?sslmode=verify%2Dfull&sslrootcert=%2Fetc%2Fssl%2Fdb%2Dca%2Epem"
        );
    }

    #[test]
    fn mysql_and_sqlite() {
        let c = parse(
            SqlDriver::Mysql,
            "host=127.0.0.1 dbname=postfix user=u password=p",
        )
        .unwrap();
        assert_eq!(c.url, "mysql://u:p@127.0.0.1/postfix?ssl-mode=DISABLED");
        let s = parse(
            SqlDriver::Mysql,
            "host=/run/mysqld/mysqld.sock dbname=vmail",
        )
        .unwrap();
        assert_eq!(
            s.url,
            "mysql://localhost/vmail?socket=%2Frun%2Fmysqld%2Fmysqld%2Esock&ssl-mode=DISABLED"
        );
        let t = parse(
            SqlDriver::Mysql,
            "host=db dbname=vmail ssl_ca=/etc/ssl/ca.pem ssl_verify_server_cert=yes",
        )
        .unwrap();
        assert_eq!(
            t.url,
            "mysql://db/vmail?ssl-ca=%2Fetc%2Fssl%2Fca%2Epem&ssl-mode=VERIFY%5FIDENTITY"
        );
        let r = parse(SqlDriver::Mysql, "host=db dbname=vmail ssl_cert=/c.pem").unwrap();
        assert_eq!(
            r.url,
            "mysql://db/vmail?ssl-cert=%2Fc%2Epem&ssl-mode=REQUIRED"
        );
        assert!(parse(SqlDriver::Mysql, "host=db ssl_verify_server_cert=yes").is_err());
        assert!(
            parse(
                SqlDriver::Mysql,
                "host=db ssl_ca=/a ssl_verify_server_cert=maybe"
            )
            .is_err()
        );
        let f = parse(SqlDriver::Sqlite, "/var/lib/mail/users.db").unwrap();
        assert_eq!(f.url, "sqlite:%2Fvar%2Flib%2Fmail%2Fusers%2Edb?mode=ro");
    }

    #[test]
    fn refused() {
        for bad in [
            "host=a host=b",
            "hostaddr=1.2.3.4",
            "port=x",
            "password='open",
            "maxconns=0",
            "host=a/b",
            "justaword",
        ] {
            assert!(parse(SqlDriver::Postgresql, bad).is_err(), "{bad}");
        }
        assert!(parse(SqlDriver::Sqlite, " ").is_err());
        assert!(parse(SqlDriver::Mysql, "sslmode=require").is_err());
    }
}
