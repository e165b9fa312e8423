//! The one TOML configuration file: typed structs, defaults, validation, and error reports that name
//! the file, line and key of every problem.
//!
//! Loading is three steps: parse the TOML (syntax errors carry a span), deserialize into [`Config`]
//! while collecting every key serde did not use (those are unknown keys, reported as errors rather than
//! silently ignored), then [`Config::validate`] checks values against each other and the limits. Every
//! problem found is reported at once, so an operator fixes a file in one round.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::limits;

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
}

/// `[server]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct ServerConfig {
    /// Name used in greetings and generated certificates.
    pub hostname: String,
    /// System user to switch to after binding the ports when started as root.
    pub user: Option<String>,
    /// System group to switch to; defaults to the user's primary group.
    pub group: Option<String>,
    /// Seconds sessions get to say BYE after SIGTERM before the process exits.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            hostname: default_hostname(),
            user: None,
            group: None,
            shutdown_grace_secs: limits::DEFAULT_SHUTDOWN_GRACE_SECS,
        }
    }
}

fn default_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Protocol served on a listener.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// IMAP4rev1 (RFC 3501).
    Imap,
    /// POP3 (RFC 1939).
    Pop3,
    /// LMTP (RFC 2033), for mail delivery by an MTA.
    Lmtp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
            Protocol::Lmtp => "lmtp",
        })
    }
}

/// How TLS is used on a listener.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plaintext only; STARTTLS/STLS not offered.
    None,
    /// Plaintext first, upgraded by STARTTLS (IMAP) or STLS (POP3).
    Starttls,
    /// TLS from the first byte (ports 993 and 995, RFC 8314).
    Implicit,
}

/// One `[[listener]]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct ListenerConfig {
    /// `imap`, `pop3` or `lmtp`.
    pub protocol: Protocol,
    /// `ip:port`; `[::]:143` for IPv6 (dual-stack where the OS allows). Empty for a Unix socket.
    pub address: String,
    /// `none`, `starttls` or `implicit`. LMTP listeners have no TLS (normalised to `none`).
    pub tls: TlsMode,
    /// Treat clients of this listener as remote even when they connect from loopback.
    /// Only for tests and for setups behind a local proxy.
    pub assume_remote: bool,
    /// LMTP only: a Unix socket path instead of `address`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Permissions of the Unix socket, octal as a string (`"0660"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Owner of the Unix socket; default the user the daemon runs as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Group of the Unix socket; default the group the daemon runs as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            protocol: Protocol::Imap,
            address: String::new(),
            tls: TlsMode::Starttls,
            assume_remote: false,
            path: None,
            mode: None,
            owner: None,
            group: None,
        }
    }
}

impl ListenerConfig {
    /// The Unix socket permissions: `mode` parsed as octal, default
    /// [`limits::DEFAULT_LMTP_SOCKET_MODE`]. None when `mode` is not octal (refused by validation).
    pub fn socket_mode(&self) -> Option<u32> {
        match &self.mode {
            None => Some(limits::DEFAULT_LMTP_SOCKET_MODE),
            Some(m) => u32::from_str_radix(m.trim_start_matches("0o"), 8)
                .ok()
                .filter(|v| *v <= 0o777),
        }
    }

    /// Where the listener listens, for logs: the address or the socket path.
    pub fn endpoint(&self) -> String {
        match &self.path {
            Some(p) => format!("unix:{}", p.display()),
            None => self.address.clone(),
        }
    }
}

/// `[tls]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct TlsConfig {
    /// PEM file with the certificate chain, leaf first.
    pub certificate: Option<PathBuf>,
    /// PEM file with the private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub key: Option<PathBuf>,
    /// Create a self-signed certificate and key at those paths when they are missing (development).
    pub generate_self_signed: bool,
}

