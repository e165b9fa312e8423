//! Pushes across nodes (issue 18): a change committed by one mailcove process wakes the IDLE and
//! NOTIFY sessions of every other process on the same database.
//!
//! * **Sending.** Every transaction that changes a mailbox ends with one `pg_notify` on
//!   [`CHANNEL`] before its `COMMIT` ([`send`]): PostgreSQL delivers it only if and when the
//!   transaction commits, in commit order, so a listener never hears of a change it cannot read
//!   yet. The payload is a small JSON [`Notice`]: the sending node, the user, and per mailbox
//!   its id, the kind of change and the mailbox key (for NOTIFY's names).
//! * **Listening.** One connection per process (sqlx `PgListener`, its own one-connection pool
//!   so it never takes a slot of the storage pool) LISTENs on [`CHANNEL`]. It starts when the
//!   first session waits ([`ensure`], from `MailboxHandle::watch` and
//!   `UserStore::subscribe_changes`) and turns a notice of another node into `poke(mailbox_id)`
//!   and feed events for the users this process has in memory; other users are ignored.
//! * **Catch-up poll.** Every [`PG_CATCHUP_POLL_SECS`] one query reads `highest_modseq` and
//!   `uidnext` of every mailbox a view of this process has open (every change takes a modseq or
//!   a UID) and pokes those that moved past what this process last saw (a view's sync records
//!   what it read). It covers a database without LISTEN (CockroachDB; no `pg_notify` there, so
//!   nothing is sent either) and a listener that is down. For users with a NOTIFY subscription it
//!   also compares their mailbox list and, while the listener is down, publishes what changed.
//! * **Off** (`[mail] postgresql_notify = false`, for a pooler in transaction mode where LISTEN
//!   does not work): nothing is sent or listened to, and the poll alone carries changes.
//! * **Reconnecting.** Notifications sent while the listener was disconnected are lost; once it
//!   LISTENs again it pokes every watched mailbox once and runs the poll (publishing feed
//!   differences), so every session resynchronises from the database.
//!
//! Ordering on entering IDLE: `View::changed` calls `watch` first, which returns only after the
//! listener's first `LISTEN` completed (or failed: then the poll covers), and the session then
//! refreshes from the database. A change committed before the `LISTEN` is in that refresh; one
//! committed after it is notified.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::Postgres;
use sqlx::Row as _;
use sqlx::Transaction;
use sqlx::postgres::{PgListener, PgPoolOptions};

use super::user::from_key;
use super::{Shared, UserShared, db, u32_of, u64_of};
use crate::limits::{PG_CATCHUP_POLL_SECS, PG_NOTIFY_PAYLOAD_BYTES};
use crate::storage::{Change, ChangeKind, Result};

/// The one channel every node sends on and listens to.
pub(crate) const CHANNEL: &str = "mailcove_changes";

/// What a transaction changed, as sent to the other nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Notice {
    /// The sending node ([`Shared::node`]): a node ignores its own notices.
    pub o: String,
    /// The user.
    pub u: i64,
    /// The changes; empty when they did not fit into one payload: "anything of this user".
    #[serde(default)]
    pub c: Vec<Entry>,
}

/// One change of a [`Notice`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// The mailbox id (0: the server's metadata).
    pub m: i64,
    /// What happened.
    pub k: Kind,
    /// The mailbox key (levels joined by `/`), for NOTIFY's mailbox names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// The key before a rename.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    /// Metadata entry names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub e: Vec<String>,
}

/// The kinds of [`Entry`] (those of [`ChangeKind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    New,
    Expunge,
    Flags,
    Created,
    Deleted,
    Renamed,
    Sub,
    Meta,
}

impl Entry {
    /// A change of mailbox `m` (key `n`).
    pub fn new(m: i64, n: &str, k: Kind) -> Entry {
        Entry {
            m,
            k,
            n: Some(n.to_owned()),
            old: None,
            e: Vec::new(),
        }
    }

