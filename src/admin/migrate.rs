//! `mailcove migrate --from A.toml --to B.toml [--user NAME]...`: copies users' mail from the
//! storage backend of one configuration to that of another (Maildir to PostgreSQL and back),
//! through the storage traits only, so clients notice nothing: every mailbox keeps its
//! UIDVALIDITY and every message its UID, flags, keywords and INTERNALDATE
//! ([`UserStore::import_mailbox`], [`UserStore::import_messages`]); subscriptions, special-use
//! attributes and METADATA entries come along.
//!
//! # Passes
//!
//! The source may be live. A user is copied in passes; each pass reads every source mailbox's
//! UID list and brings the target mailbox in line with it:
//!
//! 1. messages the target lacks are imported under their UIDs, in batches of at most
//!    [`MIGRATE_BATCH_MESSAGES`] / [`MIGRATE_BATCH_BYTES`], each stored all or none and durable
//!    before the next is read;
//! 2. flags and keywords that differ are set as the source has them;
//! 3. messages the target has below the source's UIDNEXT that the source no longer has (expunged
//!    there meanwhile) are expunged from the target;
//! 4. the target's UIDNEXT is raised to the source's, so mail delivered to the target after the
//!    cut-over gets UIDs above every UID a client saw on the source.
//!
//! Passes repeat until one changes nothing, so mail that arrives during a pass is copied by the
//! next; `--settle-ms` waits once more after such a quiet pass and looks again. A source that is
//! still changing after [`MIGRATE_MAX_PASSES`] passes is an error. Then subscriptions and
//! METADATA are set as the source has them, and every mailbox is verified: the same UIDs (below
//! the source's UIDNEXT of the last pass; later mail is the next run's), flags, keywords,
//! INTERNALDATEs, and the SHA-256 of every message's bytes read back from both sides.
//!
//! # Resuming
//!
//! Everything is compared by UID, so a run that was interrupted, or limited to some users, is
//! completed by running it again: a second run copies only what is missing, and says it copied
//! nothing when nothing was. A target mailbox that holds messages under another UIDVALIDITY is
//! not touched: the user's migration stops with an error naming it. Mailboxes that exist only in
//! the target are left alone.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::auth::UserInfo;
use crate::config::Config;
use crate::limits::{
    MBOX_CHUNK_BYTES, MIGRATE_BATCH_BYTES, MIGRATE_BATCH_MESSAGES, MIGRATE_MAX_PASSES,
};
use crate::server::privdrop;
use crate::storage::{
    IMPORT_OTHER_UIDVALIDITY, ImportMessage, OpenOptions, SpecialUse, Storage, StorageError,
    StoreOp, StoreRequest, SystemFlags, UserStore, View,
};

/// `mailcove migrate` arguments.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Configuration whose mail storage is copied from.
    #[arg(long)]
    pub from: PathBuf,
    /// Configuration whose mail storage is copied to.
    #[arg(long)]
    pub to: PathBuf,
    /// A user to migrate (repeat for more); without it, every user of the source's user database.
    #[arg(long = "user", short = 'u')]
    pub users: Vec<String>,
    /// After a pass that found nothing to copy, wait this many milliseconds and look again
    /// (once more per quiet spell), so mail still arriving at a live source is copied too.
    #[arg(long, default_value_t = 0)]
    pub settle_ms: u64,
}

/// How the source is read: read-only, taking nothing (`\Recent`) from the user's sessions.
const SOURCE_OPEN: OpenOptions = OpenOptions {
    read_only: true,
    claim_recent: false,
    watch: false,
};

/// How the target is written (flags, expunges): no `\Recent` taken either.
const TARGET_OPEN: OpenOptions = OpenOptions {
    read_only: false,
    claim_recent: false,
    watch: false,
};

