//! The backend itself: its options, the process-wide registry of mailbox states
//! ([`Shared`]), the [`Storage`] that opens a user, and the location template.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use parking_lot::Mutex;

use super::fsutil::blocking;
use super::mailbox::MailboxState;
use super::user::UserCtx;
use super::user_store::MaildirUser;
use super::{quota, watch};
use crate::limits::MAILBOX_STATE_CACHE;
use crate::storage::{Result, SpecialUse, Storage, StorageError, StorageUser, UserStore};

/// How the Maildir backend is set up (built by the lead from the config).
#[derive(Debug, Clone)]
pub struct MaildirOptions {
    /// Location template: `%u` full user name, `%n` local part, `%d` domain
    /// (empty when none), `%%` a percent sign, a leading `~` the home
    /// directory. Example: `/var/mail/%d/%n`, `~/Maildir`.
    pub location: String,
    /// Hierarchy separator on the wire (default `/`).
    pub separator: char,
    /// Fsync files and directories before acknowledging (turn off only for tests).
    pub fsync: bool,
    /// Default byte quota (0 = unlimited).
    pub quota_bytes: u64,
    /// Default message-count quota (0 = unlimited).
    pub quota_messages: u64,
    /// Mailboxes created (and subscribed) at login when missing.
    pub autocreate: Vec<(String, Option<SpecialUse>)>,
    /// Keep a full-text index beside each user's mail (`<root>/mailcove-fts/`, see
    /// [`crate::fts`]).
    pub fts: bool,
}

impl MaildirOptions {
    /// Options with defaults: separator `/`, fsync on, no quota, no autocreate.
    pub fn new(location: impl Into<String>) -> Self {
        MaildirOptions {
            location: location.into(),
            separator: '/',
            fsync: true,
            quota_bytes: 0,
            quota_messages: 0,
            autocreate: Vec::new(),
            fts: true,
        }
    }
}

/// The state shared by every user and session of the process.
pub(crate) struct Shared {
    pub(super) options: MaildirOptions,
    registry: Mutex<HashMap<PathBuf, Weak<MailboxState>>>,
    /// Recently used states kept alive without a view, so that deliveries
    /// and STATUS on a mailbox nobody has open do not reload its index
    /// every time. Bounded by [`MAILBOX_STATE_CACHE`].
    recent: Mutex<std::collections::VecDeque<Arc<MailboxState>>>,
    pub(super) watch: Mutex<watch::Watch>,
    /// Per-user change feeds and their inotify watch sets (NOTIFY).
    pub(super) feeds: super::feed::Feeds,
    /// Open full-text indexes by user root ([`super::fts`]).
    pub(super) fts: super::fts::OpenIndexes,
}

impl Shared {
    pub(super) fn lookup(&self, dir: &Path) -> Option<Arc<MailboxState>> {
        self.registry.lock().get(dir).and_then(Weak::upgrade)
    }

    pub(super) fn poke_all(&self) {
        let states: Vec<Arc<MailboxState>> = self
            .registry
            .lock()
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        for s in states {
            s.mark_dirty();
        }
    }

    /// The one state of `dir` in this process.
    pub(super) fn state(&self, dir: &Path, root: &Path) -> Arc<MailboxState> {
        let s = {
            let mut reg = self.registry.lock();
            match reg.get(dir).and_then(Weak::upgrade) {
                Some(s) => s,
                None => {
                    reg.retain(|_, w| w.strong_count() > 0);
                    let s = Arc::new(MailboxState::new(
                        dir.to_path_buf(),
                        root.to_path_buf(),
                        self.options.fsync,
                    ));
                    reg.insert(dir.to_path_buf(), Arc::downgrade(&s));
                    s
                }
            }
        };
        let mut recent = self.recent.lock();
        if recent.front().is_none_or(|f| !Arc::ptr_eq(f, &s)) {
            recent.retain(|r| !Arc::ptr_eq(r, &s));
            recent.push_front(s.clone());
            recent.truncate(MAILBOX_STATE_CACHE);
        }
        s
    }

    /// Forgets states of directories that were renamed or deleted, waking their views.
    pub(super) fn forget(&self, dirs: &[PathBuf]) {
        self.recent
            .lock()
            .retain(|r| !dirs.iter().any(|d| d.as_path() == r.dir()));
        let gone: Vec<Arc<MailboxState>> = {
            let mut reg = self.registry.lock();
            dirs.iter()
                .filter_map(|d| reg.remove(d))
                .filter_map(|w| w.upgrade())
                .collect()
        };
        for s in gone {
            s.poke();
        }
    }
}

