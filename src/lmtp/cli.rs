//! `mailcove deliver`: stores one message from stdin for one user, as an LDA for Postfix's
//! `mailbox_command`, a `pipe` transport, Exim's `pipe` transport or procmail.
//!
//! It uses the same configuration, users file and storage as the daemon and may run while the
//! daemon runs: the Maildir backend's cross-process locks serialise them, and the daemon notices
//! the new file like any other external writer's. Started as root it becomes `server.user` (the
//! owner of all mail) before touching a mailbox, exactly as the daemon does.
//!
//! The exit status follows sysexits(3), which MTAs map to "bounce" or "retry later", and a single
//! line on stderr gives the reason:
//!
//! | status | meaning |
//! |---|---|
//! | 0  | stored (durably) |
//! | 64 `EX_USAGE` | bad arguments (control characters in an address or folder) |
//! | 67 `EX_NOUSER` | no such user |
//! | 73 `EX_CANTCREAT` | cannot be stored, permanently: over quota with `over_quota = "permanent"`, larger than `limits.max_message_size`, or a user whose name cannot form a mail path |
//! | 75 `EX_TEMPFAIL` | try again later: over quota with `over_quota = "temporary"`, storage or I/O trouble, an unreadable configuration or users file |
//! | 77 `EX_NOPERM` | the recipient's Sieve script rejected the message (`reject`/`ereject`); the reason is on stderr (as `dovecot-lda -e`) |
//!
//! `-m FOLDER` that does not exist falls back to INBOX (as Dovecot's LDA without
//! `lda_mailbox_autocreate`); it is never an error.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use super::deliver::{self, DeliverError, DeliveryOptions};
use crate::config::Config;
use crate::limits::INCOMING_MESSAGE_CHUNK;
use crate::server::privdrop;
use crate::spool::{Spool, Spooled};

/// Delivered.
pub const EX_OK: u8 = 0;
/// Command line usage error.
pub const EX_USAGE: u8 = 64;
/// Addressee unknown.
pub const EX_NOUSER: u8 = 67;
/// Cannot create (user) output file.
pub const EX_CANTCREAT: u8 = 73;
/// Temporary failure; the MTA should retry.
pub const EX_TEMPFAIL: u8 = 75;
/// Permission denied: a Sieve `reject` refused the message (as `dovecot-lda -e`: the reason is
/// on stderr and the MTA bounces with it).
pub const EX_NOPERM: u8 = 77;

/// What `mailcove deliver` was asked to do.
#[derive(Debug, Clone)]
pub struct DeliverArgs<'a> {
    /// The configuration file.
    pub config: &'a Path,
    /// The recipient (`-d`).
    pub user: &'a str,
    /// The folder (`-m`).
    pub mailbox: Option<&'a str>,
    /// The envelope sender (`-f`).
    pub sender: Option<&'a str>,
}

/// A failure with its exit status and one-line reason.
#[derive(Debug)]
struct Exit(u8, String);