/// Runs `mailcove migrate`.
pub fn run(args: MigrateArgs) -> Result<(), String> {
    let from = load(&args.from)?;
    let to = load(&args.to)?;
    let users = source_users(&from, &args.users)?;
    // The target's user database may place a user's mail elsewhere (its `mail` field); a user it
    // does not know gets the source's entry.
    let target_users: Vec<UserInfo> = users
        .iter()
        .map(|u| target_user(&to, u))
        .collect::<Result<_, _>>()?;
    // Started as root, become the mail user of the side whose files are written: the target's,
    // or the source's when the target is a database (reading a Maildir also writes its index),
    // so nothing is left owned by root.
    let owner = if crate::storage::postgres::is_location(&to.mail.location) {
        &from
    } else {
        &to
    };
    let id = privdrop::resolve(owner.server.user.as_deref(), owner.server.group.as_deref())
        .map_err(|e| e.to_string())?;
    if let Some(id) = id {
        privdrop::drop_to(id).map_err(|e| e.to_string())?;
    }
    let source = storage(&from, &args.from)?;
    let target = storage(&to, &args.to)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let names = Names {
        from: from.mail.separator,
        to: to.mail.separator,
    };
    let settle = std::time::Duration::from_millis(args.settle_ms);
    let mut total = Totals::default();
    let mut failed = Vec::new();
    for (info, target_info) in users.iter().zip(&target_users) {
        let started = std::time::Instant::now();
        let done = rt.block_on(async {
            let src = source
                .user(&crate::setup::storage_user(info))
                .await
                .map_err(|e| format!("source: {e}"))?;
            let dst = target
                .user(&crate::setup::storage_user(target_info))
                .await
                .map_err(|e| format!("target: {e}"))?;
            let mut m = Migration {
                user: &info.name,
                src: &*src,
                dst: &*dst,
                names,
                settle,
                totals: Totals::default(),
            };
            m.run().await?;
            Ok::<Totals, String>(m.totals)
        });
        match done {
            Ok(t) => {
                println!(
                    "{}: {} mailbox(es), {} message(s) verified, {} copied in {:.1} s",
                    info.name,
                    t.mailboxes,
                    t.verified,
                    t.copied,
                    started.elapsed().as_secs_f64()
                );
                total.add(&t);
            }
            Err(e) => {
                eprintln!("mailcove: migrate: {}: {e}", info.name);
                failed.push(info.name.clone());
            }
        }
    }
    if !failed.is_empty() {
        return Err(format!(
            "migration of {} user(s) failed ({}); the others are verified; run again to resume",
            failed.len(),
            failed.join(", ")
        ));
    }
    if total.copied == 0 {
        println!(
            "nothing to copy: {} user(s) already in the target, {} message(s) verified",
            users.len(),
            total.verified
        );
    } else {
        println!(
            "migrated {} user(s): {} message(s) copied, {} verified",
            users.len(),
            total.copied,
            total.verified
        );
    }
    Ok(())
}

fn load(path: &std::path::Path) -> Result<Config, String> {
    let mut config = Config::load(path).map_err(|e| {
        let first = e.to_string().lines().next().unwrap_or_default().to_string();
        format!("{}: {first}", path.display())
    })?;
    if crate::setup::is_memory_location(&config.mail.location) {
        return Err(format!(
            "{}: mail.location = \"memory:\" keeps mail in the daemon's memory, where a \
             separate process cannot reach it",
            path.display()
        ));
    }
    // This process only copies: the daemon indexes what it finds (searches scan meanwhile).
    config.mail.fts = false;
    Ok(config)
}

fn storage(config: &Config, path: &std::path::Path) -> Result<Arc<dyn Storage>, String> {
    crate::setup::storage_backend(config)
        .map_err(|e| format!("{}: mail storage: {e}", path.display()))
}

/// The users named, looked up in the source's user database; or every user it can list.
fn source_users(config: &Config, named: &[String]) -> Result<Vec<UserInfo>, String> {
    let auth =
        || crate::setup::lookup_authenticator(config).map_err(|e| format!("source users: {e}"));
    if !named.is_empty() {
        let auth = auth()?;
        return named
            .iter()
            .map(|name| {
                auth.lookup_user_blocking(name, "admin")
                    .map_err(|e| format!("source user database: {e}"))?
                    .ok_or_else(|| format!("no such user {name:?} in the source's user database"))
            })
            .collect();
    }
    if config.auth.backend == crate::config::AuthBackend::UsersFile {
        return crate::auth::admin::user_list(&config.auth.users_file)
            .map_err(|e| format!("source users file: {e}"));
    }
    auth()?
        .all_users_blocking()
        .map_err(|e| {
            format!("the source's user database cannot list its users ({e}): name them with --user")
        })?
        .ok_or_else(|| {
            "the source's user database cannot list its users: name them with --user".to_string()
        })
}

