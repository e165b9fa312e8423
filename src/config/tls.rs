//! `[tls]`: the certificate and key shared by every TLS listener.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ListenerConfig, Problems, Protocol, TlsMode};

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

impl TlsConfig {
    /// A certificate and key are needed as soon as one IMAP or POP3 listener uses TLS.
    pub(super) fn validate(&self, listeners: &[ListenerConfig], out: &mut Problems) {
        let needs_tls = listeners
            .iter()
            .any(|l| l.tls != TlsMode::None && l.protocol != Protocol::Lmtp);
        if needs_tls && (self.certificate.is_none() || self.key.is_none()) {
            out.add(
                "tls",
                "a listener uses TLS, so tls.certificate and tls.key must be set",
            );
        }
    }
}
