//! [`MaildirUser`]: the [`UserStore`] of the Maildir backend, running each call on a blocking
//! worker.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use async_trait::async_trait;

use super::POP3_LOCK_FILE;
use super::append_stream::MaildirAppend;
use super::fsutil::{LockMode, blocking, flock, now_secs, open_lock_file};
use super::mailbox_handle::MaildirMailbox;
use super::user::UserCtx;
use super::{feed, filename, quota};
use crate::storage::names::MailboxName;
use crate::storage::{
    AppendManyResult, AppendMessage, AppendResult, AppendStream, ChangeKind, FeedSubscription,
    ImportMessage, MailboxInfo, MailboxStatus, MetadataChange, MetadataMap, OpenOptions,
    PendingAppend, Pop3Lock, QuotaUsage, Result, SpecialUse, StorageError, SyncOutcome, UserStore,
    View,
};

/// [`UserStore`] of the Maildir backend.
pub struct MaildirUser(pub(super) Arc<UserCtx>);

impl MaildirUser {
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&UserCtx) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let ctx = self.0.clone();
        blocking(move || f(&ctx)).await
    }
}

#[async_trait]
impl UserStore for MaildirUser {
    fn separator(&self) -> char {
        self.0.sep()
    }

    async fn list(&self) -> Result<Vec<MailboxInfo>> {
        self.run(|u| u.list()).await
    }

    async fn subscriptions(&self) -> Result<Vec<String>> {
        self.run(|u| {
            Ok(u.read_subscriptions()?
                .into_iter()
                .map(|c| c.join(&u.sep().to_string()))
                .collect())
        })
        .await
    }

    async fn fts(&self) -> Result<Option<Arc<dyn crate::fts::FtsIndex>>> {
        super::fts::user_fts(&self.0).await
    }

    async fn rebuild_index(&self, name: &str) -> Result<()> {
        let n = self.0.parse(name, false)?;
        self.run(move |u| u.state(&n)?.rebuild_index()).await
    }

    async fn mailbox_id(&self, name: &str) -> Result<String> {
        let name = name.to_owned();
        self.run(move |u| {
            let n = u.parse(&name, false)?;
            super::objectid::mailbox_id(&u.dir_of(&n), u.fsync())
        })
        .await
    }

    async fn metadata_get(&self, mailbox: Option<&str>) -> Result<MetadataMap> {
        let mailbox = mailbox.map(str::to_owned);
        self.run(move |u| u.metadata_get(mailbox.as_deref())).await
    }

    async fn metadata_set(
        &self,
        mailbox: Option<&str>,
        changes: Vec<MetadataChange>,
    ) -> Result<()> {
        let mailbox = mailbox.map(str::to_owned);
        self.run(move |u| u.metadata_set(mailbox.as_deref(), changes))
            .await
    }

    async fn create(&self, name: &str, special_use: Option<SpecialUse>) -> Result<()> {
        let name = name.to_owned();
        self.run(move |u| {
            u.create(&name, special_use)?;
            let n = u.parse(&name, true)?;
            feed::rewatch(u);
            feed::publish(u, Some(feed::wire(u, &n)), ChangeKind::MailboxCreated);
            Ok(())
        })
        .await
    }

    async fn delete(&self, name: &str) -> Result<()> {
        let gone = self.0.parse(name, false);
        let name = name.to_owned();
        self.run(move |u| {
            u.delete(&name)?;
            let n = u.parse(&name, false)?;
            feed::rewatch(u);
            feed::publish(u, Some(feed::wire(u, &n)), ChangeKind::MailboxDeleted);
            Ok(())
        })
        .await?;
        if let Ok(n) = gone {
            super::fts::purge_soon(&self.0, &n);
        }
        Ok(())
    }

    fn origin(&self) -> u64 {
        self.0.origin
    }

    async fn subscribe_changes(&self) -> Result<FeedSubscription> {
        let ws = self.run(feed::watch_set).await?;
        Ok(FeedSubscription::new(
            &self.0.feed.feed,
            self.0.origin,
            Some(ws),
        ))
    }

