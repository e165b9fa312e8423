//! Test certificates: a CA of the test's own and a server certificate for 127.0.0.1 it signed
//! (rcgen). Used where a client must verify a server: slapd (tests/ldap_common) and PostgreSQL
//! (tests/pg_tls.rs).
//!
//! Self-contained, so a harness that does not use the wire harness includes it with
//! `#[path = "common/pki.rs"] mod pki;` (from `tests/`; `"../common/pki.rs"` from a folder
//! beside it). Not a module of `tests/common` itself: a test that uses both would load it twice.
#![allow(dead_code)]

/// A CA and a server certificate for `127.0.0.1` it signed, all PEM.
pub struct Pki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

pub fn make_pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mailcove test CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "127.0.0.1");
    let cert = params.signed_by(&key, &issuer).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}
