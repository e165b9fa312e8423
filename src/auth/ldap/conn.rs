//! Connections to the directory: one shared connection bound as the service account (`dn`,
//! `dnpass`), which ldap3 multiplexes for every concurrent search, and a few connections kept
//! for auth binds (a bind changes a connection's identity, so each bind has one to itself).
//!
//! A connection that fails is dropped and the call retried once on a new one (a server
//! restart leaves every kept connection dead). A failed connect starts a backoff (doubling
//! from `LDAP_RECONNECT_BACKOFF_MIN_MS` to `..._MAX_MS`) during which calls answer
//! `DbError::Unavailable` at once, so a dead server costs nothing per login.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ldap3::{
    Ldap, LdapConnAsync, LdapConnSettings, LdapResult, Scope, SearchEntry, SearchOptions,
    SearchResult,
};
use parking_lot::Mutex;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::auth::db::DbError;
use crate::config::{LdapConfig, LdapTlsRequireCert};
use crate::limits::{
    LDAP_CONNECT_TIMEOUT_MS, LDAP_MAX_AUTH_BIND_CONNECTIONS, LDAP_RECONNECT_BACKOFF_MAX_MS,
    LDAP_RECONNECT_BACKOFF_MIN_MS,
};

/// LDAP result codes (RFC 4511 appendix A) this module tells apart.
const RC_SUCCESS: u32 = 0;
const RC_SIZE_LIMIT_EXCEEDED: u32 = 4;
const RC_NO_SUCH_OBJECT: u32 = 32;
const RC_INVALID_CREDENTIALS: u32 = 49;

/// How server certificates are checked.
#[derive(Clone)]
pub(super) enum TlsMode {
    /// Against the system's trust store (ldap3 loads it with rustls-native-certs).
    System,
    /// Not at all (`tls_require_cert = never|allow|try`).
    NoVerify,
    /// Against `tls_ca_cert_file`.
    Roots(Arc<ClientConfig>),
}

impl TlsMode {
    /// Reads `tls_ca_cert_file` if the certificates are to be checked against it.
    pub(super) fn from_config(cfg: &LdapConfig) -> Result<Self, String> {
        match cfg.tls_require_cert {
            LdapTlsRequireCert::Never | LdapTlsRequireCert::Allow | LdapTlsRequireCert::Try => {
                return Ok(TlsMode::NoVerify);
            }
            LdapTlsRequireCert::Demand | LdapTlsRequireCert::Hard => {}
        }
        let Some(path) = &cfg.tls_ca_cert_file else {
            return Ok(TlsMode::System);
        };
        let what = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| what(&e))? {
            roots
                .add(cert.map_err(|e| what(&e))?)
                .map_err(|e| what(&e))?;
        }
        if roots.is_empty() {
            return Err(what(&"no certificate in the file"));
        }
        // The same provider as the server side (src/server/tls.rs), named explicitly.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| what(&e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsMode::Roots(Arc::new(config)))
    }
}

struct Backoff {
    /// The wait after the next failure.
    wait: Duration,
    /// No connect before this instant.
    until: Option<Instant>,
    /// Why the last connect failed, for the calls answered during the wait.
    last_error: String,
}

/// What a search found.
pub(super) struct Found {
    pub entries: Vec<SearchEntry>,
    /// The server stopped at the size limit.
    pub truncated: bool,
}

/// The connections of one `[auth.ldap]`.
pub(super) struct Pool {
    uris: Vec<String>,
    dn: String,
    dnpass: Zeroizing<String>,
    starttls: bool,
    tls: TlsMode,
    shared: Mutex<Option<Ldap>>,
    /// Held while the shared connection is being made, so one task connects and the others
    /// wait for it instead of opening connections of their own.
    gate: tokio::sync::Mutex<()>,
    backoff: Mutex<Backoff>,
    binders: Mutex<Vec<Ldap>>,
    bind_slots: Semaphore,
}

impl Pool {
    pub(super) fn new(uris: Vec<String>, cfg: &LdapConfig, tls: TlsMode) -> Self {
        Pool {
            uris,
            dn: cfg.dn.clone(),
            dnpass: Zeroizing::new(cfg.dnpass.clone()),
            starttls: cfg.tls,
            tls,
            shared: Mutex::new(None),
            gate: tokio::sync::Mutex::new(()),
            backoff: Mutex::new(Backoff {
                wait: Duration::from_millis(LDAP_RECONNECT_BACKOFF_MIN_MS),
                until: None,
                last_error: String::new(),
            }),
            binders: Mutex::new(Vec::new()),
            bind_slots: Semaphore::new(LDAP_MAX_AUTH_BIND_CONNECTIONS),
        }
    }

    fn settings(&self, uri: &str) -> LdapConnSettings {
        let mut s = LdapConnSettings::new()
            .set_conn_timeout(Duration::from_millis(LDAP_CONNECT_TIMEOUT_MS))
            .set_starttls(self.starttls && uri.starts_with("ldap://"));
        match &self.tls {
            TlsMode::System => {}
            TlsMode::NoVerify => s = s.set_no_tls_verify(true),
            TlsMode::Roots(config) => s = s.set_config(Arc::clone(config)),
        }
        s
    }

    /// Records a failed connect (or a call that timed out) and starts or doubles the backoff.
    pub(super) fn failed(&self, why: &str) {
        let mut b = self.backoff.lock();
        b.until = Some(Instant::now() + b.wait);
        b.wait = (b.wait * 2).min(Duration::from_millis(LDAP_RECONNECT_BACKOFF_MAX_MS));
        b.last_error = why.to_owned();
        tracing::warn!(error = %why, retry_in_ms = b.wait.as_millis() as u64 / 2, "ldap unavailable");
    }

