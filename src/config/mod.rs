//! The one TOML configuration file: typed structs, defaults, validation, and error reports that name
//! the file, line and key of every problem.
//!
//! Loading is three steps: parse the TOML (syntax errors carry a span), deserialize into [`Config`]
//! while collecting every key serde did not use (those are unknown keys, reported as errors rather than
//! silently ignored), then [`Config::validate`] checks values against each other and the limits. Every
//! problem found is reported at once, so an operator fixes a file in one round.

mod auth;
mod imap;
mod ldap;
mod limits;
mod listener;
mod lmtp;
mod locate;
mod logging;
mod mail;
mod metrics;
mod oauth2;
mod pop3;
mod server;
mod sieve;
mod timeouts;
mod tls;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use auth::AuthConfig;
pub use auth::{AuthBackend, SqlConfig, SqlDriver};
pub use imap::ImapConfig;
pub use ldap::{LdapConfig, LdapScope, LdapTlsRequireCert};
pub use limits::LimitsConfig;
pub use listener::{ListenerConfig, Protocol, TlsMode};
pub use lmtp::{LmtpConfig, OverQuota};
pub use logging::{LogFormat, LoggingConfig};
pub use mail::{AutocreateMailbox, MailConfig, SPECIAL_USE_ATTRIBUTES};
pub use metrics::MetricsConfig;
pub use oauth2::{IntrospectionMode, Oauth2Config};
pub use pop3::{Pop3Config, Pop3DeletePolicy};
pub use server::ServerConfig;
pub use sieve::{ScriptLocation, SieveConfig};
pub use timeouts::TimeoutsConfig;
pub use tls::TlsConfig;

use locate::{KeyLocator, line_of, normalise_path};

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Config {
    /// Process-wide settings.
    pub server: ServerConfig,
    /// Sockets to accept connections on.
    #[serde(rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    /// Certificate and key.
    pub tls: TlsConfig,
    /// Where and how mail is stored.
    pub mail: MailConfig,
    /// Users and password checking.
    pub auth: AuthConfig,
    /// Caps on connections and sizes.
    pub limits: LimitsConfig,
    /// Inactivity timeouts.
    pub timeouts: TimeoutsConfig,
    /// POP3 policy.
    pub pop3: Pop3Config,
    /// LMTP delivery policy.
    pub lmtp: LmtpConfig,
    /// Log output.
    pub logging: LoggingConfig,
    /// The OpenMetrics endpoint (off unless an address is set).
    pub metrics: MetricsConfig,
    /// IMAP settings (the METADATA server entries).
    pub imap: ImapConfig,
    /// Sieve filtering at delivery and ManageSieve.
    pub sieve: SieveConfig,
}

/// Problems found by validation: (dotted key, message) pairs in the order found. Each section's
/// `validate` adds to it.
#[derive(Debug, Default)]
struct Problems(Vec<(String, String)>);

