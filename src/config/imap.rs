//! `[imap]`: IMAP settings that are neither limits nor timeouts. For now the two server entries
//! of METADATA (RFC 5464 3.2.1.1), which every user reads and none may change.

use serde::{Deserialize, Serialize};

use super::Problems;
use crate::limits::MAX_METADATA_VALUE_BYTES;

/// `[imap]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct ImapConfig {
    /// The `/shared/admin` server entry: a URI to reach the administrator
    /// (`mailto:postmaster@example.org`, `tel:...`); unset, GETMETADATA answers NIL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_admin: Option<String>,
    /// The `/shared/comment` server entry: a note about the server for every user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_comment: Option<String>,
}

impl ImapConfig {
    pub(super) fn validate(&self, out: &mut Problems) {
        for (key, value) in [
            ("imap.metadata_admin", &self.metadata_admin),
            ("imap.metadata_comment", &self.metadata_comment),
        ] {
            let Some(v) = value else { continue };
            if v.len() > MAX_METADATA_VALUE_BYTES {
                out.add(
                    key,
                    format!("must be at most {MAX_METADATA_VALUE_BYTES} bytes"),
                );
            }
            if v.chars().any(|c| c.is_control() && c != '\r' && c != '\n') {
                out.add(key, "must not contain control characters");
            }
        }
        if let Some(admin) = &self.metadata_admin
            && !is_uri(admin)
        {
            // RFC 5464 3.2.1.1: "The value MUST be a URI (e.g., a mailto: or tel: URL)."
            out.add(
                "imap.metadata_admin",
                "must be a URI such as \"mailto:postmaster@example.org\"",
            );
        }
    }
}

/// True when `s` starts with a URI scheme and a colon (RFC 3986 3.1:
/// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`) and holds no space.
fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
        && !s.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_entry_must_be_a_uri() {
        assert!(is_uri("mailto:postmaster@example.org"));
        assert!(is_uri("tel:+1-555-0100"));
        for bad in [
            "postmaster@example.org",
            ":x",
            "1x:y",
            "mailto:",
            "mailto:a b",
        ] {
            assert!(!is_uri(bad), "{bad}");
        }
        let mut out = Problems::default();
        ImapConfig {
            metadata_admin: Some("postmaster".into()),
            metadata_comment: Some("line\u{7}".into()),
        }
        .validate(&mut out);
        let keys: Vec<&str> = out.0.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["imap.metadata_comment", "imap.metadata_admin"]);
    }
}
