//! Sieve at delivery: LMTP and `mailcove deliver` run a recipient's scripts (`sieve_before`, the
//! user's active script, `sieve_after`) over the message and apply the outcome.
//!
//! Without scripts, [`deliver_recipient`] is exactly the plain delivery
//! ([`crate::lmtp::deliver::store_spooled`]) after one `stat` of the active-script link.
//!
//! With scripts, per recipient:
//! 1. The message (with `Return-Path:`/`Delivered-To:`, as it will be stored, so scripts can test
//!    `Delivered-To`) is read whole and the scripts run on a blocking thread; the
//!    [`Environment`] answers from the user's store (mailbox existence, special use, METADATA),
//!    the site (`environment` items) and the user's tracking file (`duplicate`).
//! 2. `reject`/`ereject` refuse the recipient (LMTP `550 5.7.1 reason`, deliver exit 77 as
//!    `dovecot-lda -e`); nothing is stored or sent.
//! 3. Redirects are submitted first. One that cannot be sent (no submission configured, the
//!    relay refuses) adds a keep in INBOX instead, so a message is never lost to a redirect.
//!    A redirect sent is remembered (Message-ID and target) so an MTA retry never sends it twice;
//!    a message carrying our `X-Sieve-Redirected-From:` for this recipient is kept, not
//!    redirected again (loop protection).
//! 4. Stores (keep, fileinto) are applied all or nothing as far as the storage allows: every
//!    copy is written to the storage's staging area first; if any cannot be (quota, I/O), none
//!    is committed and the recipient gets the storage's error (temporary: the MTA retries, and
//!    since nothing was stored, nothing is delivered twice). Then each copy is committed; a
//!    commit failing after an earlier one succeeded cannot be undone, so the message is already
//!    delivered: the failure is logged, the copy is tried once in INBOX, and the recipient is
//!    answered with success (a retry would deliver the committed copies twice).
//! 5. Only then (durable) are `duplicate` ids recorded and vacation replies sent, in the
//!    background for LMTP; a reply that cannot be sent is logged and never fails delivery.
//!
//! `fileinto` of a missing mailbox without `:create` keeps the message in the default mailbox
//! (INBOX, or the `-m`/detail mailbox as without Sieve) and logs it; with `:create` the mailbox is
//! created. A script that does not compile is skipped (logged once per version); a run-time error
//! or limit keeps the message (with the flags set so far), logged.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::{info, warn};

use super::tracking::{self, Tracking};
use super::{
    Action, CompileError, Envelope, Environment, IncludeLocation, RunOptions, Script, cache,
    outbound, store, vacation,
};
use crate::config::{Config, ScriptLocation, SieveConfig};
use crate::lmtp::deliver::{self as plain, DeliverError, DeliveryOptions, Recipient, Stored};
use crate::spool::Spooled;
use crate::storage::{AppendStream, MailboxInfo, SpecialUse, StorageError, SystemFlags, UserStore};

/// The header a redirect adds (Pigeonhole's name), naming the recipient that redirected.
pub const REDIRECTED_FROM: &str = "X-Sieve-Redirected-From";

/// What the session knows about a delivery besides the recipient.
#[derive(Debug, Clone)]
pub struct Context {
    /// The configuration in force (`[sieve]` is what is used).
    pub cfg: Arc<Config>,
    /// `server.hostname`.
    pub hostname: String,
    /// MAIL FROM (without brackets; `""` for the null sender).
    pub sender: String,
    /// The LMTP client's address, when known (`environment "remote-ip"`).
    pub remote_ip: Option<IpAddr>,
    /// Its name, when known (`environment "remote-host"`).
    pub remote_host: Option<String>,
    /// MAIL FROM's `AUTH=` (RFC 4954), xtext-decoded (`envelope "auth"`).
    pub auth: Option<String>,
    /// This recipient's `ORCPT=` (RFC 3461), xtext-decoded (`Envelope::orig_to`).
    pub orig_to: Option<String>,
}

