//! The client side of SCRAM-SHA-256's arithmetic (RFC 5802 section 3, RFC 7677), written from
//! the RFC on the `hmac`/`sha2` crates, independently of the server's code. The exchanges around
//! it differ per protocol (IMAP/POP3 continuations, ManageSieve quoted strings) and stay with
//! their tests.

use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::{Digest as _, Sha256};

pub fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// PBKDF2-HMAC-SHA-256 with one output block (RFC 8018 5.2), which is RFC 5802's `Hi`.
pub fn hi(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut block = salt.to_vec();
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac256(password, &block);
    let mut out = u.clone();
    for _ in 1..iterations {
        u = hmac256(password, &u);
        out.iter_mut().zip(&u).for_each(|(o, x)| *o ^= x);
    }
    out
}

/// The attributes of a server-first message in order (`r=`, `s=`, `i=`): the combined nonce,
/// the salt (still base64) and the iteration count.
pub fn server_first_attrs(server_first: &str) -> (&str, &str, u32) {
    let attrs: Vec<(&str, &str)> = server_first
        .split(',')
        .map(|a| a.split_once('=').unwrap())
        .collect();
    (attrs[0].1, attrs[1].1, attrs[2].1.parse().unwrap())
}

/// For `password` with the server's `salt` and `iterations` over `auth_message`: the
/// ClientProof the client sends and the ServerSignature the server must answer with.
pub fn proof_and_signature(
    password: &str,
    salt: &[u8],
    iterations: u32,
    auth_message: &str,
) -> (Vec<u8>, Vec<u8>) {
    let salted = hi(password.as_bytes(), salt, iterations);
    let client_key = hmac256(&salted, b"Client Key");
    let stored = Sha256::digest(&client_key);
    let sig = hmac256(&stored, auth_message.as_bytes());
    let proof = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
    let server_key = hmac256(&salted, b"Server Key");
    (proof, hmac256(&server_key, auth_message.as_bytes()))
}