impl Problems {
    fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push((key.into(), message.into()));
    }
}

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigIssue {
    /// Dotted key path such as `limits.max_connections` or `listener[1].tls`.
    pub key: String,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// Why a configuration could not be used; lists every problem found.
#[derive(Debug, Clone)]
pub struct ConfigError {
    /// The file read.
    pub path: PathBuf,
    /// Every problem.
    pub issues: Vec<ConfigIssue>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match issue.line {
                Some(line) => write!(f, "{}:{}: ", self.path.display(), line)?,
                None => write!(f, "{}: ", self.path.display())?,
            }
            if issue.key.is_empty() {
                write!(f, "{}", issue.message)?;
            } else {
                write!(f, "key `{}`: {}", issue.key, issue.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads, parses and validates `path`; relative paths inside are resolved against the current
    /// directory, as the operator typed them.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            issues: vec![ConfigIssue {
                key: String::new(),
                line: None,
                message: format!("cannot read: {e}"),
            }],
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates configuration text; `path` is used in messages only.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let fail = |issues| ConfigError {
            path: path.to_path_buf(),
            issues,
        };
        let locator = match toml_edit::Document::parse(text.to_string()) {
            Ok(doc) => KeyLocator { text, doc },
            Err(e) => {
                let line = e.span().map(|s| line_of(text, s.start));
                return Err(fail(vec![ConfigIssue {
                    key: String::new(),
                    line,
                    message: format!("TOML syntax error: {}", e.message()),
                }]));
            }
        };
        let mut unknown = Vec::new();
        let de = toml::Deserializer::parse(text).map_err(|e| {
            fail(vec![ConfigIssue {
                key: String::new(),
                line: e.span().map(|s| line_of(text, s.start)),
                message: e.message().to_string(),
            }])
        })?;
        let parsed: Result<Config, _> =
            serde_ignored::deserialize(de, |p| unknown.push(p.to_string()));
        let mut issues: Vec<ConfigIssue> = unknown
            .iter()
            .map(|key| {
                let key = normalise_path(key);
                ConfigIssue {
                    line: locator.line(&key),
                    message: "unknown key".to_string(),
                    key,
                }
            })
            .collect();
        let mut config = match parsed {
            Ok(c) => c,
            Err(e) => {
                issues.push(ConfigIssue {
                    key: String::new(),
                    line: e.span().map(|s| line_of(text, s.start)),
                    message: e.message().to_string(),
                });
                return Err(fail(issues));
            }
        };
        issues.extend(normalise_lmtp_tls(&mut config, &locator));
        for (key, message) in config.validate() {
            issues.push(ConfigIssue {
                line: locator.line(&key),
                key,
                message,
            });
        }
        if issues.is_empty() {
            Ok(config)
        } else {
            Err(fail(issues))
        }
    }

    /// Checks values that serde cannot: ranges, combinations, addresses. Returns (key, message) pairs.
    /// Each section checks itself; only the TLS check looks across sections (at the listeners).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut out = Problems::default();
        listener::validate_listeners(&self.listeners, &mut out);
        self.tls.validate(&self.listeners, &mut out);
        self.mail.validate(&mut out);
        self.auth.validate(&mut out);
        self.limits.validate(&mut out);
        self.timeouts.validate(&mut out);
        self.pop3.validate(&mut out);
        self.lmtp.validate(&mut out);
        self.logging.validate(&mut out);
        self.server.validate(&mut out);
        self.metrics.validate(&self.listeners, &mut out);
        self.imap.validate(&mut out);
        self.sieve.validate(&mut out);
        listener::validate_proxy(
            &self.listeners,
            self.server.proxy_trusted_networks.len(),
            &mut out,
        );
        out.0
    }

    /// The configuration as TOML, with every default filled in.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

/// LMTP runs over a local socket or loopback and carries no TLS. `tls` defaults to `starttls`
/// for every listener, so an LMTP listener's `tls` is set to `none` unless the file names a
/// TLS mode for it explicitly, which is an error rather than a silent downgrade.
fn normalise_lmtp_tls(config: &mut Config, locator: &KeyLocator<'_>) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    let explicit = |i: usize| {
        locator
            .doc
            .get("listener")
            .and_then(|l| l.as_array_of_tables())
            .and_then(|a| a.get(i))
            .and_then(|t| t.get("tls"))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    for (i, l) in config.listeners.iter_mut().enumerate() {
        if l.protocol != Protocol::Lmtp {
            continue;
        }
        if let Some(mode) = explicit(i)
            && mode != "none"
        {
            let key = format!("listener[{i}].tls");
            issues.push(ConfigIssue {
                line: locator.line(&key),
                key,
                message: "lmtp listeners carry no TLS; use a Unix socket or loopback address"
                    .into(),
            });
        }
        l.tls = TlsMode::None;
    }
    issues
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, Path::new("t.toml"))
    }

    const MINIMAL: &str = r#"