    fn succeeded(&self) {
        let mut b = self.backoff.lock();
        b.wait = Duration::from_millis(LDAP_RECONNECT_BACKOFF_MIN_MS);
        b.until = None;
    }

    /// Drops the shared connection (after a timeout or an error on it).
    pub(super) fn invalidate(&self) {
        self.shared.lock().take();
    }

    /// A new connection to the first URI that answers.
    async fn connect(&self) -> Result<Ldap, DbError> {
        {
            let b = self.backoff.lock();
            if let Some(until) = b.until
                && Instant::now() < until
            {
                return Err(DbError::Unavailable(format!(
                    "waiting before reconnecting after: {}",
                    b.last_error
                )));
            }
        }
        let mut last = String::from("no uris");
        for uri in &self.uris {
            match LdapConnAsync::with_settings(self.settings(uri), uri).await {
                Ok((conn, ldap)) => {
                    let uri = uri.clone();
                    tokio::spawn(async move {
                        if let Err(e) = conn.drive().await {
                            tracing::debug!(%uri, error = %e, "ldap connection ended");
                        }
                    });
                    return Ok(ldap);
                }
                Err(e) => last = format!("{uri}: {e}"),
            }
        }
        self.failed(&last);
        Err(DbError::Unavailable(last))
    }

    /// The shared service connection and whether it was made for this call.
    async fn shared(&self) -> Result<(Ldap, bool), DbError> {
        let current = || {
            let mut ldap = self.shared.lock().clone()?;
            (!ldap.is_closed()).then_some(ldap)
        };
        if let Some(ldap) = current() {
            return Ok((ldap, false));
        }
        let _gate = self.gate.lock().await;
        if let Some(ldap) = current() {
            return Ok((ldap, false));
        }
        let mut ldap = self.connect().await?;
        if !self.dn.is_empty() {
            let why = match ldap.simple_bind(&self.dn, &self.dnpass).await {
                Ok(r) if r.rc == RC_SUCCESS => None,
                Ok(r) => Some(format!("service bind as {:?}: {}", self.dn, describe(&r))),
                Err(e) => Some(format!("service bind as {:?}: {e}", self.dn)),
            };
            if let Some(why) = why {
                self.failed(&why);
                return Err(DbError::Unavailable(why));
            }
        }
        self.succeeded();
        *self.shared.lock() = Some(ldap.clone());
        Ok((ldap, true))
    }

    /// Searches on the shared connection; at most `sizelimit` entries.
    pub(super) async fn search(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[String],
        sizelimit: i32,
    ) -> Result<Found, DbError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (mut ldap, fresh) = self.shared().await?;
            let res = ldap
                .with_search_options(SearchOptions::new().sizelimit(sizelimit))
                .search(base, scope, filter, attrs)
                .await;
            match res {
                Ok(SearchResult(entries, result)) => {
                    let truncated = match result.rc {
                        RC_SUCCESS => false,
                        RC_SIZE_LIMIT_EXCEEDED => true,
                        // The base does not exist: nobody is found there.
                        RC_NO_SUCH_OBJECT => false,
                        _ => {
                            return Err(DbError::Unavailable(format!(
                                "search under {base:?}: {}",
                                describe(&result)
                            )));
                        }
                    };
                    let entries = entries.into_iter().map(SearchEntry::construct).collect();
                    return Ok(Found { entries, truncated });
                }
                Err(e) => {
                    self.invalidate();
                    if fresh || attempt >= 2 {
                        return Err(DbError::Unavailable(format!("search: {e}")));
                    }
                }
            }
        }
    }

    /// Binds as `dn` with `password` on a bind connection: `Ok(true)` when the server accepts
    /// it, `Ok(false)` for invalidCredentials (wrong password, unknown DN, and on Active
    /// Directory also a disabled, locked or expired account).
    ///
    /// The caller has refused an empty password: RFC 4513 section 5.1.2 makes a simple bind
    /// with a DN and an empty password an *unauthenticated* bind, which servers answer success.
    pub(super) async fn auth_bind(&self, dn: &str, password: &str) -> Result<bool, DbError> {
        if dn.is_empty() || password.is_empty() {
            return Ok(false);
        }
        let _slot = self
            .bind_slots
            .acquire()
            .await
            .map_err(|_| DbError::Unavailable("shutting down".into()))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let kept = self.binders.lock().pop();
            let (mut ldap, fresh) = match kept {
                Some(ldap) => (ldap, false),
                None => (self.connect().await?, true),
            };
            match ldap.simple_bind(dn, password).await {
                Ok(r) => {
                    if fresh {
                        self.succeeded();
                    }
                    self.binders.lock().push(ldap);
                    return match r.rc {
                        RC_SUCCESS => Ok(true),
                        RC_INVALID_CREDENTIALS => Ok(false),
                        _ => Err(DbError::Unavailable(format!("bind: {}", describe(&r)))),
                    };
                }
                Err(e) => {
                    if fresh || attempt >= 2 {
                        return Err(DbError::Unavailable(format!("bind: {e}")));
                    }
                }
            }
        }
    }
}

fn describe(r: &LdapResult) -> String {
    if r.text.is_empty() {
        format!("result code {}", r.rc)
    } else {
        format!("result code {} ({})", r.rc, r.text)
    }
}