/// How one recipient's delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// Stored (durably) in these mailboxes.
    Stored(Vec<Stored>),
    /// Nothing to store (`discard`, or only redirects that were sent).
    NotStored,
}

/// Work left after the delivery is durable: vacation replies to send and their tracking.
#[derive(Debug, Default)]
pub struct Followups {
    sends: Vec<(outbound::Outgoing, Option<[u8; 32]>, Duration)>,
    tracking: Option<Tracking>,
    cfg: Option<Arc<Config>>,
    hostname: String,
    user: String,
}

impl Followups {
    /// True when nothing is left to do.
    pub fn is_empty(&self) -> bool {
        self.sends.is_empty()
    }

    /// Sends the replies and records them; errors are logged, never returned.
    pub async fn run(self) {
        let Some(cfg) = self.cfg else {
            return;
        };
        for (msg, mark, period) in self.sends {
            match outbound::send(&cfg.sieve, &self.hostname, &msg).await {
                Ok(()) => {
                    info!(user = %self.user, to = %msg.to, "sieve: vacation reply sent");
                    if let (Some(k), Some(t)) = (mark, &self.tracking) {
                        let t = t.clone();
                        let r = tokio::task::spawn_blocking(move || {
                            t.record(&[(k, period)], SystemTime::now())
                        })
                        .await;
                        if let Ok(Err(e)) | Err(e) = r.map_err(std::io::Error::other) {
                            warn!(user = %self.user, error = %e, "sieve: recording a vacation response failed");
                        }
                    }
                }
                Err(e) => {
                    warn!(user = %self.user, to = %msg.to, error = %e, "sieve: vacation reply not sent");
                }
            }
        }
    }
}

/// Delivers a spooled message to `rcpt`, through its Sieve scripts when it has any. `folder`
/// is `deliver -m`. `header` is the `Return-Path:`/`Delivered-To:` stamp.
pub async fn deliver_recipient(
    ctx: &Context,
    rcpt: &Recipient,
    folder: Option<&str>,
    header: &[u8],
    message: &Spooled,
    opts: &DeliveryOptions,
) -> Result<(Delivered, Followups), DeliverError> {
    let loc = ctx.cfg.sieve.locate(rcpt.user.home.as_deref());
    if !store::has_scripts(&ctx.cfg.sieve, loc.as_ref()) {
        let stored = plain::store_spooled(rcpt, folder, header, message, opts).await?;
        return Ok((Delivered::Stored(vec![stored]), Followups::default()));
    }
    let mut full = Vec::with_capacity(header.len() + message.len() as usize);
    full.extend_from_slice(header);
    let mut offset = 0;
    while offset < message.len() {
        let chunk = message
            .read_chunk(offset)
            .await
            .map_err(|e| DeliverError::Temporary(format!("reading the spooled message: {e}")))?;
        if chunk.is_empty() {
            return Err(DeliverError::Temporary(
                "spooled message ended early".into(),
            ));
        }
        offset += chunk.len() as u64;
        full.extend_from_slice(&chunk);
    }
    let wanted = folder.map(str::to_string).or_else(|| {
        rcpt.detail
            .as_ref()
            .filter(|d| opts.save_to_detail && !d.is_empty())
            .cloned()
    });
    let job = Job {
        ctx: ctx.clone(),
        loc,
        store: rcpt.store.clone(),
        user: rcpt.user.name.clone(),
        address: rcpt.address.clone(),
        wanted,
        message: full,
    };
    let handle = tokio::runtime::Handle::current();
    let plan = tokio::task::spawn_blocking(move || job.plan(&handle))
        .await
        .map_err(|e| DeliverError::Temporary(format!("sieve task: {e}")))?;
    apply(ctx, rcpt, plan, opts).await
}

/// Everything the blocking part needs.
struct Job {
    ctx: Context,
    loc: Option<ScriptLocation>,
    store: Arc<dyn UserStore>,
    user: String,
    address: String,
    wanted: Option<String>,
    message: Vec<u8>,
}

