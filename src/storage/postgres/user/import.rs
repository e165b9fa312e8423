//! Migration (`mailcove migrate`) into the database: a mailbox with the UIDVALIDITY and UIDNEXT
//! it has in another store, and messages stored under their own UIDs
//! ([`crate::storage::UserStore::import_mailbox`], [`crate::storage::UserStore::import_messages`]).
//!
//! The same locks as every other write: the user's row first, then the mailbox row, both held
//! until commit, so no session sees half an import.

use sqlx::Row as _;

use super::{
    NewRow, PgUser, begin, blob, db, i64_of, insert_rows, key, lock_user, u32_of, virtual_size,
};
use crate::storage::names::MailboxName;
use crate::storage::{ChangeKind, ImportMessage, Result, SpecialUse, StorageError};

impl PgUser {
    /// Creates mailbox `n` when missing, then applies [`crate::storage::import_counters`];
    /// true when it was created.
    pub(crate) async fn import_mailbox_pg(
        &self,
        n: &MailboxName,
        uidvalidity: u32,
        uidnext: u32,
        special: Option<SpecialUse>,
    ) -> Result<bool> {
        let created = match self.mailbox_id_of(n).await {
            Ok(_) => false,
            Err(StorageError::NonExistent) => match self.create_mailbox(n, special).await {
                Ok(_) => true,
                Err(StorageError::AlreadyExists) => false,
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        };
        let mut tx = begin(self.pool()).await?;
        lock_user(&mut tx, self.user_id).await?;
        let r = sqlx::query(
            "SELECT mailbox_id, uidvalidity, uidnext, highest_modseq, \
             NOT EXISTS (SELECT 1 FROM messages m WHERE m.user_id = b.user_id \
             AND m.mailbox_id = b.mailbox_id) \
             FROM mailboxes b WHERE user_id = $1 AND name = $2 FOR UPDATE",
        )
        .bind(self.user_id)
        .bind(key(n))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?
        .ok_or(StorageError::NonExistent)?;
        let id: i64 = r.try_get(0).map_err(db)?;
        let have = (
            u32_of(r.try_get(1).map_err(db)?),
            u32_of(r.try_get(2).map_err(db)?),
        );
        let highest: i64 = r.try_get(3).map_err(db)?;
        let empty: bool = r.try_get(4).map_err(db)?;
        let pair = crate::storage::import_counters(have, empty, (uidvalidity, uidnext))?;
        if pair != have {
            if pair.0 != have.0 {
                // Tombstones and cached data of the old UIDVALIDITY name nothing any more; the
                // window then knows nothing before now (QRESYNC answers Unknown further back).
                for sql in [
                    "DELETE FROM vanished WHERE user_id = $1 AND mailbox_id = $2",
                    "DELETE FROM message_cache WHERE user_id = $1 AND mailbox_id = $2",
                ] {
                    sqlx::query(sql)
                        .bind(self.user_id)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                }
                sqlx::query(
                    "UPDATE mailboxes SET vanished_floor = $3, \
                     first_recent = least(first_recent, $4) \
                     WHERE user_id = $1 AND mailbox_id = $2",
                )
                .bind(self.user_id)
                .bind(id)
                .bind(highest)
                .bind(i64::from(pair.1))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
            sqlx::query(
                "UPDATE mailboxes SET uidvalidity = $3, uidnext = $4 \
                 WHERE user_id = $1 AND mailbox_id = $2",
            )
            .bind(self.user_id)
            .bind(id)
            .bind(i64::from(pair.0))
            .bind(i64::from(pair.1))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        // A mailbox deleted and created again must still get a UIDVALIDITY of its own.
        sqlx::query(
            "UPDATE users SET last_uidvalidity = greatest(last_uidvalidity, $2) \
             WHERE user_id = $1",
        )
        .bind(self.user_id)
        .bind(i64::from(uidvalidity))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        self.us.poke(id);
        if created {
            self.publish(Some(self.wire(n)), ChangeKind::MailboxCreated);
        }
        Ok(created)
    }

    /// Stores `messages` into mailbox `n` under their UIDs, in one transaction: each run of
    /// consecutive UIDs goes through [`insert_rows`] with UIDNEXT set to its first UID.
    pub(crate) async fn import_messages_pg(
        &self,
        n: &MailboxName,
        messages: Vec<ImportMessage>,
    ) -> Result<()> {
        let mut tx = begin(self.pool()).await?;
        lock_user(&mut tx, self.user_id).await?;
        let r = sqlx::query(
            "SELECT mailbox_id, uidnext FROM mailboxes WHERE user_id = $1 AND name = $2 \
             FOR UPDATE",
        )
        .bind(self.user_id)
        .bind(key(n))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?
        .ok_or(StorageError::NonExistent)?;
        let id: i64 = r.try_get(0).map_err(db)?;
        let uidnext = u32_of(r.try_get(1).map_err(db)?);
        if messages.is_empty() {
            return Ok(());
        }
        crate::storage::import_uidnext(uidnext, messages.iter().map(|m| m.uid))?;
        let bytes: u64 = messages.iter().map(|m| m.data.len() as u64).sum();
        let count = messages.len() as u64;
        // Runs of consecutive UIDs.
        let mut runs: Vec<(u32, Vec<NewRow>)> = Vec::new();
        for m in messages {
            let h = blob::hash(&m.data);
            blob::put(&mut tx, self.user_id, &h, &m.data).await?;
            let row = NewRow {
                hash: h,
                phys: m.data.len() as u64,
                virt: virtual_size(&m.data),
                system: m.flags,
                keywords: m.keywords,
                date: m.internal_date,
                email: None,
            };
            match runs.last_mut() {
                Some((first, rows))
                    if u64::from(*first) + rows.len() as u64 == u64::from(m.uid) =>
                {
                    rows.push(row);
                }
                _ => runs.push((m.uid, vec![row])),
            }
        }
        for (first, rows) in runs {
            sqlx::query("UPDATE mailboxes SET uidnext = $3 WHERE user_id = $1 AND mailbox_id = $2")
                .bind(self.user_id)
                .bind(id)
                .bind(i64::from(first))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            insert_rows(&mut tx, self.user_id, id, rows).await?;
        }
        super::add_usage(&mut tx, self.user_id, i64_of(bytes), i64_of(count)).await?;
        // Live nodes hear of imported mail as of any other (a migration into a running cluster).
        let notice = super::super::push::Entry::new(id, &key(n), super::super::push::Kind::New);
        self.notify(&mut tx, vec![notice]).await?;
        tx.commit().await.map_err(db)?;
        self.us.poke(id);
        self.publish(Some(self.wire(n)), ChangeKind::MessageNew);
        Ok(())
    }
}