fn target_user(config: &Config, source: &UserInfo) -> Result<UserInfo, String> {
    let Ok(auth) = crate::setup::lookup_authenticator(config) else {
        return Ok(source.clone());
    };
    match auth.lookup_user_blocking(&source.name, "admin") {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Ok(source.clone()),
        Err(e) => Err(format!("target user database: {e}")),
    }
}

/// The hierarchy separators of both sides: mailbox names cross the traits with the configured
/// one.
#[derive(Debug, Clone, Copy)]
struct Names {
    from: char,
    to: char,
}

impl Names {
    /// A source name as the target spells it.
    fn target(&self, name: &str) -> String {
        if self.from == self.to {
            return name.to_owned();
        }
        name.split(self.from)
            .collect::<Vec<_>>()
            .join(&self.to.to_string())
    }
}

/// What a run did.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    mailboxes: u64,
    copied: u64,
    verified: u64,
}

impl Totals {
    fn add(&mut self, o: &Totals) {
        self.mailboxes += o.mailboxes;
        self.copied += o.copied;
        self.verified += o.verified;
    }
}

/// What one pass did to one mailbox.
#[derive(Debug, Default, Clone, Copy)]
struct PassCounts {
    copied: u64,
    flags: u64,
    expunged: u64,
}

/// One message's flags as compared between the sides: system flags and keyword names, sorted.
type FlagKey = (u8, Vec<String>);

fn flag_key(view: &View, meta: &crate::storage::MessageMeta) -> FlagKey {
    let mut k: Vec<String> = view
        .keyword_names(&meta.flags.keywords)
        .into_iter()
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect();
    k.sort();
    (meta.flags.system.0, k)
}

/// One user's migration.
struct Migration<'a> {
    user: &'a str,
    src: &'a dyn UserStore,
    dst: &'a dyn UserStore,
    names: Names,
    settle: std::time::Duration,
    totals: Totals,
}

