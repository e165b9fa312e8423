//! The Maildir backend: Maildir++ as Dovecot lays it out by default.
//!
//! * INBOX is the user's Maildir root; a folder `Sent` is `.Sent`, a folder
//!   `Work/Projects` (wire separator `/`) is `.Work.Projects`, and each
//!   level is written in modified UTF-7 (`Entwürfe` is `.Entw&APw-rfe`).
//!   Because `.` separates levels on disk, a `.` inside a level is refused.
//! * Parents are implicit: creating `a/b/c` creates `.a.b.c` only. LIST
//!   shows a missing parent as `\Noselect \HasChildren`; deleting a mailbox
//!   that has children removes its directory, after which it lists the same
//!   way (RFC 3501 section 6.3.4).
//! * Per mailbox, mailcove keeps `mailcove-index` + `mailcove-index.log`
//!   (UIDs, modseqs, sizes, dates, POP3 download times), `mailcove-cache`
//!   (parsed MIME data the IMAP layer stores), and shares Dovecot's
//!   `dovecot-keywords`. A `dovecot-uidlist` is adopted when no index of
//!   ours exists yet. `mailcove-mailboxid` holds the MAILBOXID (RFC 8474;
//!   see `objectid.rs` for EMAILID and SAVEDATE, kept in file names). `mailcove-metadata` holds
//!   its METADATA entries (RFC 5464; `metadata.rs`).
//! * Per user: `subscriptions` (Dovecot's format, version 2),
//!   `mailcove-special-use`, `maildirsize` (Maildir++ quota),
//!   `mailcove-uidvalidity` (last UIDVALIDITY handed out), `mailcove-server-metadata` (the
//!   server METADATA entries) and
//!   `mailcove-pop3.lock`.
//!
//! Where the code is (files under `src/storage/maildir/`):
//!
//! * `storage.rs`: the options, the process-wide registry of mailbox states
//!   and the [`Storage`](crate::storage::Storage) that opens a user.
//! * `user.rs`: one user's context (names to directories, the per-user lock,
//!   COPY/MOVE, APPEND, STATUS); `tree.rs`: listing, creating, deleting and
//!   renaming folders; `subscriptions.rs`: the subscription and special-use
//!   files.
//! * `user_store.rs`, `append_stream.rs`, `mailbox_handle.rs`: the storage
//!   traits ([`UserStore`](crate::storage::UserStore),
//!   [`AppendStream`](crate::storage::AppendStream),
//!   [`MailboxHandle`](crate::storage::MailboxHandle)) implemented on top of
//!   those.
//! * `mailbox/`: one mailbox's state and every operation on it, a file per
//!   concern (see `mailbox/mod.rs`).
//! * On-disk formats: `index.rs`, `cache.rs`, `dovecot.rs`, `filename.rs`;
//!   reads in `content.rs`, quota in `quota.rs`, inotify in `watch.rs`,
//!   file-system helpers in `fsutil.rs`, the shared fsyncs of a mailbox's
//!   writers in `group_commit.rs`.
//!
//! See `docs/design/storage.md` for the reasoning.

mod append_stream;
mod cache;
mod content;
mod dovecot;
mod feed;
mod filename;
mod fsutil;
mod fts;
mod group_commit;
mod index;
mod mailbox;
mod mailbox_handle;
mod metadata;
mod objectid;
mod quota;
mod storage;
mod subscriptions;
mod tree;
mod user;
mod user_store;
mod watch;

pub use self::storage::{MaildirOptions, MaildirStorage, expand_location, maildir_template};
pub use self::user_store::MaildirUser;

/// Subscriptions file, as Dovecot names it.
const SUBSCRIPTIONS_FILE: &str = "subscriptions";
/// Our per-user special-use file: `\Sent<TAB>level<TAB>level...` per line.
const SPECIAL_USE_FILE: &str = "mailcove-special-use";
/// Serialises read-modify-write of the per-user files across processes.
const USER_LOCK_FILE: &str = "mailcove-user.lock";
/// The POP3 maildrop lock.
const POP3_LOCK_FILE: &str = "mailcove-pop3.lock";