/// One copy to store.
#[derive(Debug, Clone)]
struct Target {
    mailbox: String,
    flags: SystemFlags,
    keywords: Vec<String>,
    create: Option<Option<SpecialUse>>,
}

/// What the run decided, resolved against the mailboxes.
struct Plan {
    message: Vec<u8>,
    stores: Vec<Target>,
    keep_mailbox: String,
    redirects: Vec<String>,
    vacations: Vec<(outbound::Outgoing, [u8; 32], Duration)>,
    reject: Option<String>,
    duplicate_marks: Vec<([u8; 32], Duration)>,
    tracking: Tracking,
    message_id: Option<String>,
}

impl Job {
    fn plan(self, handle: &tokio::runtime::Handle) -> Plan {
        let Job {
            ctx,
            loc,
            store,
            user,
            address,
            wanted,
            message,
        } = self;
        let tracking = Tracking::load(
            loc.as_ref()
                .and_then(|l| l.active.parent().map(std::path::Path::to_path_buf))
                .as_deref(),
        );
        let mut scripts: Vec<Arc<Script>> = Vec::new();
        let mut add = |path: &std::path::Path| {
            if let Some(Ok(s)) = cache::load(path) {
                scripts.push(s);
            }
        };
        for p in store::global_scripts(&ctx.cfg.sieve.sieve_before) {
            add(&p);
        }
        if let Some(p) = loc.as_ref().and_then(store::active_script) {
            add(&p);
        }
        for p in store::global_scripts(&ctx.cfg.sieve.sieve_after) {
            add(&p);
        }
        let mut env = DeliveryEnv {
            handle: handle.clone(),
            store,
            loc: loc.clone(),
            global: ctx.cfg.sieve.sieve_global.clone(),
            list: None,
            ctx: &ctx,
            user: &user,
            address: &address,
            tracking: &tracking,
        };
        let keep_mailbox = match wanted.filter(|w| !w.eq_ignore_ascii_case("INBOX")) {
            Some(w) if env.mailbox_exists(&w) => w,
            _ => "INBOX".to_string(),
        };
        let envelope = Envelope {
            from: &ctx.sender,
            to: &address,
            orig_to: ctx.orig_to.as_deref(),
            auth: ctx.auth.as_deref(),
        };
        let outcome = if scripts.is_empty() {
            // Every script failed to compile (logged by the cache): the implicit keep.
            super::Outcome {
                actions: vec![Action::Keep { flags: Vec::new() }],
                edited_message: None,
                duplicate_marks: Vec::new(),
                error: None,
            }
        } else {
            super::execute(
                &scripts,
                &message,
                &envelope,
                &mut env,
                &run_options(&ctx.cfg.sieve),
            )
        };
        if let Some(e) = &outcome.error {
            warn!(user = %user, error = %e, "sieve: script stopped; the message is kept");
        }
        let message = outcome.edited_message.clone().unwrap_or(message);
        let parsed = vacation::parse_headers(&message);
        let message_id = parsed
            .as_ref()
            .and_then(|m| m.message_id())
            .map(str::to_string);
        let redirected_from: Vec<String> = parsed
            .as_ref()
            .map(|m| {
                m.header_values(REDIRECTED_FROM)
                    .filter_map(|v| v.as_text().map(|s| s.trim().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        drop(parsed);
        let mut plan = Plan {
            message,
            stores: Vec::new(),
            keep_mailbox: keep_mailbox.clone(),
            redirects: Vec::new(),
            vacations: Vec::new(),
            reject: None,
            duplicate_marks: outcome
                .duplicate_marks
                .iter()
                .map(|(k, p)| (tracking::key(b"duplicate", &[k]), *p))
                .collect(),
            tracking: tracking.clone(),
            message_id,
        };
        for action in outcome.actions {
            match action {
                Action::Keep { flags } => {
                    plan.add_store(keep_mailbox.clone(), &flags, None);
                }
                Action::FileInto {
                    mailbox,
                    flags,
                    create,
                    special_use,
                } => {
                    let by_use = special_use
                        .as_deref()
                        .and_then(|u| env.special_use_mailbox(u));
                    let target = match by_use {
                        Some(m) => Some((m, None)),
                        None if env.mailbox_exists(&mailbox) => Some((mailbox.clone(), None)),
                        None if create => Some((
                            mailbox.clone(),
                            Some(special_use.as_deref().and_then(SpecialUse::from_attribute)),
                        )),
                        None => None,
                    };
                    match target {
                        Some((m, create)) => plan.add_store(m, &flags, create),
                        None => {
                            info!(user = %user, mailbox = %mailbox, "sieve: fileinto a mailbox that does not exist; kept in {keep_mailbox} instead");
                            plan.add_store(keep_mailbox.clone(), &flags, None);
                        }
                    }
                }
                Action::Redirect { address: to } => {
                    if redirected_from
                        .iter()
                        .any(|r| r.eq_ignore_ascii_case(&address))
                    {
                        warn!(user = %user, to = %to, "sieve: redirect loop (message already redirected by this recipient); kept instead");
                        plan.add_store(keep_mailbox.clone(), &[], None);
                    } else if plan.redirects.len() >= crate::limits::SIEVE_DEFAULT_MAX_REDIRECTS
                        || !outbound::safe_address(&to)
                    {
                        warn!(user = %user, to = %to, "sieve: redirect refused (limit or bad address); kept instead");
                        plan.add_store(keep_mailbox.clone(), &[], None);
                    } else {
                        plan.redirects.push(to);
                    }
                }
                Action::Discard => {}
                Action::Reject { reason, .. } => plan.reject = Some(reason),
                Action::Vacation {
                    reason,
                    subject,
                    from,
                    addresses,
                    mime,
                    handle,
                    period,
                } => {
                    plan_vacation(
                        &mut plan,
                        &ctx,
                        &user,
                        &address,
                        VacationArgs {
                            reason: &reason,
                            subject: subject.as_deref(),
                            from: from.as_deref(),
                            addresses: &addresses,
                            mime,
                            handle: &handle,
                            period,
                        },
                        env.now(),
                    );
                }
            }
        }
        plan
    }
}

struct VacationArgs<'a> {
    reason: &'a str,
    subject: Option<&'a str>,
    from: Option<&'a str>,
    addresses: &'a [String],
    mime: bool,
    handle: &'a str,
    period: Duration,
}

fn plan_vacation(
    plan: &mut Plan,
    ctx: &Context,
    user: &str,
    address: &str,
    v: VacationArgs<'_>,
    now: SystemTime,
) {
    let sender = ctx.sender.as_str();
    let mut own: Vec<String> = vec![address.to_string()];
    // The recipient without its +detail counts as the user's too.
    if let Some((base, _)) = plain::split_detail(address, "+") {
        own.push(base);
    }
    own.extend(v.addresses.iter().cloned());
    let from_addr = v.from.map(bare_address);
    if let Some(f) = &from_addr {
        own.push(f.clone());
    }
    if let Err(skip) = vacation::check(sender, &plan.message, &own) {
        info!(user = %user, sender = %sender, reason = ?skip, "sieve: no vacation reply");
        return;
    }
    let key = tracking::key(
        b"vacation",
        &[v.handle.as_bytes(), sender.to_ascii_lowercase().as_bytes()],
    );
    if plan.tracking.seen_within(&key, v.period, now) {
        info!(user = %user, sender = %sender, reason = ?vacation::Skip::AlreadyReplied, "sieve: no vacation reply");
        return;
    }
    if !outbound::safe_address(sender) {
        return;
    }
    let data = vacation::build(
        &vacation::Reply {
            from: v.from.unwrap_or(address),
            to: sender,
            subject: v.subject,
            reason: v.reason,
            mime: v.mime,
            hostname: &ctx.hostname,
        },
        &plan.message,
        now,
    );
    plan.vacations.push((
        outbound::Outgoing {
            from: String::new(),
            to: sender.to_string(),
            data,
        },
        key,
        v.period,
    ));
}

/// `Name <a@b>` or `a@b` to `a@b`.
fn bare_address(s: &str) -> String {
    match (s.rfind('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => s.get(a + 1..b).unwrap_or(s).trim().to_string(),
        _ => s.trim().to_string(),
    }
}

impl Plan {
    fn add_store(&mut self, mailbox: String, flags: &[String], create: Option<Option<SpecialUse>>) {
        let (sys, kw) = split_flags(flags);
        // RFC 5228 section 4.1: filing into the same mailbox twice stores one copy; the flags
        // of both are set.
        if let Some(t) = self
            .stores
            .iter_mut()
            .find(|t| same_mailbox(&t.mailbox, &mailbox))
        {
            t.flags = t.flags.union(sys);
            for k in kw {
                if !t.keywords.iter().any(|x| x.eq_ignore_ascii_case(&k)) {
                    t.keywords.push(k);
                }
            }
            if t.create.is_none() {
                t.create = create;
            }
            return;
        }
        self.stores.push(Target {
            mailbox,
            flags: sys,
            keywords: kw,
            create,
        });
    }
}

fn same_mailbox(a: &str, b: &str) -> bool {
    a == b || (a.eq_ignore_ascii_case("INBOX") && b.eq_ignore_ascii_case("INBOX"))
}

/// Sieve flags (imap4flags) into system flags and keywords; `\Recent` and names that are no
/// valid IMAP atom are dropped.
fn split_flags(flags: &[String]) -> (SystemFlags, Vec<String>) {
    let mut sys = SystemFlags::default();
    let mut kw: Vec<String> = Vec::new();
    for f in flags {
        if let Some(s) = SystemFlags::from_name(f) {
            sys = sys.union(s);
        } else if !f.starts_with('\\')
            && !f.is_empty()
            && f.bytes()
                .all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b))
            && !kw.iter().any(|k| k.eq_ignore_ascii_case(f))
        {
            kw.push(f.clone());
        }
    }
    (sys, kw)
}

/// The run limits: the language's named defaults (`limits.rs`); redirects per message are
/// `SIEVE_DEFAULT_MAX_REDIRECTS`, Pigeonhole's `sieve_max_redirects` default. The spamtest and
/// virustest headers come from `[sieve] spamtest_header`, `spamtest_max`, `virustest_header`.
fn run_options(cfg: &SieveConfig) -> RunOptions {
    RunOptions {
        spam_header: cfg.spamtest_header.clone(),
        spam_max: cfg.spamtest_max,
        virus_header: cfg.virustest_header.clone(),
        ..RunOptions::default()
    }
}

/// The environment the interpreter sees at delivery.
struct DeliveryEnv<'a> {
    handle: tokio::runtime::Handle,
    store: Arc<dyn UserStore>,
    loc: Option<ScriptLocation>,
    global: Option<std::path::PathBuf>,
    list: Option<Vec<MailboxInfo>>,
    ctx: &'a Context,
    user: &'a str,
    address: &'a str,
    tracking: &'a Tracking,
}

impl DeliveryEnv<'_> {
    fn mailboxes(&mut self) -> &[MailboxInfo] {
        if self.list.is_none() {
            let store = self.store.clone();
            let got = self.handle.block_on(async move { store.list().await });
            self.list = Some(got.unwrap_or_else(|e| {
                warn!(user = %self.user, error = %e, "sieve: listing mailboxes failed");
                Vec::new()
            }));
        }
        self.list.as_deref().unwrap_or_default()
    }
}

