//! Generic mailbox-name checks, done before any backend sees a name (as
//! Dovecot's public storage wrappers do), so every backend refuses the same
//! names.

use super::{Result, StorageError};
use crate::limits::{MAX_MAILBOX_DEPTH, MAX_MAILBOX_NAME_BYTES};

/// A validated mailbox name split at the wire separator; `INBOX` (in any
/// case) as first component is normalised to `INBOX`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxName {
    components: Vec<String>,
}

impl MailboxName {
    /// Validates `name` (UTF-8, `sep` between levels). With
    /// `allow_trailing_sep` one trailing separator is dropped (CREATE `a/`).
    pub fn parse(name: &str, sep: char, allow_trailing_sep: bool) -> Result<MailboxName> {
        let trimmed = match name.strip_suffix(sep) {
            Some(t) if allow_trailing_sep => t,
            _ => name,
        };
        if trimmed.is_empty() {
            return Err(StorageError::InvalidName("empty name"));
        }
        if trimmed.len() > MAX_MAILBOX_NAME_BYTES {
            return Err(StorageError::InvalidName("name too long"));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(StorageError::InvalidName("control character in name"));
        }
        let mut components = Vec::new();
        for (i, c) in trimmed.split(sep).enumerate() {
            if c.is_empty() {
                return Err(StorageError::InvalidName("empty hierarchy level"));
            }
            if c == "." || c == ".." {
                return Err(StorageError::InvalidName("'.' or '..' as hierarchy level"));
            }
            if c.contains('/') {
                return Err(StorageError::InvalidName("'/' in a hierarchy level"));
            }
            if i == 0 && c.eq_ignore_ascii_case("INBOX") {
                components.push("INBOX".to_owned());
            } else {
                components.push(c.to_owned());
            }
            if components.len() > MAX_MAILBOX_DEPTH {
                return Err(StorageError::InvalidName("too many hierarchy levels"));
            }
        }
        Ok(MailboxName { components })
    }

    /// Builds a name from already-validated components (backends listing disk).
    pub fn from_components(components: Vec<String>) -> MailboxName {
        MailboxName { components }
    }

    /// True for INBOX itself (not its children).
    pub fn is_inbox(&self) -> bool {
        self.components.len() == 1 && self.components.first().is_some_and(|c| c == "INBOX")
    }

    /// The hierarchy levels.
    pub fn components(&self) -> &[String] {
        &self.components
    }

    /// The name with `sep` between levels.
    pub fn to_wire(&self, sep: char) -> String {
        let mut s = String::new();
        for (i, c) in self.components.iter().enumerate() {
            if i > 0 {
                s.push(sep);
            }
            s.push_str(c);
        }
        s
    }

    /// True when `self` is strictly below `other` in the hierarchy.
    pub fn is_below(&self, other: &MailboxName) -> bool {
        self.components.len() > other.components.len()
            && self.components.starts_with(&other.components)
    }

    /// Every proper ancestor, outermost first.
    pub fn ancestors(&self) -> impl Iterator<Item = MailboxName> + '_ {
        (1..self.components.len()).map(|n| MailboxName {
            components: self.components.iter().take(n).cloned().collect(),
        })
    }

    /// `self` with the prefix `from` replaced by `to` (for renames of children).
    pub fn reparent(&self, from: &MailboxName, to: &MailboxName) -> Option<MailboxName> {
        let rest = self.components.get(from.components.len()..)?;
        if !self.components.starts_with(&from.components) {
            return None;
        }
        let mut components = to.components.clone();
        components.extend(rest.iter().cloned());
        Some(MailboxName { components })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates() {
        let n = MailboxName::parse("inbox/Sub", '/', false);
        assert_eq!(n.map(|n| n.to_wire('/')).ok().as_deref(), Some("INBOX/Sub"));
        assert!(MailboxName::parse("a/", '/', true).is_ok());
        assert!(MailboxName::parse("a/", '/', false).is_err());
        assert!(MailboxName::parse("/a", '/', false).is_err());
        assert!(MailboxName::parse("a//b", '/', false).is_err());
        assert!(MailboxName::parse("a/../b", '/', false).is_err());
        assert!(MailboxName::parse("a\0b", '/', false).is_err());
        assert!(MailboxName::parse(&"x".repeat(256), '/', false).is_err());
        assert!(MailboxName::parse("a.b", '.', false).is_ok());
        assert!(MailboxName::parse("a/b", '.', false).is_err());
    }

    #[test]
    fn hierarchy() {
        let parse = |s| MailboxName::parse(s, '/', false).ok();
        let (Some(a), Some(ab), Some(x)) = (parse("a"), parse("a/b/c"), parse("x")) else {
            panic!("valid names refused");
        };
        assert!(ab.is_below(&a));
        assert!(!a.is_below(&a));
        assert_eq!(ab.ancestors().count(), 2);
        assert_eq!(
            ab.reparent(&a, &x).map(|n| n.to_wire('/')).as_deref(),
            Some("x/b/c")
        );
    }
}