/// `[mail]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct MailConfig {
    /// Maildir location template: `%u` user, `%n` local part, `%d` domain, `~` home directory.
    pub location: String,
    /// Hierarchy separator shown to IMAP clients.
    pub separator: char,
    /// fsync messages and directories before acknowledging (never turn off in production).
    pub fsync: bool,
    /// Default quota in bytes per user; 0 is unlimited.
    pub quota_bytes: u64,
    /// Default quota in messages per user; 0 is unlimited.
    pub quota_messages: u64,
    /// Mailboxes created at first login, with their special-use attribute.
    pub autocreate: Vec<AutocreateMailbox>,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            location: "~/Maildir".to_string(),
            separator: '/',
            fsync: true,
            quota_bytes: 0,
            quota_messages: 0,
            autocreate: vec![
                AutocreateMailbox::new("Drafts", "\\Drafts"),
                AutocreateMailbox::new("Sent", "\\Sent"),
                AutocreateMailbox::new("Trash", "\\Trash"),
                AutocreateMailbox::new("Junk", "\\Junk"),
                AutocreateMailbox::new("Archive", "\\Archive"),
            ],
        }
    }
}

/// One `[[mail.autocreate]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AutocreateMailbox {
    /// Mailbox name as clients see it.
    pub name: String,
    /// RFC 6154 attribute such as `\Sent`, or empty for none.
    #[serde(default)]
    pub special_use: String,
    /// Subscribe the user to it as well.
    #[serde(default = "yes")]
    pub subscribe: bool,
}

fn yes() -> bool {
    true
}

impl AutocreateMailbox {
    fn new(name: &str, special_use: &str) -> Self {
        AutocreateMailbox {
            name: name.to_string(),
            special_use: special_use.to_string(),
            subscribe: true,
        }
    }
}

/// Special-use attributes of RFC 6154 that mailcove stores.
pub const SPECIAL_USE_ATTRIBUTES: &[&str] = &[
    "\\All",
    "\\Archive",
    "\\Drafts",
    "\\Flagged",
    "\\Junk",
    "\\Sent",
    "\\Trash",
];

/// `[auth]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct AuthConfig {
    /// Users in Dovecot's passwd-file format.
    pub users_file: PathBuf,
    /// Allow LOGIN, USER/PASS and AUTH PLAIN on connections that are neither TLS nor loopback.
    /// Off by default, as Dovecot's `disable_plaintext_auth = yes`.
    pub allow_plaintext_without_tls: bool,
    /// Accept `{PLAIN}`/`{CLEARTEXT}` password entries.
    pub allow_plaintext_schemes: bool,
    /// First delay after a failed login from an address, in milliseconds; doubles per failure.
    pub failure_delay_ms: u64,
    /// Cap of that delay, in milliseconds.
    pub failure_delay_max_ms: u64,
    /// Password hashes verified at once; 0 means the number of CPUs.
    pub hash_threads: usize,
    /// Logins allowed to wait for a hashing thread before new ones fail temporarily.
    pub hash_queue: usize,
    /// Argon2id memory cost in KiB for new hashes.
    pub argon2_m_cost_kib: u32,
    /// Argon2id iterations for new hashes.
    pub argon2_t_cost: u32,
    /// Argon2id parallelism for new hashes.
    pub argon2_p_cost: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            users_file: PathBuf::from("/etc/mailcove/users"),
            allow_plaintext_without_tls: false,
            allow_plaintext_schemes: false,
            failure_delay_ms: 2000,
            failure_delay_max_ms: 15000,
            hash_threads: 0,
            hash_queue: 256,
            argon2_m_cost_kib: 19456,
            argon2_t_cost: 2,
            argon2_p_cost: 1,
        }
    }
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct LimitsConfig {
    /// Concurrent connections, all listeners together.
    pub max_connections: usize,
    /// Concurrent connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Concurrent logged-in connections of one user from one IP address.
    pub max_userip_connections: usize,
    /// Longest IMAP command line in bytes (literals not counted).
    pub max_command_line: usize,
    /// Largest message accepted by APPEND, LMTP and deliver, in bytes.
    pub max_message_size: u64,
    /// Message bytes buffered in memory over all connections at once (see `crate::inflight`).
    pub max_inflight_message_bytes: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: limits::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: limits::DEFAULT_MAX_CONNECTIONS_PER_IP,
            max_userip_connections: limits::DEFAULT_MAX_USERIP_CONNECTIONS,
            max_command_line: limits::DEFAULT_MAX_COMMAND_LINE,
            max_message_size: limits::DEFAULT_MAX_MESSAGE_SIZE,
            max_inflight_message_bytes: limits::DEFAULT_MAX_INFLIGHT_MESSAGE_BYTES,
        }
    }
}