impl Environment for DeliveryEnv<'_> {
    fn include(
        &mut self,
        location: IncludeLocation,
        name: &str,
    ) -> Option<Result<Arc<Script>, CompileError>> {
        let dir = match location {
            IncludeLocation::Personal => self.loc.as_ref()?.dir.clone(),
            IncludeLocation::Global => self.global.clone()?,
        };
        cache::load(&store::include_path(&dir, name)?)
    }

    fn mailbox_exists(&mut self, mailbox: &str) -> bool {
        let inbox = mailbox.eq_ignore_ascii_case("INBOX");
        self.mailboxes()
            .iter()
            .any(|m| !m.noselect && (m.name == mailbox || (inbox && m.name == "INBOX")))
    }

    fn special_use_mailbox(&mut self, attribute: &str) -> Option<String> {
        let want = SpecialUse::from_attribute(attribute)?;
        self.mailboxes()
            .iter()
            .find(|m| !m.noselect && m.special_use == Some(want))
            .map(|m| m.name.clone())
    }

    fn metadata(&mut self, mailbox: Option<&str>, entry: &str) -> Option<String> {
        let store = self.store.clone();
        let mb = mailbox.map(str::to_string);
        let map = self
            .handle
            .block_on(async move { store.metadata_get(mb.as_deref()).await })
            .ok()?;
        let v = map
            .get(entry)
            .or_else(|| map.get(&entry.to_ascii_lowercase()))?;
        String::from_utf8(v.clone()).ok()
    }

    fn environment(&mut self, item: &str) -> Option<String> {
        let domain = || {
            self.address
                .rsplit_once('@')
                .map_or_else(|| self.ctx.hostname.clone(), |(_, d)| d.to_string())
        };
        Some(match item.to_ascii_lowercase().as_str() {
            "domain" => domain(),
            "host" => self.ctx.hostname.clone(),
            "location" => "MDA".into(),
            "name" => "mailcove".into(),
            "phase" => "during".into(),
            "version" => env!("CARGO_PKG_VERSION").into(),
            "remote-ip" => self.ctx.remote_ip?.to_string(),
            "remote-host" => self.ctx.remote_host.clone()?,
            "vnd.dovecot.default-mailbox" => "INBOX".into(),
            "vnd.dovecot.username" => self.user.to_string(),
            _ => return None,
        })
    }

    fn duplicate_seen(&mut self, key: &[u8; 32], period: Duration) -> bool {
        self.tracking.seen_within(
            &tracking::key(b"duplicate", &[key]),
            period,
            SystemTime::now(),
        )
    }

    fn now(&mut self) -> SystemTime {
        SystemTime::now()
    }
}