[[listener]]
protocol = "imap"
address = "127.0.0.1:1143"
tls = "none"
"#;

    #[test]
    fn minimal_file_gets_defaults() {
        let c = parse(MINIMAL).expect("valid");
        assert_eq!(c.listeners.len(), 1);
        assert_eq!(c.limits.max_userip_connections, 10);
        assert_eq!(c.timeouts.imap_idle_secs, 1800);
        assert!(!c.auth.allow_plaintext_without_tls);
        // The rendered effective config parses back to the same thing.
        let again = parse(&c.to_toml()).expect("round trip");
        assert_eq!(again, c);
    }

    #[test]
    fn every_problem_is_reported_with_line_and_key() {
        let text = format!(
            "{MINIMAL}\n[limits]\nmax_conections = 5\n\n[timeouts]\nimap_idle_secs = 60\n\n[[listener]]\nprotocol = \"pop3\"\naddress = \"nowhere\"\ntlz = \"none\"\n"
        );
        let err = parse(&text).expect_err("invalid");
        let shown = err.to_string();
        assert!(
            shown.contains("t.toml:8: key `limits.max_conections`: unknown key"),
            "{shown}"
        );
        assert!(
            shown.contains("t.toml:16: key `listener[1].tlz`: unknown key"),
            "{shown}"
        );
        assert!(
            shown.contains("t.toml:11: key `timeouts.imap_idle_secs`: must be at least 1800"),
            "{shown}"
        );
        assert!(
            shown.contains("t.toml:15: key `listener[1].address`"),
            "{shown}"
        );
        // The second listener defaults to STARTTLS, which needs a certificate.
        assert!(
            shown.contains("t.toml: key `tls`: a listener uses TLS"),
            "{shown}"
        );
        assert_eq!(err.issues.len(), 5, "{shown}");
    }

    #[test]
    fn type_and_syntax_errors_name_the_line() {
        let err = parse("[limits]\nmax_connections = \"many\"\n").expect_err("bad type");
        assert_eq!(err.issues[0].line, Some(2), "{err}");
        let err = parse("[limits\n").expect_err("bad syntax");
        assert_eq!(err.issues[0].line, Some(1), "{err}");
        let err = parse("[[listener]]\nprotocol = \"smtp\"\naddress = \"127.0.0.1:25\"\n")
            .expect_err("bad enum");
        assert_eq!(err.issues[0].line, Some(2), "{err}");
    }

    #[test]
    fn tls_listener_needs_certificate() {
        let err = parse(
            "[[listener]]\nprotocol = \"imap\"\naddress = \"127.0.0.1:993\"\ntls = \"implicit\"\n",
        )
        .expect_err("no cert");
        assert!(err.to_string().contains("tls.certificate"), "{err}");
    }

    /// Every section's checks, run on one configuration that breaks each of them: the keys come
    /// out in section order, listeners first, so an operator reads the report top to bottom.
    #[test]
    fn validate_reports_every_section_in_order() {
        let listener = |protocol, address: &str| ListenerConfig {
            protocol,
            address: address.to_string(),
            ..ListenerConfig::default()
        };
        let mut c = Config {
            listeners: vec![
                listener(Protocol::Imap, "127.0.0.1:143"),
                listener(Protocol::Imap, "127.0.0.1:143"),
                ListenerConfig {
                    path: Some(PathBuf::from("/run/lmtp")),
                    mode: Some("999".into()),
                    ..listener(Protocol::Lmtp, "127.0.0.1:24")
                },
                ListenerConfig {
                    path: Some(PathBuf::from("/run/lmtp")),
                    ..listener(Protocol::Lmtp, "")
                },
                ListenerConfig {
                    mode: Some("0600".into()),
                    ..listener(Protocol::Pop3, "")
                },
            ],
            ..Config::default()
        };
        c.mail.location = " ".into();
        c.mail.separator = 'a';
        c.mail.autocreate = vec![AutocreateMailbox {
            name: "inbox".into(),
            special_use: "\\Bogus".into(),
            subscribe: true,
        }];
        c.auth.users_file = PathBuf::new();
        c.auth.failure_delay_max_ms = 1;
        c.auth.hash_queue = 0;
        c.auth.argon2_t_cost = 0;
        c.limits.max_connections = 0;
        c.limits.max_command_line = 10;
        c.limits.max_message_size = 10;
        c.timeouts.imap_idle_secs = 1;
        c.timeouts.pop3_idle_secs = 1;
        c.timeouts.preauth_secs = 0;
        c.pop3.delete_policy = Pop3DeletePolicy::KeepDays;
        c.pop3.keep_days = 0;
        c.lmtp.recipient_delimiter = "@".into();
        c.logging.level = "info,[bad".into();
        c.server.user = Some(String::new());
        let keys: Vec<String> = c.validate().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "listener[1].address",
                "listener[2].address",
                "listener[2].mode",
                "listener[3].path",
                "listener[4].path",
                "listener[4].mode",
                "listener[4].address",
                "tls",
                "mail.location",
                "mail.separator",
                "mail.autocreate[0].name",
                "mail.autocreate[0].special_use",
                "auth.users_file",
                "auth.failure_delay_max_ms",
                "auth.hash_queue",
                "auth.argon2_m_cost_kib",
                "limits.max_connections",
                "limits.max_command_line",
                "limits.max_message_size",
                "timeouts.imap_idle_secs",
                "timeouts.pop3_idle_secs",
                "timeouts.preauth_secs",
                "pop3.keep_days",
                "lmtp.recipient_delimiter",
                "logging.level",
                "server.user",
            ]
        );
        assert_eq!(
            Config::default().validate(),
            [(
                "listener".to_string(),
                "at least one [[listener]] is needed".to_string()
            )]
        );
    }
}