/// `[timeouts]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct TimeoutsConfig {
    /// IMAP autologout after this many seconds without a command (RFC 3501: at least 1800).
    pub imap_idle_secs: u64,
    /// POP3 autologout (RFC 1939: at least 600).
    pub pop3_idle_secs: u64,
    /// Seconds a client has to log in.
    pub preauth_secs: u64,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        TimeoutsConfig {
            imap_idle_secs: limits::MIN_IMAP_IDLE_SECS,
            pop3_idle_secs: limits::MIN_POP3_IDLE_SECS,
            preauth_secs: limits::DEFAULT_PREAUTH_SECS,
        }
    }
}

/// What POP3 does with messages a client deleted.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Pop3DeletePolicy {
    /// DELE + QUIT removes the messages.
    Delete,
    /// DELE + QUIT marks them \Deleted and \Seen and keeps them.
    Keep,
    /// Messages are removed `keep_days` days after they were first downloaded.
    KeepDays,
}

/// `[pop3]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Pop3Config {
    /// `delete`, `keep` or `keep-days`.
    pub delete_policy: Pop3DeletePolicy,
    /// Days for `keep-days`; also the least a user's `pop3_keep_days` may set.
    pub keep_days: u32,
    /// RETR marks the message \Seen for IMAP users of the same mailbox.
    pub mark_seen_on_retr: bool,
    /// Minimum seconds between two POP3 logins of a user, advertised as LOGIN-DELAY and
    /// enforced; 0 for none.
    pub login_delay_secs: u64,
}

impl Default for Pop3Config {
    fn default() -> Self {
        Pop3Config {
            delete_policy: Pop3DeletePolicy::Delete,
            keep_days: 30,
            mark_seen_on_retr: true,
            login_delay_secs: 0,
        }
    }
}

/// What LMTP and `deliver` answer when a recipient is over quota.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OverQuota {
    /// `552 5.2.2` (LMTP) / exit 73 (deliver): the MTA bounces the message.
    Permanent,
    /// `452 4.2.2` (LMTP) / exit 75 (deliver): the MTA keeps it queued and retries.
    Temporary,
}

/// `[lmtp]`: delivery by LMTP and by `mailcove deliver`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct LmtpConfig {
    /// Characters that separate a recipient's user from its detail (`user+detail`); empty
    /// disables details. Any one of them splits, at its first occurrence.
    pub recipient_delimiter: String,
    /// Deliver `user+folder` into `folder` when that mailbox exists (else INBOX), as Dovecot's
    /// `lmtp_save_to_detail_mailbox`.
    pub save_to_detail_mailbox: bool,
    /// `permanent` (552 5.2.2) or `temporary` (452 4.2.2), as Dovecot's `quota_full_tempfail`.
    pub over_quota: OverQuota,
}