    /// The feed event of this entry, names on the wire with `sep`.
    fn change(&self, sep: char) -> Change {
        let wire = |k: &str| from_key(k).to_wire(sep);
        let kind = match self.k {
            Kind::New => ChangeKind::MessageNew,
            Kind::Expunge => ChangeKind::MessageExpunge,
            Kind::Flags => ChangeKind::FlagChange,
            Kind::Created => ChangeKind::MailboxCreated,
            Kind::Deleted => ChangeKind::MailboxDeleted,
            Kind::Renamed => ChangeKind::MailboxRenamed {
                old: self.old.as_deref().map(wire).unwrap_or_default(),
            },
            Kind::Sub => ChangeKind::SubscriptionChanged,
            Kind::Meta => ChangeKind::MetadataChanged {
                entries: self.e.clone(),
            },
        };
        Change {
            mailbox: self.n.as_deref().map(wire),
            kind,
            origin: 0,
        }
    }
}

/// The payload of a notice: JSON, at most [`PG_NOTIFY_PAYLOAD_BYTES`] (PostgreSQL refuses
/// 8000 and more). Too long, metadata entry names are left out; still too long, the changes
/// are (the receivers then resynchronise every mailbox of the user they watch).
pub(crate) fn encode(node: &str, user_id: i64, entries: Vec<Entry>) -> String {
    let mut n = Notice {
        o: node.to_owned(),
        u: user_id,
        c: entries,
    };
    let fits = |n: &Notice| {
        serde_json::to_string(n)
            .ok()
            .filter(|s| s.len() <= PG_NOTIFY_PAYLOAD_BYTES)
    };
    if let Some(s) = fits(&n) {
        return s;
    }
    for e in &mut n.c {
        e.e.clear();
    }
    if let Some(s) = fits(&n) {
        return s;
    }
    n.c.clear();
    serde_json::to_string(&n).unwrap_or_default()
}

/// Queues the notice of `entries` in `tx`: sent to the other nodes when (and only if) it
/// commits. Nothing is sent where the database has no `pg_notify` (CockroachDB: the poll).
pub(crate) async fn send(
    tx: &mut Transaction<'static, Postgres>,
    sh: &Shared,
    user_id: i64,
    entries: Vec<Entry>,
) -> Result<()> {
    let Some(payload) = payload(sh, user_id, entries) else {
        return Ok(());
    };
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    Ok(())
}

/// The payload [`send`] sends for `entries`; `None` when it sends nothing (no entries, notices
/// off or not supported by the database). For a statement that runs anyway and carries the
/// `pg_notify($CHANNEL, payload)` itself.
pub(crate) fn payload(sh: &Shared, user_id: i64, entries: Vec<Entry>) -> Option<String> {
    if entries.is_empty() || !sh.notify_ok.load(Ordering::Relaxed) {
        return None;
    }
    Some(encode(&sh.node, user_id, entries))
}

/// Starts the listener and the poll of this process once; the first caller (and any caller
/// meanwhile) waits until the listener's first `LISTEN` is done or has failed.
pub(crate) async fn ensure(sh: &Arc<Shared>) {
    sh.push
        .get_or_init(|| async {
            tokio::spawn(poll_loop(Arc::downgrade(sh)));
            if !sh.options.notify {
                return;
            }
            let (ready, wait) = tokio::sync::oneshot::channel();
            tokio::spawn(listen(Arc::downgrade(sh), ready));
            let _ =
                tokio::time::timeout(sh.options.acquire_timeout() + Duration::from_secs(1), wait)
                    .await;
        })
        .await;
}

/// Takes the feed baseline of a user who subscribed to it (the poll compares with it).
pub(crate) async fn baseline(sh: &Shared, us: &UserShared, user_id: i64) -> Result<()> {
    if us.feed_base.lock().is_some() {
        return Ok(());
    }
    let pool = sh.pool().await?;
    let rows = sqlx::query(
        "SELECT mailbox_id, name, highest_modseq, uidnext FROM mailboxes WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_all(&pool)
    .await
    .map_err(db)?;
    let mut base = HashMap::with_capacity(rows.len());
    for r in rows {
        base.insert(
            r.try_get::<i64, _>(0).map_err(db)?,
            MailboxState {
                name: r.try_get(1).map_err(db)?,
                modseq: u64_of(r.try_get(2).map_err(db)?),
                uidnext: u32_of(r.try_get(3).map_err(db)?),
            },
        );
    }
    us.feed_base.lock().get_or_insert(base);
    Ok(())
}

/// What the poll reads of a mailbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MailboxState {
    pub name: String,
    pub modseq: u64,
    pub uidnext: u32,
}