impl Migration<'_> {
    fn progress(&self, mailbox: &str, what: std::fmt::Arguments<'_>) {
        eprintln!("migrate: {}: {mailbox}: {what}", self.user);
    }

    async fn run(&mut self) -> Result<(), String> {
        let mut bounds: HashMap<String, u32> = HashMap::new();
        let mut waited = false;
        let mut pass = 0u32;
        loop {
            pass += 1;
            if pass > MIGRATE_MAX_PASSES {
                return Err(format!(
                    "the source still changed after {MIGRATE_MAX_PASSES} passes: stop deliveries \
                     to it and run again"
                ));
            }
            let mut changed = 0u64;
            for (name, special) in self.source_mailboxes().await? {
                let Some((counts, bound)) = self.sync_mailbox(&name, special, pass).await? else {
                    bounds.remove(&name);
                    continue;
                };
                bounds.insert(name, bound);
                self.totals.copied += counts.copied;
                changed += counts.copied + counts.flags + counts.expunged;
            }
            if changed > 0 {
                waited = false;
                continue;
            }
            if !self.settle.is_zero() && !waited {
                eprintln!(
                    "migrate: {}: pass {pass} changed nothing; settling {} ms",
                    self.user,
                    self.settle.as_millis()
                );
                tokio::time::sleep(self.settle).await;
                waited = true;
                continue;
            }
            break;
        }
        self.subscriptions().await?;
        self.metadata(&bounds).await?;
        let mut mailboxes: Vec<(&String, &u32)> = bounds.iter().collect();
        mailboxes.sort();
        for (name, bound) in mailboxes {
            self.totals.verified += self.verify(name, *bound).await?;
            self.totals.mailboxes += 1;
        }
        Ok(())
    }

    /// The source's selectable mailboxes with their special use.
    async fn source_mailboxes(&self) -> Result<Vec<(String, Option<SpecialUse>)>, String> {
        Ok(self
            .src
            .list()
            .await
            .map_err(|e| format!("source: listing mailboxes: {e}"))?
            .into_iter()
            .filter(|m| !m.noselect)
            .map(|m| (m.name, m.special_use))
            .collect())
    }

    /// One pass over mailbox `name`; `None` when it is gone from the source. Returns what
    /// changed and the source's UIDNEXT it worked up to.
    async fn sync_mailbox(
        &mut self,
        name: &str,
        special: Option<SpecialUse>,
        pass: u32,
    ) -> Result<Option<(PassCounts, u32)>, String> {
        let at = |e: StorageError| format!("{name}: {e}");
        let mut sv = match self.src.open(name, SOURCE_OPEN).await {
            Ok(v) => v,
            // Deleted (or renamed away) since the list: nothing of it to copy.
            Err(StorageError::NonExistent) => return Ok(None),
            Err(e) => return Err(format!("source: {name}: {e}")),
        };
        let dname = self.names.target(name);
        let (uidvalidity, bound) = (sv.uidvalidity(), sv.uidnext());
        match self
            .dst
            .import_mailbox(&dname, uidvalidity, 1, special)
            .await
        {
            Ok(()) => {}
            Err(StorageError::Cannot(m)) if m == IMPORT_OTHER_UIDVALIDITY => {
                let theirs = self
                    .dst
                    .status(&dname)
                    .await
                    .map(|s| s.uidvalidity)
                    .unwrap_or_default();
                return Err(format!(
                    "target mailbox {dname:?} holds messages under UIDVALIDITY {theirs}, the \
                     source's is {uidvalidity}: left untouched (move it away or delete it)"
                ));
            }
            Err(e) => return Err(format!("target: {}", at(e))),
        }
        let mut dv = self
            .dst
            .open(&dname, TARGET_OPEN)
            .await
            .map_err(|e| format!("target: {}", at(e)))?;
        if dv.uidvalidity() != uidvalidity {
            return Err(format!(
                "target mailbox {dname:?} has UIDVALIDITY {} after import, wanted {uidvalidity}",
                dv.uidvalidity()
            ));
        }
        let mut counts = PassCounts::default();
        // 1. Messages the target lacks.
        let have: BTreeSet<u32> = dv.messages().iter().map(|m| m.uid).collect();
        let missing: Vec<u32> = sv
            .messages()
            .iter()
            .map(|m| m.uid)
            .filter(|u| !have.contains(u))
            .collect();
        if let Some(&low) = missing.iter().find(|&&u| u < dv.uidnext()) {
            return Err(format!(
                "target mailbox {dname:?} lacks UID {low} of the source but its UIDNEXT is \
                 already {}: it took mail of its own before this UID was copied",
                dv.uidnext()
            ));
        }
        if !missing.is_empty() {
            self.progress(
                name,
                format_args!("pass {pass}: {} message(s) to copy", missing.len()),
            );
        }
        let mut start = 0;
        while start < missing.len() {
            let (batch, next) = self.read_batch(&mut sv, &missing, start).await?;
            start = next;
            let n = batch.len() as u64;
            if n > 0 {
                self.dst
                    .import_messages(&dname, batch)
                    .await
                    .map_err(|e| format!("target: {}", at(e)))?;
            }
            counts.copied += n;
            self.progress(
                name,
                format_args!(
                    "pass {pass}: copied {}/{} (UIDVALIDITY {uidvalidity})",
                    counts.copied,
                    missing.len()
                ),
            );
        }
        dv.refresh()
            .await
            .map_err(|e| format!("target: {}", at(e)))?;
        // 2. Flags set as the source has them.
        let source_flags: HashMap<u32, FlagKey> = sv
            .messages()
            .iter()
            .map(|m| (m.uid, flag_key(&sv, m)))
            .collect();
        let mut by_flags: HashMap<FlagKey, Vec<u32>> = HashMap::new();
        for m in dv.messages().iter() {
            if let Some(want) = source_flags.get(&m.uid)
                && *want != flag_key(&dv, m)
            {
                by_flags.entry(want.clone()).or_default().push(m.uid);
            }
        }
        for ((system, keywords), uids) in by_flags {
            counts.flags += uids.len() as u64;
            let req = StoreRequest {
                op: StoreOp::Replace,
                flags: SystemFlags(system),
                keywords,
                unchanged_since: None,
            };
            dv.store(&uids, req)
                .await
                .map_err(|e| format!("target: {}", at(e)))?;
        }
        // 3. Expunges made at the source since the messages were copied.
        let gone: Vec<u32> = dv
            .messages()
            .iter()
            .map(|m| m.uid)
            .filter(|u| *u < bound && !source_flags.contains_key(u))
            .collect();
        if !gone.is_empty() {
            let req = StoreRequest {
                op: StoreOp::Add,
                flags: SystemFlags::DELETED,
                keywords: Vec::new(),
                unchanged_since: None,
            };
            dv.store(&gone, req)
                .await
                .map_err(|e| format!("target: {}", at(e)))?;
            dv.expunge(Some(&gone))
                .await
                .map_err(|e| format!("target: {}", at(e)))?;
            counts.expunged = gone.len() as u64;
        }
        if counts.flags > 0 || counts.expunged > 0 {
            self.progress(
                name,
                format_args!(
                    "pass {pass}: {} flag change(s) applied, {} expunge(s) mirrored",
                    counts.flags, counts.expunged
                ),
            );
        }
        // 4. UIDNEXT as the source's, never lowered.
        self.dst
            .import_mailbox(&dname, uidvalidity, bound, None)
            .await
            .map_err(|e| format!("target: {}", at(e)))?;
        Ok(Some((counts, bound)))
    }

    /// Reads the next batch of `missing` from index `start`: at most [`MIGRATE_BATCH_MESSAGES`]
    /// messages and [`MIGRATE_BATCH_BYTES`] (a larger message goes alone). Messages expunged at
    /// the source meanwhile are skipped. Returns the batch and where the next one starts.
    async fn read_batch(
        &self,
        sv: &mut View,
        missing: &[u32],
        start: usize,
    ) -> Result<(Vec<ImportMessage>, usize), String> {
        let name = sv.name().to_owned();
        let at = |e: StorageError| format!("source: {name}: {e}");
        let mut end = start;
        let mut bytes = 0u64;
        while let Some(&uid) = missing.get(end) {
            let size = sv
                .messages()
                .position(uid)
                .and_then(|i| sv.messages().get(i))
                .map_or(0, |m| m.phys_size);
            let full = end - start >= MIGRATE_BATCH_MESSAGES
                || (end > start && bytes + size > MIGRATE_BATCH_BYTES);
            if full {
                break;
            }
            bytes += size;
            end += 1;
        }
        let uids = missing.get(start..end).unwrap_or_default();
        let dates = sv.internal_dates(uids).await.map_err(at)?;
        let mut batch = Vec::with_capacity(uids.len());
        for &uid in uids {
            let Some(meta) = sv
                .messages()
                .position(uid)
                .and_then(|i| sv.messages().get(i))
                .cloned()
            else {
                continue;
            };
            let Some(date) = dates.get(uid) else {
                continue;
            };
            let data = match sv.open_message(uid, 0).await {
                Ok(m) => m.read_all().await.map_err(at)?,
                Err(StorageError::Expunged) => continue,
                Err(e) => return Err(at(e)),
            };
            let (system, keywords) = flag_key(sv, &meta);
            batch.push(ImportMessage {
                uid,
                data: data.into(),
                flags: SystemFlags(system),
                keywords,
                internal_date: date,
            });
        }
        Ok((batch, end))
    }

    /// Subscriptions as the source has them.
    async fn subscriptions(&self) -> Result<(), String> {
        let want: BTreeSet<String> = self
            .src
            .subscriptions()
            .await
            .map_err(|e| format!("source: subscriptions: {e}"))?
            .iter()
            .map(|s| self.names.target(s))
            .collect();
        let have: BTreeSet<String> = self
            .dst
            .subscriptions()
            .await
            .map_err(|e| format!("target: subscriptions: {e}"))?
            .into_iter()
            .collect();
        for s in want.difference(&have) {
            self.dst
                .subscribe(s)
                .await
                .map_err(|e| format!("target: subscribe {s:?}: {e}"))?;
        }
        for s in have.difference(&want) {
            self.dst
                .unsubscribe(s)
                .await
                .map_err(|e| format!("target: unsubscribe {s:?}: {e}"))?;
        }
        Ok(())
    }

    /// METADATA entries as the source has them: the server entries and each mailbox's.
    async fn metadata(&self, mailboxes: &HashMap<String, u32>) -> Result<(), String> {
        let mut names: Vec<Option<&str>> = vec![None];
        names.extend(mailboxes.keys().map(|n| Some(n.as_str())));
        for name in names {
            let label = name.unwrap_or("(server)");
            let want = self
                .src
                .metadata_get(name)
                .await
                .map_err(|e| format!("source: {label}: metadata: {e}"))?;
            let dname = name.map(|n| self.names.target(n));
            let have = self
                .dst
                .metadata_get(dname.as_deref())
                .await
                .map_err(|e| format!("target: {label}: metadata: {e}"))?;
            let mut changes: Vec<crate::storage::MetadataChange> = have
                .keys()
                .filter(|k| !want.contains_key(*k))
                .map(|k| (k.clone(), None))
                .collect();
            changes.extend(
                want.iter()
                    .filter(|(k, v)| have.get(*k) != Some(*v))
                    .map(|(k, v)| (k.clone(), Some(v.clone()))),
            );
            if !changes.is_empty() {
                self.dst
                    .metadata_set(dname.as_deref(), changes)
                    .await
                    .map_err(|e| format!("target: {label}: metadata: {e}"))?;
            }
        }
        Ok(())
    }

    /// Compares mailbox `name` on both sides below the source's UIDNEXT `bound` of the last
    /// pass: UIDVALIDITY, UIDs, flags, keywords, INTERNALDATEs and the SHA-256 of every
    /// message's bytes. Returns how many messages it verified.
    async fn verify(&self, name: &str, bound: u32) -> Result<u64, String> {
        let dname = self.names.target(name);
        let fail = |what: String| format!("{name}: verification failed: {what}");
        let mut sv = match self.src.open(name, SOURCE_OPEN).await {
            Ok(v) => v,
            Err(StorageError::NonExistent) => return Ok(0),
            Err(e) => return Err(format!("source: {name}: {e}")),
        };
        let mut dv = self
            .dst
            .open(&dname, SOURCE_OPEN)
            .await
            .map_err(|e| format!("target: {name}: {e}"))?;
        if sv.uidvalidity() != dv.uidvalidity() {
            return Err(fail(format!(
                "UIDVALIDITY {} in the source, {} in the target",
                sv.uidvalidity(),
                dv.uidvalidity()
            )));
        }
        if dv.uidnext() < bound {
            return Err(fail(format!(
                "UIDNEXT {} in the target, below the source's {bound}",
                dv.uidnext()
            )));
        }
        let side = |v: &View| -> Vec<(u32, FlagKey)> {
            v.messages()
                .iter()
                .filter(|m| m.uid < bound)
                .map(|m| (m.uid, flag_key(v, m)))
                .collect()
        };
        let (s, d) = (side(&sv), side(&dv));
        if s.len() != d.len() {
            return Err(fail(format!(
                "{} message(s) in the source, {} in the target (changed at the source since the \
                 last pass? run again)",
                s.len(),
                d.len()
            )));
        }
        let uids: Vec<u32> = s.iter().map(|(u, _)| *u).collect();
        let (sd, dd) = (
            sv.internal_dates(&uids)
                .await
                .map_err(|e| fail(e.to_string()))?,
            dv.internal_dates(&uids)
                .await
                .map_err(|e| fail(e.to_string()))?,
        );
        for ((su, sf), (du, df)) in s.iter().zip(&d) {
            if su != du {
                return Err(fail(format!("UID {su} in the source, {du} in the target")));
            }
            if sf != df {
                return Err(fail(format!(
                    "UID {su}: flags differ (changed at the source since the last pass? run again)"
                )));
            }
            if sd.get(*su) != dd.get(*su) {
                return Err(fail(format!("UID {su}: INTERNALDATE differs")));
            }
            let (sh, dh) = (hash(&sv, *su).await, hash(&dv, *su).await);
            match (sh, dh) {
                (Ok(a), Ok(b)) if a == b => {}
                (Ok(_), Ok(_)) => return Err(fail(format!("UID {su}: content differs (SHA-256)"))),
                (Err(e), _) | (_, Err(e)) => return Err(fail(format!("UID {su}: {e}"))),
            }
        }
        self.progress(
            name,
            format_args!(
                "verified {} message(s), UIDVALIDITY {}, UIDNEXT {}",
                s.len(),
                dv.uidvalidity(),
                dv.uidnext()
            ),
        );
        Ok(s.len() as u64)
    }
}

