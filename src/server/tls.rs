//! TLS: loading the certificate chain and key, building the rustls configuration (TLS 1.2 and 1.3
//! only), generating a self-signed certificate for development, and swapping it on reload.
//!
//! A new acceptor is built on every reload and stored behind a lock; each connection clones the
//! acceptor current at its handshake, so a reload changes what new connections see and leaves
//! established ones alone.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is missing, unreadable or holds no certificate.
    #[error("certificate {path}: {reason}")]
    Certificate {
        /// File named in the config.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The key file is missing, unreadable or holds no supported key.
    #[error("private key {path}: {reason}")]
    Key {
        /// File named in the config.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the pair (for example the key does not match the certificate).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// Generating a self-signed certificate failed.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
}

/// Builds an acceptor from the configured PEM files.
pub fn load_acceptor(cfg: &TlsConfig) -> Result<Option<TlsAcceptor>, TlsError> {
    let (Some(cert_path), Some(key_path)) = (&cfg.certificate, &cfg.key) else {
        return Ok(None);
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| TlsError::Certificate {
            path: cert_path.clone(),
            reason: e.to_string(),
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Certificate {
            path: cert_path.clone(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Certificate {
            path: cert_path.clone(),
            reason: "no CERTIFICATE block found".into(),
        });
    }
    // PrivateKeyDer::from_pem_file accepts PKCS#8 (RSA, ECDSA, Ed25519), PKCS#1 RSA and SEC1 EC keys.
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| TlsError::Key {
        path: key_path.clone(),
        reason: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // rustls implements only TLS 1.2 and 1.3; naming both keeps that explicit should defaults change.
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

/// Writes a self-signed certificate and key for `hostname` when `generate_self_signed` is on and
/// either file is missing. Returns true when files were written.
pub fn ensure_self_signed(cfg: &TlsConfig, hostname: &str) -> Result<bool, TlsError> {
    let (Some(cert_path), Some(key_path)) = (&cfg.certificate, &cfg.key) else {
        return Ok(false);
    };
    if !cfg.generate_self_signed || (cert_path.exists() && key_path.exists()) {
        return Ok(false);
    }
    let names = vec![
        hostname.to_string(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let generated =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    let io_err = |p: &Path, e: io::Error| TlsError::Generate(format!("{}: {e}", p.display()));
    for p in [cert_path, key_path] {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        }
    }
    write_private(key_path, generated.signing_key.serialize_pem().as_bytes())
        .map_err(|e| io_err(key_path, e))?;
    std::fs::write(cert_path, generated.cert.pem()).map_err(|e| io_err(cert_path, e))?;
    Ok(true)
}

fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// The acceptor in force, swapped on reload.
#[derive(Default)]
pub struct TlsHolder {
    current: RwLock<Option<TlsAcceptor>>,
}

impl TlsHolder {
    /// Holds `acceptor` (None when TLS is not configured).
    pub fn new(acceptor: Option<TlsAcceptor>) -> Self {
        TlsHolder {
            current: RwLock::new(acceptor),
        }
    }

    /// The acceptor for a handshake starting now.
    pub fn current(&self) -> Option<TlsAcceptor> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the acceptor for connections that start from now on.
    pub fn replace(&self, acceptor: Option<TlsAcceptor>) {
        match self.current.write() {
            Ok(mut g) => *g = acceptor,
            Err(poisoned) => *poisoned.into_inner() = acceptor,
        }
    }
}