/// The listener: connects, LISTENs, applies notices; reconnects with backoff when the
/// database goes away, and resynchronises after every reconnection.
async fn listen(sh: Weak<Shared>, ready: tokio::sync::oneshot::Sender<()>) {
    let mut ready = Some(ready);
    let Some((connect, acquire)) = sh
        .upgrade()
        .map(|s| (s.connect.clone(), s.options.acquire_timeout()))
    else {
        return;
    };
    // Its own pool of one: never a slot of the storage pool, and sqlx reconnects through it.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .acquire_timeout(acquire)
        .connect_lazy_with(connect);
    let mut backoff = Duration::from_secs(1);
    let mut first = true;
    loop {
        let connected = async {
            let mut l = PgListener::connect_with(&pool).await?;
            l.ignore_pool_close_event(true);
            // A lost connection ends the inner loop below; this loop reconnects with backoff
            // (sqlx's own eager reconnection retries some errors without pause) and then
            // resynchronises, in that order.
            l.eager_reconnect(false);
            l.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        }
        .await;
        let mut l = match connected {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "postgresql listener cannot connect; polling meanwhile");
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(PG_CATCHUP_POLL_SECS));
                if sh.strong_count() == 0 {
                    return;
                }
                continue;
            }
        };
        backoff = Duration::from_secs(1);
        {
            let Some(s) = sh.upgrade() else { return };
            s.listening.store(true, Ordering::Relaxed);
            tracing::info!(channel = CHANNEL, "postgresql listener listening");
            if !first {
                tracing::info!("postgresql listener reconnected; resynchronising");
                resync(&s).await;
            }
        }
        first = false;
        if let Some(r) = ready.take() {
            let _ = r.send(());
        }
        loop {
            let got = l.try_recv().await;
            let Some(s) = sh.upgrade() else { return };
            match got {
                Ok(Some(n)) => apply(&s, n.payload()),
                // The connection was lost: whatever is sent until the next LISTEN is lost, so
                // the reconnection resynchronises everything watched.
                Ok(None) => {
                    s.listening.store(false, Ordering::Relaxed);
                    tracing::warn!("postgresql listener lost its connection; reconnecting");
                    break;
                }
                Err(e) => {
                    s.listening.store(false, Ordering::Relaxed);
                    tracing::warn!(error = %e, "postgresql listener lost; polling meanwhile");
                    break;
                }
            }
        }
    }
}

/// After the listener (re)connected: wakes every watched mailbox once and publishes the feed
/// differences the poll finds.
async fn resync(sh: &Shared) {
    let users: Vec<Arc<UserShared>> = sh.users.lock().values().cloned().collect();
    for us in users {
        for id in us.watched() {
            us.poke(id);
        }
    }
    if let Err(e) = poll(sh, true).await {
        tracing::debug!(error = %e, "postgresql catch-up poll");
    }
}

/// A notice from the channel: pokes and feed events for a user this process has in memory.
pub(crate) fn apply(sh: &Shared, payload: &str) {
    let n: Notice = match serde_json::from_str(payload) {
        Ok(n) => n,
        Err(e) => {
            tracing::debug!(error = %e, "ignoring a notice this node does not read");
            return;
        }
    };
    if n.o == sh.node {
        return;
    }
    let Some(us) = sh.users.lock().get(&n.u).cloned() else {
        return;
    };
    if n.c.is_empty() {
        for id in us.watched() {
            us.poke(id);
        }
        return;
    }
    let feed = us.feed.has_subscribers();
    for e in &n.c {
        match e.k {
            Kind::New | Kind::Expunge | Kind::Flags => us.poke(e.m),
            Kind::Deleted => {
                // As a DELETE in this process: views learn the mailbox is gone.
                us.poke(e.m);
                us.watches.lock().remove(&e.m);
            }
            Kind::Created | Kind::Renamed | Kind::Sub | Kind::Meta => {}
        }
        if feed {
            us.feed.publish(e.change(sh.options.separator));
        }
    }
}

