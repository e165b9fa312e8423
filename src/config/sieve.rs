//! `[sieve]`: where users' Sieve scripts live (Pigeonhole's layout), the global scripts run
//! before and after them, and how vacation replies and redirects are sent.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Problems;

/// `[sieve]`: Sieve filtering at delivery (LMTP and `deliver`) and ManageSieve.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct SieveConfig {
    /// Run users' scripts at delivery. Off: mail is delivered as without Sieve.
    pub enabled: bool,
    /// Dovecot's `sieve` setting: `file:DIR;active=LINK`, `~/` meaning the user's home.
    /// Default `file:~/sieve;active=~/.dovecot.sieve`, Pigeonhole's own default, so a
    /// migrating site's scripts are found where they are.
    pub sieve: String,
    /// Scripts (files, or directories whose `*.sieve` files run in name order) run before the
    /// user's script (Dovecot's `sieve_before`).
    pub sieve_before: Vec<PathBuf>,
    /// Scripts run after the user's script (Dovecot's `sieve_after`).
    pub sieve_after: Vec<PathBuf>,
    /// The directory of `include :global` scripts (Dovecot's `sieve_global`).
    pub sieve_global: Option<PathBuf>,
    /// Where vacation replies and redirects are submitted: `host:port` of an SMTP server.
    /// Exactly one of `submission` and `sendmail` is used; `submission` wins when both are set.
    pub submission: Option<String>,
    /// A sendmail-compatible binary (`/usr/sbin/sendmail`), called as `sendmail -i -f FROM -- TO`.
    pub sendmail: Option<PathBuf>,
    /// ManageSieve: largest script a user may store, in octets (Pigeonhole's
    /// `sieve_max_script_size`). PUTSCRIPT of a larger one is `NO (QUOTA/MAXSIZE)`.
    pub max_script_size: usize,
    /// ManageSieve: most scripts one user may store (Pigeonhole's `sieve_quota_max_scripts`).
    /// PUTSCRIPT of one more is `NO (QUOTA/MAXSCRIPTS)`.
    pub max_scripts: usize,
    /// The header holding a spam scanner's numeric score for `spamtest`/`spamtestplus` (RFC
    /// 5235), e.g. `X-Spam-Score` (Pigeonhole's `sieve_spamtest_status_header` with
    /// `sieve_spamtest_status_type = score`, without the regex part): the first number in the
    /// value counts (`7.5`, `7.5 (spam)`, `Yes, score=7.5`). Unset: `spamtest` is always 0.
    pub spamtest_header: Option<String>,
    /// The score that means certain spam: `spamtest` 10 and `spamtestplus :percent` 100
    /// (Pigeonhole's `sieve_spamtest_max_value`). Default 10.
    pub spamtest_max: f64,
    /// The header holding a virus scanner's verdict for `virustest`: a digit 0-5 (RFC 5235
    /// section 3.3), or text (`infected`/`yes...` is 5, anything else 1). Pigeonhole's
    /// `sieve_virustest_status_header`. Unset: `virustest` is always 0.
    pub virustest_header: Option<String>,
}

impl Default for SieveConfig {
    fn default() -> Self {
        SieveConfig {
            enabled: true,
            sieve: "file:~/sieve;active=~/.dovecot.sieve".to_string(),
            sieve_before: Vec::new(),
            sieve_after: Vec::new(),
            sieve_global: None,
            submission: None,
            sendmail: None,
            max_script_size: crate::limits::MANAGESIEVE_DEFAULT_MAX_SCRIPT_SIZE,
            max_scripts: crate::limits::MANAGESIEVE_DEFAULT_MAX_SCRIPTS,
            spamtest_header: None,
            spamtest_max: 10.0,
            virustest_header: None,
        }
    }
}

/// Where one user's scripts are: the directory of `NAME.sieve` files and the symlink that
/// names the active one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptLocation {
    /// The directory holding `NAME.sieve` files (`~/sieve`).
    pub dir: PathBuf,
    /// The symlink to the active script (`~/.dovecot.sieve`), pointing into `dir`.
    pub active: PathBuf,
}