/// The Maildir [`Storage`].
pub struct MaildirStorage {
    shared: Arc<Shared>,
}

impl MaildirStorage {
    /// Creates the backend; refuses a separator that cannot work.
    pub fn new(options: MaildirOptions) -> Result<Self> {
        let sep = options.separator;
        if !sep.is_ascii_punctuation()
            || sep == '&'
            || sep == '"'
            || sep == '\\'
            || sep == '%'
            || sep == '*'
        {
            return Err(StorageError::Invalid("unusable hierarchy separator"));
        }
        Ok(MaildirStorage {
            shared: Arc::new(Shared {
                options,
                registry: Mutex::new(HashMap::new()),
                recent: Mutex::new(std::collections::VecDeque::new()),
                watch: Mutex::new(watch::Watch::default()),
                feeds: super::feed::Feeds::default(),
                fts: super::fts::OpenIndexes::default(),
            }),
        })
    }

    /// The Maildir root of `user`: the user database's own location when it names one,
    /// else the configured template.
    pub fn user_root(&self, user: &StorageUser) -> Result<PathBuf> {
        match user.location.as_deref() {
            // A location mailcove cannot serve is the administrator's to fix, never the user's
            // fault: temporary (IMAP [UNAVAILABLE], POP3 SYS/TEMP, LMTP 451 so mail waits in
            // the MTA's queue), logged with the user and the location, as Dovecot defers.
            Some(own) => {
                let unusable = |why: &str| {
                    StorageError::Temporary(format!(
                        "user {}'s mail location {own:?}: {why}",
                        user.name
                    ))
                };
                let template = maildir_template(own).map_err(|e| unusable(&e.to_string()))?;
                if !(template.starts_with('/') || template.starts_with('~')) {
                    return Err(unusable("must be absolute or start with ~"));
                }
                expand_location(template, user).map_err(|e| unusable(&e.to_string()))
            }
            None => expand_location(&self.shared.options.location, user),
        }
    }
}

/// The Maildir path template inside a location written the Dovecot way:
/// `[maildir:]PATH[:KEY=VALUE...]`, e.g. `maildir:~/Maildir` or
/// `maildir:/var/vmail/%d/%n:LAYOUT=maildir++:INDEX=/var/index/%u`. That is what userdb `mail`
/// fields and `mail_location` hold, so a Dovecot user database works unchanged.
///
/// Only Maildir is stored. Options that place Dovecot's own index or control files are
/// accepted and have no effect (mailcove keeps its index inside the Maildir, and Dovecot's
/// files there are never read); any option that would change where mail or folders are
/// (`LAYOUT=fs`, `INBOX=`, `DIRNAME=`, ...) is refused, never silently ignored.
pub fn maildir_template(location: &str) -> Result<&str> {
    let location = location.trim();
    let (format, rest) = match location.split_once(':') {
        Some((f, r)) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_alphanumeric()) => (f, r),
        _ => ("maildir", location),
    };
    if !format.eq_ignore_ascii_case("maildir") {
        return Err(StorageError::Invalid(
            "mail location names a format other than maildir (mailcove stores Maildir only)",
        ));
    }
    let mut parts = rest.split(':');
    let path = parts.next().unwrap_or("");
    for option in parts {
        let (key, value) = option.split_once('=').unwrap_or((option, ""));
        let harmless = [
            "INDEX",
            "INDEXPVT",
            "CONTROL",
            "VOLATILEDIR",
            "ITERINDEX",
            "NO-NOSELECT",
        ];
        let ok = harmless.iter().any(|k| key.eq_ignore_ascii_case(k))
            || (key.eq_ignore_ascii_case("LAYOUT") && value.eq_ignore_ascii_case("maildir++"));
        if !ok {
            return Err(StorageError::Invalid(
                "mail location option not supported (mailcove reads LAYOUT=maildir++ and \
                 ignores INDEX, INDEXPVT, CONTROL, VOLATILEDIR, ITERINDEX, NO-NOSELECT)",
            ));
        }
    }
    if path.is_empty() {
        return Err(StorageError::Invalid("mail location has no path"));
    }
    Ok(path)
}

