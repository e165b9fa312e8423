//! SASL decoders (`mailcove::auth::sasl::SaslExchange`): a mechanism name,
//! an optional initial response and up to four client lines.
//!
//! Input layout: lines separated by `\n`; line 0 is the mechanism, line 1
//! the initial response (`-` alone means none), the rest are answers.
//!
//! Invariants: no panic; fields of finished credentials respect the limits;
//! PLAIN credentials re-encoded give the same credentials; an exchange ends
//! (Done or error) within the mechanism's number of steps and answers
//! `Finished` afterwards.

use mailcove::auth::sasl::{Mechanism, SaslError, SaslExchange, Step, encode_challenge};
use mailcove::limits::{MAX_OAUTH_TOKEN_LEN, MAX_PASSWORD_LEN, MAX_SASL_FIELD};

fn check(step: &Step) {
    if let Step::Done(c) = step {
        assert!(!c.authcid.is_empty() && c.authcid.len() <= MAX_SASL_FIELD);
        assert!(!c.authcid.contains('\0'));
        assert!(!c.password.is_empty() && c.password.len() <= MAX_PASSWORD_LEN);
        if let Some(z) = &c.authzid {
            assert!(z.eq_ignore_ascii_case(&c.authcid));
        }
    }
}

/// Checks one input; panics on a violated invariant.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let mechanism = lines.next().unwrap_or_default();
    let initial = lines.next().filter(|l| *l != "-");
    let Ok((mut ex, mut step)) = SaslExchange::start(mechanism, initial) else {
        return;
    };
    let mechanism = ex.mechanism();
    // PLAIN finishes after one response, LOGIN after two.
    let mut steps_left = match mechanism {
        Mechanism::Plain => 1,
        Mechanism::Login => 2,
        // One message carries the token.
        Mechanism::OAuthBearer | Mechanism::XOAuth2 => 1,
        // SCRAM runs through `auth::scram`; `start` refuses it, so it never gets here.
        Mechanism::ScramSha1
        | Mechanism::ScramSha1Plus
        | Mechanism::ScramSha256
        | Mechanism::ScramSha256Plus => panic!("SaslExchange started a SCRAM mechanism"),
    } - usize::from(initial.is_some());
    loop {
        check(&step);
        if let Step::Bearer(b) = &step {
            assert!(mechanism.is_bearer() && b.mechanism == mechanism);
            assert!(!b.token.is_empty() && b.token.len() <= MAX_OAUTH_TOKEN_LEN);
            if let Some(u) = &b.user {
                assert!(!u.is_empty() && u.len() <= MAX_SASL_FIELD && !u.contains('\0'));
            }
            assert_eq!(ex.step("=").err(), Some(SaslError::Finished));
            return;
        }
        if let Step::Done(c) = &step {
            if mechanism == Mechanism::Plain {
                let mut msg = c.authzid.clone().unwrap_or_default().into_bytes();
                msg.push(0);
                msg.extend_from_slice(c.authcid.as_bytes());
                msg.push(0);
                msg.extend_from_slice(&c.password);
                let again = SaslExchange::start("PLAIN", Some(&encode_challenge(&msg)));
                match again {
                    Ok((_, Step::Done(d))) => {
                        assert_eq!(d.authzid, c.authzid);
                        assert_eq!(d.authcid, c.authcid);
                        assert_eq!(d.password, c.password);
                    }
                    other => panic!("re-encoded PLAIN credentials refused: {other:?}"),
                }
            }
            assert_eq!(ex.step("=").err(), Some(SaslError::Finished));
            return;
        }
        let Some(line) = lines.next() else { return };
        assert!(steps_left > 0, "exchange did not finish in time");
        steps_left -= 1;
        match ex.step(line) {
            Ok(s) => step = s,
            Err(_) => {
                assert_eq!(ex.step("=").err(), Some(SaslError::Finished));
                return;
            }
        }
    }
}