/// Applies a plan: reject, redirects, stores (all or none), then tracking and the follow-ups.
async fn apply(
    ctx: &Context,
    rcpt: &Recipient,
    mut plan: Plan,
    opts: &DeliveryOptions,
) -> Result<(Delivered, Followups), DeliverError> {
    if let Some(reason) = plan.reject.take() {
        info!(user = %rcpt.user.name, "sieve: message rejected");
        return Err(DeliverError::Rejected(reason));
    }
    let marks = std::mem::take(&mut plan.duplicate_marks);
    let redirects = std::mem::take(&mut plan.redirects);
    for to in redirects {
        let key = tracking::key(
            b"redirect",
            &[
                plan.message_id.as_deref().unwrap_or_default().as_bytes(),
                to.to_ascii_lowercase().as_bytes(),
            ],
        );
        let period = Duration::from_secs(crate::limits::SIEVE_REDIRECT_DUPLICATE_SECS);
        if plan.message_id.is_some() && plan.tracking.seen_within(&key, period, SystemTime::now()) {
            info!(user = %rcpt.user.name, to = %to, "sieve: redirect already sent for this message");
            continue;
        }
        let mut data = format!("{REDIRECTED_FROM}: {}\r\n", rcpt.address).into_bytes();
        data.extend_from_slice(strip_stamp(&plan.message));
        let msg = outbound::Outgoing {
            from: ctx.sender.clone(),
            to: to.clone(),
            data,
        };
        match outbound::send(&ctx.cfg.sieve, &ctx.hostname, &msg).await {
            Ok(()) => {
                info!(user = %rcpt.user.name, to = %to, "sieve: redirected");
                if plan.message_id.is_some() {
                    let t = plan.tracking.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        t.record(&[(key, period)], SystemTime::now())
                    })
                    .await;
                }
            }
            Err(e) => {
                warn!(user = %rcpt.user.name, to = %to, error = %e, "sieve: redirect failed; kept instead");
                let keep = plan.keep_mailbox.clone();
                plan.add_store(keep, &[], None);
            }
        }
    }
    let stored = store_all(rcpt, &plan, opts).await?;
    if !marks.is_empty() {
        let t = plan.tracking.clone();
        let r = tokio::task::spawn_blocking(move || t.record(&marks, SystemTime::now())).await;
        if let Ok(Err(e)) | Err(e) = r.map_err(std::io::Error::other) {
            warn!(user = %rcpt.user.name, error = %e, "sieve: recording duplicate ids failed");
        }
    }
    let followups = Followups {
        sends: plan
            .vacations
            .into_iter()
            .map(|(m, k, p)| (m, Some(k), p))
            .collect(),
        tracking: Some(plan.tracking),
        cfg: Some(ctx.cfg.clone()),
        hostname: ctx.hostname.clone(),
        user: rcpt.user.name.clone(),
    };
    let delivered = if stored.is_empty() {
        info!(to = %rcpt.address, user = %rcpt.user.name, "sieve: not stored (discarded or redirected)");
        Delivered::NotStored
    } else {
        Delivered::Stored(stored)
    };
    Ok((delivered, followups))
}