pub(super) fn path_safe(s: &str) -> bool {
    s != "." && s != ".." && !s.contains('/') && !s.chars().any(char::is_control)
}

/// Expands a location template for one user.
pub fn expand_location(template: &str, user: &StorageUser) -> Result<PathBuf> {
    let bad = StorageError::Invalid("user name unusable in a mail location");
    let (local, domain) = user.name.split_once('@').unwrap_or((&user.name, ""));
    if local.is_empty() || !path_safe(&user.name) || !path_safe(local) || !path_safe(domain) {
        return Err(bad);
    }
    let mut out = String::new();
    let mut rest = template;
    if let Some(r) = template.strip_prefix('~') {
        let home = user
            .home
            .as_ref()
            .and_then(|h| h.to_str())
            .ok_or(StorageError::Invalid(
                "location uses ~ but the user has no home",
            ))?;
        out.push_str(home);
        rest = r;
    }
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => out.push_str(&user.name),
            Some('n') => out.push_str(local),
            Some('d') => out.push_str(domain),
            Some('%') => out.push('%'),
            _ => return Err(StorageError::Invalid("unknown % variable in mail location")),
        }
    }
    let path = PathBuf::from(out);
    if !path.is_absolute() {
        return Err(StorageError::Invalid("mail location is not absolute"));
    }
    Ok(path)
}

#[async_trait]
impl Storage for MaildirStorage {
    async fn user(&self, user: &StorageUser) -> Result<Arc<dyn UserStore>> {
        let root = self.user_root(user)?;
        let opts = &self.shared.options;
        let pick = |v: Option<u64>, d: u64| match v.unwrap_or(d) {
            0 => None,
            n => Some(n),
        };
        let feed = self.shared.feeds.user(&root);
        let ctx = Arc::new(UserCtx {
            shared: self.shared.clone(),
            feed,
            origin: crate::storage::feed::next_origin(),
            root,
            limits: quota::Limits {
                bytes: pick(user.quota_bytes, opts.quota_bytes),
                messages: pick(user.quota_messages, opts.quota_messages),
            },
        });
        let c = ctx.clone();
        blocking(move || c.init()).await?;
        Ok(Arc::new(MaildirUser(ctx)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(location: Option<&str>) -> StorageUser {
        StorageUser {
            name: "ann@example.org".into(),
            home: Some(PathBuf::from("/home/ann")),
            location: location.map(str::to_string),
            ..StorageUser::default()
        }
    }

    #[test]
    fn dovecot_locations_give_the_maildir_template() {
        for (location, template) in [
            ("~/Maildir", "~/Maildir"),
            ("/var/mail/%d/%n", "/var/mail/%d/%n"),
            ("maildir:~/Maildir", "~/Maildir"),
            ("MAILDIR:/srv/%u", "/srv/%u"),
            ("maildir:/v/%d/%n:LAYOUT=maildir++", "/v/%d/%n"),
            ("maildir:/v/%n:INDEX=/idx/%u:CONTROL=/ctl/%u", "/v/%n"),
            ("  maildir:/v/%n  ", "/v/%n"),
        ] {
            assert_eq!(
                maildir_template(location).ok(),
                Some(template),
                "{location}"
            );
        }
        for bad in [
            "mdbox:~/mdbox",
            "sdbox:/v/%n",
            "mbox:~/mail:INBOX=/var/mail/%u",
            "maildir:~/Maildir:LAYOUT=fs",
            "maildir:~/Maildir:INBOX=~/Maildir/.INBOX",
            "maildir:",
            "maildir::INDEX=/x",
        ] {
            assert!(maildir_template(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_users_own_location_wins_over_the_template() {
        let st = MaildirStorage::new(MaildirOptions::new("/var/mail/%n")).unwrap();
        let root = |u: &StorageUser| st.user_root(u).ok();
        assert_eq!(root(&user(None)), Some(PathBuf::from("/var/mail/ann")));
        assert_eq!(
            root(&user(Some("maildir:~/Mail"))),
            Some(PathBuf::from("/home/ann/Mail"))
        );
        assert_eq!(
            root(&user(Some("maildir:/vmail/%d/%n:LAYOUT=maildir++"))),
            Some(PathBuf::from("/vmail/example.org/ann"))
        );
        assert_eq!(root(&user(Some("maildir:Mail"))), None, "relative");
        assert_eq!(root(&user(Some("mdbox:~/mdbox"))), None, "another format");
    }
}