impl Default for LmtpConfig {
    fn default() -> Self {
        LmtpConfig {
            recipient_delimiter: "+".to_string(),
            save_to_detail_mailbox: true,
            over_quota: OverQuota::Permanent,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[logging]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct LoggingConfig {
    /// `error`, `warn`, `info`, `debug`, `trace`, or a tracing filter such as `info,mailcove::imap=debug`.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: "info".to_string(),
            format: LogFormat::Text,
        }
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
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut err = |k: &str, m: String| out.push((k.to_string(), m));
        if self.listeners.is_empty() {
            err("listener", "at least one [[listener]] is needed".into());
        }
        let mut seen = Vec::new();
        let mut seen_paths = Vec::new();
        for (i, l) in self.listeners.iter().enumerate() {
            let unix_keys = l.mode.is_some() || l.owner.is_some() || l.group.is_some();
            if l.protocol != Protocol::Lmtp && (l.path.is_some() || unix_keys) {
                err(
                    &format!("listener[{i}].path"),
                    "Unix sockets (path, mode, owner, group) are for lmtp listeners only".into(),
                );
            }
            if let Some(path) = &l.path {
                if !l.address.is_empty() {
                    err(
                        &format!("listener[{i}].address"),
                        "set either address (TCP) or path (Unix socket), not both".into(),
                    );
                }
                if path.as_os_str().is_empty() {
                    err(&format!("listener[{i}].path"), "must not be empty".into());
                } else if seen_paths.contains(path) {
                    err(
                        &format!("listener[{i}].path"),
                        format!("{} is used twice", path.display()),
                    );
                }
                seen_paths.push(path.clone());
                if l.socket_mode().is_none() {
                    err(
                        &format!("listener[{i}].mode"),
                        "must be octal permissions such as \"0660\"".into(),
                    );
                }
                continue;
            }
            if unix_keys {
                err(
                    &format!("listener[{i}].mode"),
                    "mode, owner and group apply only to a Unix socket (path)".into(),
                );
            }
            match l.address.parse::<SocketAddr>() {
                Ok(a) => {
                    if seen.contains(&a) {
                        err(
                            &format!("listener[{i}].address"),
                            format!("{a} is used twice"),
                        );
                    }
                    seen.push(a);
                }
                Err(_) => err(
                    &format!("listener[{i}].address"),
                    format!(
                        "`{}` is not an ip:port address such as 0.0.0.0:143 or [::]:993",
                        l.address
                    ),
                ),
            }
        }
        let needs_tls = self
            .listeners
            .iter()
            .any(|l| l.tls != TlsMode::None && l.protocol != Protocol::Lmtp);
        if needs_tls && (self.tls.certificate.is_none() || self.tls.key.is_none()) {
            err(
                "tls",
                "a listener uses TLS, so tls.certificate and tls.key must be set".into(),
            );
        }
        if self.mail.location.trim().is_empty() {
            err("mail.location", "must not be empty".into());
        }
        let sep = self.mail.separator;
        if !(sep.is_ascii_punctuation()) || sep == '"' || sep == '\\' || sep == '%' || sep == '*' {
            err(
                "mail.separator",
                format!("`{sep}` cannot be a hierarchy separator; use / or ."),
            );
        }
        for (i, a) in self.mail.autocreate.iter().enumerate() {
            if a.name.is_empty() || a.name.eq_ignore_ascii_case("INBOX") {
                err(
                    &format!("mail.autocreate[{i}].name"),
                    "must name a mailbox other than INBOX".into(),
                );
            }
            if !a.special_use.is_empty()
                && !SPECIAL_USE_ATTRIBUTES.contains(&a.special_use.as_str())
            {
                err(
                    &format!("mail.autocreate[{i}].special_use"),
                    format!("must be one of {}", SPECIAL_USE_ATTRIBUTES.join(" ")),
                );
            }
        }
        if self.auth.users_file.as_os_str().is_empty() {
            err("auth.users_file", "must be set".into());
        }
        if self.auth.failure_delay_max_ms < self.auth.failure_delay_ms {
            err(
                "auth.failure_delay_max_ms",
                "must not be smaller than auth.failure_delay_ms".into(),
            );
        }
        if self.auth.hash_queue == 0 {
            err("auth.hash_queue", "must be at least 1".into());
        }
        if self.auth.argon2_m_cost_kib < 8 * self.auth.argon2_p_cost.max(1)
            || self.auth.argon2_t_cost == 0
            || self.auth.argon2_p_cost == 0
        {
            err(
                "auth.argon2_m_cost_kib",
                "argon2 costs must be t >= 1, p >= 1, m >= 8*p KiB".into(),
            );
        }
        let l = &self.limits;
        for (k, v) in [
            ("limits.max_connections", l.max_connections),
            ("limits.max_connections_per_ip", l.max_connections_per_ip),
            ("limits.max_userip_connections", l.max_userip_connections),
        ] {
            if v == 0 {
                err(k, "must be at least 1".into());
            }
        }
        if l.max_command_line < 1024 {
            err(
                "limits.max_command_line",
                "must be at least 1024 bytes (RFC 2683 asks servers to accept 8000)".into(),
            );
        }
        if l.max_message_size < 1024 {
            err(
                "limits.max_message_size",
                "must be at least 1024 bytes".into(),
            );
        }
        let t = &self.timeouts;
        if t.imap_idle_secs < limits::MIN_IMAP_IDLE_SECS {
            err(
                "timeouts.imap_idle_secs",
                format!(
                    "must be at least {} (RFC 3501 section 5.4)",
                    limits::MIN_IMAP_IDLE_SECS
                ),
            );
        }
        if t.pop3_idle_secs < limits::MIN_POP3_IDLE_SECS {
            err(
                "timeouts.pop3_idle_secs",
                format!(
                    "must be at least {} (RFC 1939 section 3)",
                    limits::MIN_POP3_IDLE_SECS
                ),
            );
        }
        if t.preauth_secs == 0 {
            err("timeouts.preauth_secs", "must be at least 1".into());
        }
        if self.pop3.delete_policy == Pop3DeletePolicy::KeepDays && self.pop3.keep_days == 0 {
            err(
                "pop3.keep_days",
                "must be at least 1 with delete_policy = \"keep-days\"".into(),
            );
        }
        if self
            .lmtp
            .recipient_delimiter
            .chars()
            .any(|c| c == '@' || c == '<' || c == '>' || c.is_whitespace() || c.is_control())
        {
            err(
                "lmtp.recipient_delimiter",
                "must not contain @, <, >, spaces or control characters".into(),
            );
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.logging.level) {
            err("logging.level", format!("not a valid level or filter: {e}"));
        }
        if let Some(user) = &self.server.user
            && user.is_empty()
        {
            err("server.user", "must not be empty when set".into());
        }
        out
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

/// Finds the line of a dotted key path (`listener[1].tls`) in the parsed document: the deepest
/// part of the path that exists, so a missing key points at its table.
struct KeyLocator<'a> {
    text: &'a str,
    doc: toml_edit::Document<String>,
}

impl KeyLocator<'_> {
    fn line(&self, key: &str) -> Option<usize> {
        let mut item: &toml_edit::Item = self.doc.as_item();
        let mut best = None;
        for part in key.split('.') {
            let (name, index) = match part.split_once('[') {
                Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
                None => (part, None),
            };
            let Some((k, v)) = item.as_table_like().and_then(|t| t.get_key_value(name)) else {
                break;
            };
            best = k.span().map(|s| s.start).or(best);
            item = v;
            if let Some(i) = index {
                match item {
                    toml_edit::Item::ArrayOfTables(a) => match a.get(i) {
                        Some(t) => {
                            best = t.span().map(|s| s.start).or(best);
                            // Walk on inside this element; Item::Table borrows are not available for
                            // array elements, so continue with the table directly.
                            return self.line_in(t, key, part, best);
                        }
                        None => break,
                    },
                    _ => break,
                }
            }
        }
        best.map(|b| line_of(self.text, b))
    }

    fn line_in(
        &self,
        t: &toml_edit::Table,
        key: &str,
        part: &str,
        mut best: Option<usize>,
    ) -> Option<usize> {
        let rest = key
            .split_once(&format!("{part}."))
            .map(|x| x.1)
            .unwrap_or("");
        let mut table: &dyn toml_edit::TableLike = t;
        for name in rest.split('.').filter(|p| !p.is_empty()) {
            let Some((k, v)) = table.get_key_value(name) else {
                break;
            };
            best = k.span().map(|s| s.start).or(best);
            match v.as_table_like() {
                Some(next) => table = next,
                None => break,
            }
        }
        best.map(|b| line_of(self.text, b))
    }
}

/// serde_ignored paths look like `listener.1.tlz`; report them as `listener[1].tlz`.
fn normalise_path(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('.') {
        if !out.is_empty() && part.parse::<usize>().is_ok() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
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
}