/// Runs `mailcove deliver` with the message on `input`; prints the reason of a failure on stderr
/// and returns the exit status.
pub fn run(args: &DeliverArgs<'_>, input: &mut dyn Read) -> u8 {
    match deliver_stdin(args, input) {
        Ok(()) => EX_OK,
        Err(Exit(code, why)) => {
            eprintln!("mailcove deliver: {why}");
            code
        }
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

fn deliver_stdin(args: &DeliverArgs<'_>, input: &mut dyn Read) -> Result<(), Exit> {
    if std::env::var_os("MAILCOVE_LOG").is_some() {
        crate::logging::init_cli();
    }
    let usage = |what: &str| Exit(EX_USAGE, format!("{what} contains control characters"));
    if has_control(args.user) || args.user.is_empty() {
        return Err(usage("-d USER"));
    }
    if args.sender.is_some_and(has_control) {
        return Err(usage("-f SENDER"));
    }
    if args.mailbox.is_some_and(has_control) {
        return Err(usage("-m FOLDER"));
    }
    let config = Config::load(args.config).map_err(|e| {
        let first = e.to_string().lines().next().unwrap_or_default().to_string();
        Exit(EX_TEMPFAIL, format!("configuration: {first}"))
    })?;
    if crate::setup::is_memory_location(&config.mail.location) {
        return Err(Exit(
            EX_TEMPFAIL,
            crate::setup::MEMORY_DELIVER_REFUSED.into(),
        ));
    }
    let id = privdrop::resolve(
        config.server.user.as_deref(),
        config.server.group.as_deref(),
    )
    .map_err(|e| Exit(EX_TEMPFAIL, e.to_string()))?;
    let auth = crate::setup::lookup_authenticator(&config)
        .map_err(|e| Exit(EX_TEMPFAIL, format!("users file: {e}")))?;
    if let Some(id) = id {
        privdrop::drop_to(id).map_err(|e| Exit(EX_TEMPFAIL, e.to_string()))?;
    }
    let storage = crate::setup::storage_backend(&config)
        .map_err(|e| Exit(EX_TEMPFAIL, format!("mail storage: {e}")))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Exit(EX_TEMPFAIL, format!("runtime: {e}")))?;
    let opts = DeliveryOptions::from(&config.lmtp);
    let auth = Arc::new(auth);
    let limits = &config.limits;
    let stored = rt.block_on(async {
        let (from_line_sender, message) = spool_input(
            input,
            limits.max_message_size,
            limits.max_inflight_message_bytes,
            args.user,
        )
        .await?;
        let sender = args
            .sender
            .map(str::to_string)
            .or(from_line_sender)
            .unwrap_or_default();
        let sender = sender.trim_start_matches('<').trim_end_matches('>');
        let start = message
            .read_chunk(0)
            .await
            .map_err(|e| Exit(EX_TEMPFAIL, format!("reading the message back: {e}")))?;
        let header = deliver::stamp_header(sender, args.user, &start);
        let fail = |e: DeliverError| exit_for(&e, args.user);
        let rcpt = deliver::resolve(&auth, &storage, args.user, &opts)
            .await
            .map_err(fail)?;
        let sieve_ctx = crate::sieve::deliver::Context {
            cfg: Arc::new(config.clone()),
            hostname: config.server.hostname.clone(),
            sender: sender.to_string(),
            remote_ip: None,
            remote_host: None,
            auth: None,
            orig_to: None,
        };
        let (delivered, followups) = crate::sieve::deliver::deliver_recipient(
            &sieve_ctx,
            &rcpt,
            args.mailbox,
            &header,
            &message,
            &opts,
        )
        .await
        .map_err(fail)?;
        // The message is durable; vacation replies are sent before exiting (errors logged).
        followups.run().await;
        Ok(delivered)
    });
    match stored {
        Ok(crate::sieve::deliver::Delivered::Stored(s)) => {
            for s in s {
                tracing::info!(to = args.user, mailbox = %s.mailbox, uid = s.uid, "delivered");
            }
            Ok(())
        }
        Ok(crate::sieve::deliver::Delivered::NotStored) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Reads the message from `input` into a spool, without an mbox `From ` line at its top (whose
/// sender it returns). More than `max_size` bytes is `TooBig`.
async fn spool_input(
    input: &mut dyn Read,
    max_size: u64,
    budget_limit: u64,
    user: &str,
) -> Result<(Option<String>, Spooled), Exit> {
    let read_err = |e: std::io::Error| Exit(EX_TEMPFAIL, format!("reading the message: {e}"));
    let mut input = input.take(max_size.saturating_add(1));
    let mut buf = vec![0u8; INCOMING_MESSAGE_CHUNK];
    // The first line (up to one chunk) decides about a `From ` line.
    let mut head = 0;
    while head < buf.len() {
        let n = input
            .read(buf.get_mut(head..).unwrap_or_default())
            .map_err(read_err)?;
        if n == 0 {
            break;
        }
        head += n;
        if buf.get(..head).is_some_and(|b| b.contains(&b'\n')) {
            break;
        }
    }
    let mut total = head as u64;
    let (sender, rest) = deliver::strip_mbox_from_line(buf.get(..head).unwrap_or_default());
    let mut spool = Spool::new(budget_limit);
    let spool_err = |e: std::io::Error| Exit(EX_TEMPFAIL, format!("spooling the message: {e}"));
    spool.write(rest).await.map_err(spool_err)?;
    loop {
        let n = input.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > max_size {
            break;
        }
        spool
            .write(buf.get(..n).unwrap_or_default())
            .await
            .map_err(spool_err)?;
    }
    if total > max_size {
        return Err(exit_for(&DeliverError::TooBig, user));
    }
    Ok((sender, spool.finish()))
}

/// The exit status and reason of a failed delivery.
fn exit_for(e: &DeliverError, user: &str) -> Exit {
    let code = match e {
        DeliverError::NoSuchUser(_) => EX_NOUSER,
        DeliverError::OverQuota { temporary: true } | DeliverError::Temporary(_) => EX_TEMPFAIL,
        DeliverError::OverQuota { temporary: false }
        | DeliverError::TooBig
        | DeliverError::Permanent(_) => EX_CANTCREAT,
        DeliverError::Rejected(_) => EX_NOPERM,
    };
    Exit(code, format!("{user}: {e}"))
}