/// Polls every [`PG_CATCHUP_POLL_SECS`] while the storage lives.
async fn poll_loop(sh: Weak<Shared>) {
    let mut every = tokio::time::interval(Duration::from_secs(PG_CATCHUP_POLL_SECS));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        let Some(s) = sh.upgrade() else { return };
        let listening = s.listening.load(Ordering::Relaxed);
        if let Err(e) = poll(&s, !listening).await {
            tracing::debug!(error = %e, "postgresql catch-up poll");
        }
    }
}

/// One catch-up poll: pokes the watched mailboxes whose row moved past what this process saw
/// (or that are gone); for users with a feed subscription compares their mailbox list with the
/// last one and, with `publish`, tells the feed what changed.
pub(crate) async fn poll(sh: &Shared, publish: bool) -> Result<()> {
    let users: Vec<(i64, Arc<UserShared>)> = sh
        .users
        .lock()
        .iter()
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    let (mut wu, mut wm, mut feed_users) = (Vec::new(), Vec::new(), Vec::new());
    let mut watched: Vec<(i64, Arc<UserShared>, Vec<i64>)> = Vec::new();
    for (uid, us) in users {
        let ids = us.watched();
        for id in &ids {
            wu.push(uid);
            wm.push(*id);
        }
        if us.feed.has_subscribers() {
            feed_users.push(uid);
        } else {
            *us.feed_base.lock() = None;
        }
        if !ids.is_empty() || feed_users.last() == Some(&uid) {
            watched.push((uid, us, ids));
        }
    }
    if watched.is_empty() {
        return Ok(());
    }
    let pool = sh.pool().await?;
    let rows = sqlx::query(
        "SELECT user_id, mailbox_id, name, highest_modseq, uidnext FROM mailboxes \
         WHERE user_id = ANY($1) \
         OR (user_id, mailbox_id) IN (SELECT * FROM UNNEST($2::BIGINT[], $3::BIGINT[]))",
    )
    .bind(&feed_users)
    .bind(&wu)
    .bind(&wm)
    .fetch_all(&pool)
    .await
    .map_err(db)?;
    let mut now: HashMap<i64, HashMap<i64, MailboxState>> = HashMap::new();
    for r in rows {
        now.entry(r.try_get(0).map_err(db)?).or_default().insert(
            r.try_get(1).map_err(db)?,
            MailboxState {
                name: r.try_get(2).map_err(db)?,
                modseq: u64_of(r.try_get(3).map_err(db)?),
                uidnext: u32_of(r.try_get(4).map_err(db)?),
            },
        );
    }
    let sep = sh.options.separator;
    for (uid, us, ids) in watched {
        let cur = now.remove(&uid).unwrap_or_default();
        for id in ids {
            match cur.get(&id) {
                Some(m) => {
                    if us.saw(id, m.modseq, m.uidnext) {
                        us.poke(id);
                    }
                }
                None => {
                    us.poke(id);
                    us.watches.lock().remove(&id);
                }
            }
        }
        if feed_users.contains(&uid) {
            for c in feed_diff(&us, cur, publish, sep) {
                us.feed.publish(c);
            }
        }
    }
    Ok(())
}