/// The message without the `Return-Path:`/`Delivered-To:` stamp delivery put on top (a
/// redirect forwards the message as it came; the MTA adds its own).
fn strip_stamp(message: &[u8]) -> &[u8] {
    let mut m = message;
    for name in [&b"Return-Path:"[..], b"Delivered-To:"] {
        if m.len() >= name.len()
            && m.get(..name.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(name))
            && let Some(i) = memchr::memchr(b'\n', m)
        {
            m = m.get(i + 1..).unwrap_or_default();
        }
    }
    m
}

/// Writes every copy, then commits them (see the module doc for the failure rules).
async fn store_all(
    rcpt: &Recipient,
    plan: &Plan,
    opts: &DeliveryOptions,
) -> Result<Vec<Stored>, DeliverError> {
    let mut targets = plan.stores.clone();
    let mut staged: Vec<(Target, Box<dyn AppendStream>)> = Vec::with_capacity(targets.len());
    let mut i = 0;
    while i < targets.len() {
        let t = targets
            .get(i)
            .cloned()
            .ok_or_else(|| DeliverError::Temporary("target".into()))?;
        i += 1;
        if let Some(special_use) = t.create {
            match rcpt.store.create(&t.mailbox, special_use).await {
                Ok(()) => {
                    info!(user = %rcpt.user.name, mailbox = %t.mailbox, "sieve: fileinto :create made the mailbox")
                }
                Err(StorageError::AlreadyExists) => {}
                Err(e) => {
                    warn!(user = %rcpt.user.name, mailbox = %t.mailbox, error = %e, "sieve: fileinto :create failed")
                }
            }
        }
        match stage(rcpt, &t.mailbox, &plan.message).await {
            Ok(s) => staged.push((t, s)),
            Err(StorageError::NonExistent | StorageError::InvalidName(_))
                if !t.mailbox.eq_ignore_ascii_case(&plan.keep_mailbox) =>
            {
                info!(user = %rcpt.user.name, mailbox = %t.mailbox, "sieve: fileinto target unusable; kept instead");
                let keep = Target {
                    mailbox: plan.keep_mailbox.clone(),
                    ..t
                };
                if let Some(existing) = targets
                    .iter_mut()
                    .find(|x| same_mailbox(&x.mailbox, &keep.mailbox))
                {
                    existing.flags = existing.flags.union(keep.flags);
                    if let Some((st, _)) = staged
                        .iter_mut()
                        .find(|(x, _)| same_mailbox(&x.mailbox, &keep.mailbox))
                    {
                        st.flags = st.flags.union(keep.flags);
                        st.keywords.extend(keep.keywords);
                    }
                } else {
                    targets.push(keep);
                }
            }
            Err(e) => return Err(DeliverError::from_storage(e, opts)),
        }
    }
    let mut stored: Vec<Stored> = Vec::with_capacity(staged.len());
    for (t, s) in staged {
        let r = crate::metrics::storage(
            crate::metrics::StorageOp::Append,
            s.commit(t.flags, t.keywords.clone(), None),
        )
        .await;
        match r {
            Ok(r) => {
                info!(to = %rcpt.address, user = %rcpt.user.name, mailbox = %t.mailbox, uid = r.uid, size = plan.message.len(), "delivered");
                stored.push(Stored {
                    mailbox: t.mailbox,
                    uid: r.uid,
                });
            }
            Err(e) if stored.is_empty() => return Err(DeliverError::from_storage(e, opts)),
            Err(e) => {
                warn!(user = %rcpt.user.name, mailbox = %t.mailbox, error = %e, "sieve: a copy could not be committed after others were; the message counts as delivered");
                if !stored.iter().any(|s| same_mailbox(&s.mailbox, "INBOX"))
                    && let Ok(s) = stage(rcpt, "INBOX", &plan.message).await
                    && let Ok(r) = s.commit(t.flags, t.keywords, None).await
                {
                    stored.push(Stored {
                        mailbox: "INBOX".into(),
                        uid: r.uid,
                    });
                }
            }
        }
    }
    Ok(stored)
}