    fn publish_metadata_change(&self, mailbox: Option<&str>, entries: &[String]) {
        let name = match mailbox {
            Some(m) => match self.0.parse(m, false) {
                Ok(n) => Some(feed::wire(&self.0, &n)),
                Err(_) => Some(m.to_owned()),
            },
            None => None,
        };
        feed::publish(
            &self.0,
            name,
            ChangeKind::MetadataChanged {
                entries: entries.to_vec(),
            },
        );
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let f = self.0.parse(from, false)?;
        let t = self.0.parse(to, false)?;
        if t.is_inbox() || f == t {
            return Err(StorageError::AlreadyExists);
        }
        if t.is_below(&f) {
            return Err(StorageError::Cannot(
                "cannot rename a mailbox into its own child",
            ));
        }
        if f.is_inbox() {
            // RFC 3501 6.3.5: move INBOX's messages into a new mailbox;
            // INBOX stays, empty, and its children are not touched.
            let to = to.to_owned();
            let renamed = to.clone();
            let res = self
                .run(move |u| {
                    u.create(&to, None)?;
                    u.metadata_copy_inbox(&u.parse(&to, false)?)?;
                    let inbox = u.state(&f)?;
                    let (snap, _) = inbox.sync(false, false)?;
                    let uids: Vec<u32> = snap.messages.iter().map(|m| m.uid).collect();
                    u.copy(&inbox, &uids, &to, true)?;
                    let n = u.parse(&to, false)?;
                    feed::rewatch(u);
                    feed::publish(u, Some(feed::wire(u, &n)), ChangeKind::MailboxCreated);
                    Ok(())
                })
                .await;
            if res.is_ok() {
                super::fts::index_soon(&self.0, &renamed);
            }
            return res;
        }
        let (old, renamed) = (f.clone(), to.to_owned());
        self.run(move |u| {
            u.rename_folders(&f, &t)?;
            feed::rewatch(u);
            feed::publish(
                u,
                Some(feed::wire(u, &t)),
                ChangeKind::MailboxRenamed {
                    old: feed::wire(u, &f),
                },
            );
            Ok(())
        })
        .await?;
        // The renamed mailbox lives in another directory now: its entries move by being
        // indexed afresh (searches scan meanwhile) and the old ones are dropped.
        super::fts::purge_soon(&self.0, &old);
        super::fts::index_soon(&self.0, &renamed);
        Ok(())
    }

    async fn subscribe(&self, name: &str) -> Result<()> {
        let n = self.0.parse(name, false)?;
        self.run(move |u| {
            u.set_subscribed(&n, true)?;
            feed::publish(u, Some(feed::wire(u, &n)), ChangeKind::SubscriptionChanged);
            Ok(())
        })
        .await
    }

    async fn unsubscribe(&self, name: &str) -> Result<()> {
        let n = self.0.parse(name, false)?;
        self.run(move |u| {
            u.set_subscribed(&n, false)?;
            feed::publish(u, Some(feed::wire(u, &n)), ChangeKind::SubscriptionChanged);
            Ok(())
        })
        .await
    }

    async fn status(&self, name: &str) -> Result<MailboxStatus> {
        let name = name.to_owned();
        self.run(move |u| u.status(&name)).await
    }

    async fn open(&self, name: &str, options: OpenOptions) -> Result<View> {
        let n = self.0.parse(name, false)?;
        let ctx = self.0.clone();
        // Finding the state and syncing it in one trip to a blocking thread.
        let claim = options.claim_recent && !options.read_only;
        let (state, changes, synced) = self
            .run(move |u| {
                let state = u.state(&n)?;
                let mut changes = state.subscribe();
                changes.borrow_and_update();
                let (snapshot, recent) = state.sync(true, claim)?;
                Ok((state, changes, SyncOutcome { snapshot, recent }))
            })
            .await?;
        let handle = Arc::new(MaildirMailbox {
            name: name.to_owned(),
            state,
            user: ctx,
            watching: AtomicBool::new(false),
        });
        Ok(View::from_sync(handle, options, changes, synced))
    }