impl SieveConfig {
    /// The user's script location for `home`, from the `sieve` setting; `None` if the setting
    /// is not understood (validation reports it) or uses `~/` and the user has no home.
    pub fn locate(&self, home: Option<&Path>) -> Option<ScriptLocation> {
        let (dir, active) = parse_location(&self.sieve)?;
        let expand = |p: &str| -> Option<PathBuf> {
            match p.strip_prefix("~/") {
                Some(rest) => Some(home?.join(rest)),
                None if p == "~" => home.map(Path::to_path_buf),
                None => Some(PathBuf::from(p)),
            }
        };
        Some(ScriptLocation {
            dir: expand(dir)?,
            active: expand(active)?,
        })
    }

    pub(super) fn validate(&self, out: &mut Problems) {
        if parse_location(&self.sieve).is_none() {
            out.add(
                "sieve.sieve",
                "must be file:DIR;active=LINK, e.g. file:~/sieve;active=~/.dovecot.sieve",
            );
        }
        if let Some(sub) = &self.submission
            && !sub
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
        {
            out.add("sieve.submission", "must be HOST:PORT, e.g. 127.0.0.1:25");
        }
        if self.max_script_size == 0 {
            out.add("sieve.max_script_size", "must be at least 1");
        }
        if self.max_script_size as u64 > crate::limits::MANAGESIEVE_MAX_DISCARD {
            out.add(
                "sieve.max_script_size",
                format!(
                    "must be at most {} octets",
                    crate::limits::MANAGESIEVE_MAX_DISCARD
                ),
            );
        }
        if self.max_scripts == 0 {
            out.add("sieve.max_scripts", "must be at least 1");
        }
        for (key, header) in [
            ("sieve.spamtest_header", &self.spamtest_header),
            ("sieve.virustest_header", &self.virustest_header),
        ] {
            if let Some(h) = header
                && !valid_field_name(h)
            {
                out.add(
                    key,
                    "must be a header field name (printable ASCII, no colon), e.g. X-Spam-Score",
                );
            }
        }
        if !(self.spamtest_max.is_finite() && self.spamtest_max > 0.0) {
            out.add("sieve.spamtest_max", "must be a number greater than 0");
        }
    }
}

/// RFC 5322 section 3.6.8 `field-name`: printable ASCII except the colon, at least one.
fn valid_field_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

/// `file:DIR;active=LINK` into `(DIR, LINK)`.
fn parse_location(spec: &str) -> Option<(&str, &str)> {
    let rest = spec.strip_prefix("file:")?;
    let mut dir = None;
    let mut active = None;
    for (i, part) in rest.split(';').enumerate() {
        if i == 0 {
            dir = Some(part);
        } else if let Some(link) = part.strip_prefix("active=") {
            active = Some(link);
        } else {
            return None;
        }
    }
    match (dir, active) {
        (Some(d), Some(a)) if !d.is_empty() && !a.is_empty() => Some((d, a)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_location_is_pigeonholes() {
        let c = SieveConfig::default();
        let loc = c.locate(Some(Path::new("/home/u"))).unwrap();
        assert_eq!(loc.dir, PathBuf::from("/home/u/sieve"));
        assert_eq!(loc.active, PathBuf::from("/home/u/.dovecot.sieve"));
        assert_eq!(c.locate(None), None);
    }

    #[test]
    fn bad_location_is_refused() {
        assert_eq!(parse_location("file:~/sieve"), None);
        assert_eq!(parse_location("dict:x;active=y"), None);
        assert_eq!(parse_location("file:/s;active=/a"), Some(("/s", "/a")));
    }

    #[test]
    fn spamtest_keys_are_validated() {
        let mut c = SieveConfig {
            spamtest_header: Some("X-Spam-Score".into()),
            virustest_header: Some("X-Virus-Scan".into()),
            ..SieveConfig::default()
        };
        let mut p = Problems::default();
        c.validate(&mut p);
        assert!(p.0.is_empty(), "{p:?}");
        c.spamtest_header = Some("X-Spam-Score: (.*)".into());
        c.virustest_header = Some(String::new());
        c.spamtest_max = 0.0;
        let mut p = Problems::default();
        c.validate(&mut p);
        let text = format!("{p:?}");
        for key in [
            "sieve.spamtest_header",
            "sieve.virustest_header",
            "sieve.spamtest_max",
        ] {
            assert!(text.contains(key), "{key} in {text}");
        }
    }
}