/// Writes the message into a mailbox's staging area without committing it.
async fn stage(
    rcpt: &Recipient,
    mailbox: &str,
    message: &[u8],
) -> Result<Box<dyn AppendStream>, StorageError> {
    let mut w = rcpt.store.append_stream(mailbox).await?;
    if let Some(id) = rcpt.delivery {
        w.set_delivery(id);
    }
    w.reserve(message.len() as u64)?;
    w.write(message).await?;
    Ok(w)
}

/// A script's reject reason as one line of an LMTP reply (control characters and line breaks
/// become spaces; at most 400 characters, so the reply stays within RFC 5321's 512).
pub fn reply_text(reason: &str) -> String {
    let one: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(400)
        .collect();
    let t = one.trim();
    if t.is_empty() {
        "Message rejected".to_string()
    } else {
        t.to_string()
    }
}

/// Items a test (or a caller) may want to see: which flags a list of Sieve flags gives.
pub fn flags_for(flags: &[String]) -> (SystemFlags, Vec<String>) {
    split_flags(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_split_into_system_flags_and_keywords() {
        let (s, k) = flags_for(&[
            "\\Seen".into(),
            "\\flagged".into(),
            "$Label1".into(),
            "\\Recent".into(),
            "bad(kw".into(),
            "$label1".into(),
        ]);
        assert_eq!(s, SystemFlags::SEEN.union(SystemFlags::FLAGGED));
        assert_eq!(k, ["$Label1"]);
    }

    #[test]
    fn the_stamp_is_not_redirected() {
        assert_eq!(
            strip_stamp(b"Return-Path: <a@b>\r\nDelivered-To: c@d\r\nSubject: x\r\n\r\nb"),
            b"Subject: x\r\n\r\nb"
        );
        assert_eq!(strip_stamp(b"Subject: x\n\nb"), b"Subject: x\n\nb");
    }

    #[test]
    fn the_bench_script_compiles() {
        // bench/run's `sieve` row runs this text on mailcove and on Pigeonhole.
        let src = include_str!("../../bench/sieve-40-rules.sieve");
        if let Err(e) = crate::sieve::compile(src) {
            panic!("bench/sieve-40-rules.sieve: {e}");
        }
    }

    #[test]
    fn from_addresses() {
        assert_eq!(bare_address("Demo <demo@example.org>"), "demo@example.org");
        assert_eq!(bare_address(" demo@example.org "), "demo@example.org");
    }
}