/// The feed events between a user's last mailbox list and `cur` (none without `publish`);
/// `cur` becomes the last list.
fn feed_diff(
    us: &UserShared,
    cur: HashMap<i64, MailboxState>,
    publish: bool,
    sep: char,
) -> Vec<Change> {
    let mut base = us.feed_base.lock();
    let mut out = Vec::new();
    if let (Some(old), true) = (base.as_ref(), publish) {
        let ev = |name: &str, kind: ChangeKind| Change {
            mailbox: Some(from_key(name).to_wire(sep)),
            kind,
            origin: 0,
        };
        for (id, m) in &cur {
            match old.get(id) {
                None => out.push(ev(&m.name, ChangeKind::MailboxCreated)),
                Some(o) => {
                    if o.name != m.name {
                        let old = from_key(&o.name).to_wire(sep);
                        out.push(ev(&m.name, ChangeKind::MailboxRenamed { old }));
                    }
                    if o.modseq != m.modseq || o.uidnext != m.uidnext {
                        out.push(ev(&m.name, ChangeKind::MessagesChanged));
                    }
                }
            }
        }
        for (id, o) in old {
            if !cur.contains_key(id) {
                out.push(ev(&o.name, ChangeKind::MailboxDeleted));
            }
        }
    }
    *base = Some(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip_and_stay_small() {
        let mut renamed = Entry::new(7, "Work/2025", Kind::Renamed);
        renamed.old = Some("Work/2024".into());
        let s = encode(
            "node-1",
            42,
            vec![Entry::new(3, "INBOX", Kind::New), renamed],
        );
        let n: Notice = serde_json::from_str(&s).unwrap_or_else(|e| panic!("{e}: {s}"));
        assert_eq!(n.o, "node-1");
        assert_eq!(n.u, 42);
        assert_eq!(n.c.len(), 2);
        assert_eq!(n.c[0], Entry::new(3, "INBOX", Kind::New));
        assert_eq!(n.c[1].old.as_deref(), Some("Work/2024"));
        // A message notice is tens of bytes, not kilobytes.
        assert!(s.len() < 120, "{s}");
    }

    #[test]
    fn an_oversized_notice_drops_entry_names_then_everything() {
        let mut meta = Entry::new(3, "INBOX", Kind::Meta);
        meta.e = (0..100).map(|i| format!("/private/{i:0>200}")).collect();
        let s = encode("n", 1, vec![meta]);
        assert!(s.len() <= PG_NOTIFY_PAYLOAD_BYTES);
        let n: Notice = serde_json::from_str(&s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.c.len(), 1);
        assert!(n.c[0].e.is_empty());
        let many: Vec<Entry> = (0..200)
            .map(|i| Entry::new(i, &"x".repeat(200), Kind::Created))
            .collect();
        let s = encode("n", 1, many);
        assert!(s.len() <= PG_NOTIFY_PAYLOAD_BYTES);
        let n: Notice = serde_json::from_str(&s).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            n.c.is_empty(),
            "too many changes: resync everything of the user"
        );
    }

    fn state(name: &str, modseq: u64, uidnext: u32) -> MailboxState {
        MailboxState {
            name: name.into(),
            modseq,
            uidnext,
        }
    }

    #[test]
    fn the_feed_poll_tells_what_changed_in_the_mailbox_list() {
        let us = UserShared::new();
        let first: HashMap<i64, MailboxState> = [
            (1, state("INBOX", 10, 5)),
            (2, state("Work/2024", 3, 2)),
            (3, state("Old", 1, 1)),
        ]
        .into();
        // No baseline yet: nothing to compare with.
        assert!(feed_diff(&us, first.clone(), true, '.').is_empty());
        let second: HashMap<i64, MailboxState> = [
            (1, state("INBOX", 11, 6)),
            (2, state("Work/2025", 3, 2)),
            (4, state("New", 1, 1)),
        ]
        .into();
        // While the listener is up the poll only takes the new list.
        assert!(feed_diff(&us, second.clone(), false, '.').is_empty());
        *us.feed_base.lock() = Some(first);
        let mut got: Vec<(Option<String>, ChangeKind)> = feed_diff(&us, second, true, '.')
            .into_iter()
            .map(|c| (c.mailbox, c.kind))
            .collect();
        got.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        let mut want = vec![
            (Some("INBOX".to_owned()), ChangeKind::MessagesChanged),
            (
                Some("Work.2025".to_owned()),
                ChangeKind::MailboxRenamed {
                    old: "Work.2024".into(),
                },
            ),
            (Some("New".to_owned()), ChangeKind::MailboxCreated),
            (Some("Old".to_owned()), ChangeKind::MailboxDeleted),
        ];
        want.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        assert_eq!(got, want);
    }

    #[test]
    fn entries_become_feed_events_with_the_wire_separator() {
        let mut e = Entry::new(9, "Work/2025", Kind::Renamed);
        e.old = Some("Work/2024".into());
        let c = e.change('.');
        assert_eq!(c.mailbox.as_deref(), Some("Work.2025"));
        assert_eq!(
            c.kind,
            ChangeKind::MailboxRenamed {
                old: "Work.2024".into()
            }
        );
        assert_eq!(c.origin, 0, "another process: no session of ours made it");
        let server = Entry {
            m: 0,
            k: Kind::Meta,
            n: None,
            old: None,
            e: vec!["/shared/comment".into()],
        };
        assert_eq!(server.change('/').mailbox, None);
    }
}