    async fn append(&self, name: &str, message: AppendMessage) -> Result<AppendResult> {
        let mailbox = name.to_owned();
        let name = name.to_owned();
        let res = self.run(move |u| u.append(&name, message)).await;
        if res.is_ok() {
            super::fts::index_soon(&self.0, &mailbox);
        }
        res
    }

    async fn commit_many(&self, items: Vec<PendingAppend>) -> Result<AppendManyResult> {
        super::append_stream::commit_many(&self.0, items).await
    }

    async fn append_stream(&self, name: &str) -> Result<Box<dyn AppendStream>> {
        let n = self.0.parse(name, false)?;
        let (state, file, path, room) = self
            .run(move |u| {
                let state = u.state(&n)?;
                quota::check(&u.root, &u.limits, u.fsync(), 0, 1)?;
                let room =
                    match u.limits.bytes {
                        Some(limit) => Some(limit.saturating_sub(
                            quota::usage(&u.root, &u.limits, u.fsync())?.bytes_used,
                        )),
                        None => None,
                    };
                let (file, path) = state.create_tmp()?;
                Ok((state, file, path, room))
            })
            .await?;
        Ok(Box::new(MaildirAppend {
            state,
            user: self.0.clone(),
            file: Some(file),
            path,
            len: 0,
            room,
            counter: filename::VirtualCounter::default(),
            done: false,
            mailbox: name.to_owned(),
        }))
    }

    async fn import_mailbox(
        &self,
        name: &str,
        uidvalidity: u32,
        uidnext: u32,
        special_use: Option<SpecialUse>,
    ) -> Result<()> {
        let name = name.to_owned();
        self.run(move |u| {
            if u.import_mailbox(&name, uidvalidity, uidnext, special_use)? {
                let n = u.parse(&name, true)?;
                feed::rewatch(u);
                feed::publish(u, Some(feed::wire(u, &n)), ChangeKind::MailboxCreated);
            }
            Ok(())
        })
        .await
    }

    async fn import_messages(&self, name: &str, messages: Vec<ImportMessage>) -> Result<()> {
        let mailbox = name.to_owned();
        let name = name.to_owned();
        self.run(move |u| u.import_messages(&name, messages))
            .await?;
        super::fts::index_soon(&self.0, &mailbox);
        Ok(())
    }

    async fn quota(&self) -> Result<QuotaUsage> {
        self.run(|u| quota::usage(&u.root, &u.limits, u.fsync()))
            .await
    }

    async fn quota_recalc(&self) -> Result<QuotaUsage> {
        self.run(|u| quota::recalculate(&u.root, &u.limits, u.fsync()))
            .await
    }

    async fn pop3_lock(&self) -> Result<Pop3Lock> {
        self.run(|u| {
            let f = open_lock_file(&u.root.join(POP3_LOCK_FILE))?;
            if !flock(&f, LockMode::TryExclusive).map_err(|e| StorageError::io("pop3 lock", e))? {
                return Err(StorageError::InUse);
            }
            // Closing the descriptor (dropping the guard) releases the flock.
            Ok(Pop3Lock(Box::new(f)))
        })
        .await
    }

    async fn pop3_expire(&self, days: u32) -> Result<Vec<u32>> {
        self.run(move |u| {
            let inbox = u.state(&MailboxName::from_components(vec!["INBOX".to_owned()]))?;
            let cutoff = now_secs() - i64::from(days) * 86_400;
            let uids = inbox.downloaded_before(cutoff)?;
            if uids.is_empty() {
                return Ok(uids);
            }
            let (gone, usage) = inbox.expunge(Some(&uids), true)?;
            quota::add(&u.root, usage.bytes, usage.messages);
            Ok(gone)
        })
        .await
    }
}