/// SHA-256 of message `uid`'s bytes, read in ranges of [`MBOX_CHUNK_BYTES`].
async fn hash(view: &View, uid: u32) -> Result<Vec<u8>, StorageError> {
    let msg = view.open_message(uid, 0).await?;
    let mut h = Sha256::new();
    let mut offset = 0u64;
    loop {
        let chunk = msg.read(offset, MBOX_CHUNK_BYTES).await?;
        h.update(&chunk);
        offset += chunk.len() as u64;
        if chunk.len() < MBOX_CHUNK_BYTES {
            break;
        }
    }
    Ok(h.finalize().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::{MemoryOptions, MemoryStorage};
    use crate::storage::{AppendMessage, StorageUser};

    async fn migrate_once(src: &dyn UserStore, dst: &dyn UserStore) -> Totals {
        let mut m = Migration {
            user: "ann",
            src,
            dst,
            names: Names { from: '/', to: '/' },
            settle: std::time::Duration::ZERO,
            totals: Totals::default(),
        };
        m.run().await.expect("migrate");
        m.totals
    }

    /// The memory backend on both sides: the passes keep UIDs (with the gap an expunge left),
    /// UIDVALIDITY, UIDNEXT, flags, keywords, dates and subscriptions, and a second run copies
    /// nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_to_memory_keeps_uids_and_a_second_run_copies_nothing() {
        let mk = || MemoryStorage::new(MemoryOptions::default()).expect("memory");
        let (a, b) = (mk(), mk());
        let user = StorageUser {
            name: "ann".into(),
            ..StorageUser::default()
        };
        let src = a.user(&user).await.expect("source");
        let dst = b.user(&user).await.expect("target");
        let flags = [SystemFlags::SEEN, SystemFlags::EMPTY, SystemFlags::FLAGGED];
        for (i, f) in flags.into_iter().enumerate() {
            let m = AppendMessage {
                data: format!("Subject: {i}\r\n\r\nbody {i}\r\n").into(),
                flags: f,
                keywords: vec!["$Work".into()],
                internal_date: Some(1_600_000_000 + i as i64),
            };
            src.append("INBOX", m).await.expect("append");
        }
        let mut v = src.open("INBOX", TARGET_OPEN).await.expect("open");
        let deleted = StoreRequest {
            op: StoreOp::Add,
            flags: SystemFlags::DELETED,
            keywords: Vec::new(),
            unchanged_since: None,
        };
        v.store(&[2], deleted).await.expect("store");
        v.expunge(Some(&[2])).await.expect("expunge");
        src.subscribe("INBOX").await.expect("subscribe");
        let entry = |name: &str, v: &[u8]| (name.to_string(), Some(v.to_vec()));
        src.metadata_set(None, vec![entry("/private/vendor/x", b"server")])
            .await
            .expect("metadata");
        src.metadata_set(Some("INBOX"), vec![entry("/shared/comment", b"in")])
            .await
            .expect("metadata");
        // An entry only the target has goes: the target ends as the source is.
        dst.metadata_set(None, vec![entry("/private/stale", b"old")])
            .await
            .expect("metadata");

        let t = migrate_once(&*src, &*dst).await;
        assert_eq!((t.mailboxes, t.copied, t.verified), (1, 2, 2));
        let (s, d) = (
            src.status("INBOX").await.expect("status"),
            dst.status("INBOX").await.expect("status"),
        );
        assert_eq!((d.uidvalidity, d.uidnext), (s.uidvalidity, 4));
        let mut dv = dst.open("INBOX", SOURCE_OPEN).await.expect("open");
        let got: Vec<(u32, FlagKey)> = dv
            .messages()
            .iter()
            .map(|m| (m.uid, flag_key(&dv, m)))
            .collect();
        let work = vec!["$Work".to_string()];
        assert_eq!(
            got,
            vec![
                (1, (SystemFlags::SEEN.0, work.clone())),
                (3, (SystemFlags::FLAGGED.0, work))
            ]
        );
        let dates = dv.internal_dates(&[1, 3]).await.expect("dates");
        assert_eq!(
            (dates.get(1), dates.get(3)),
            (Some(1_600_000_000), Some(1_600_000_002))
        );
        assert_eq!(dst.subscriptions().await.expect("subs"), vec!["INBOX"]);
        for mailbox in [None, Some("INBOX")] {
            assert_eq!(
                dst.metadata_get(mailbox).await.expect("metadata"),
                src.metadata_get(mailbox).await.expect("metadata")
            );
        }
        let server = dst.metadata_get(None).await.expect("metadata");
        assert_eq!(server.keys().collect::<Vec<_>>(), vec!["/private/vendor/x"]);

        let t = migrate_once(&*src, &*dst).await;
        assert_eq!((t.mailboxes, t.copied, t.verified), (1, 0, 2));
    }

    #[test]
    fn names_change_separator() {
        let n = Names { from: '.', to: '/' };
        assert_eq!(n.target("INBOX.Work.2024"), "INBOX/Work/2024");
        let same = Names { from: '/', to: '/' };
        assert_eq!(same.target("a/b"), "a/b");
    }
}
