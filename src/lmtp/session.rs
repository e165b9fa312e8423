//! One LMTP connection: the command loop, the transaction state and the per-recipient replies.
//!
//! Replies are queued and flushed only when no further command is already buffered, which is
//! all PIPELINING (RFC 2920) needs from a server. After DATA (or BDAT LAST) every accepted
//! recipient gets its own reply in RCPT order (RFC 2033 section 4.2), sent as soon as that
//! recipient's copy is durable. Copies are stored in parallel (a bounded number at once) so a
//! recipient whose mailbox is slow or locked delays only its own reply and those after it, never
//! the storing of the others.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use super::command::{self, Command, ParseError};
use super::data;
use super::deliver::{self, DeliverError, DeliveryOptions, Recipient};
use crate::config::ListenerConfig;
use crate::inflight;
use crate::limits::{
    INCOMING_MESSAGE_CHUNK, INFLIGHT_WAIT_MS, LMTP_IDLE_SECS, LMTP_MAX_BAD_COMMANDS,
    LMTP_MAX_COMMAND_LINE, LMTP_MAX_RECIPIENTS, LMTP_PARALLEL_DELIVERIES,
};
use crate::server::Shared;
use crate::server::conn::{Conn, Line};
use crate::spool::Spool;

/// A mail transaction between MAIL and the end of the message.
struct Transaction {
    from: String,
    size: Option<u64>,
    recipients: Vec<Recipient>,
    /// MAIL's `AUTH=` (for Sieve's `envelope "auth"`).
    auth: Option<String>,
    /// Each accepted recipient's `ORCPT=`, in the order of `recipients`.
    orcpts: Vec<Option<String>>,
    /// BDAT chunks received so far (None until the first BDAT).
    chunks: Option<Incoming>,
    chunks_too_big: bool,
    chunks_failed: Option<std::io::Error>,
}

/// A message being received by BDAT chunks, and the in-flight budget its transfer holds.
struct Incoming {
    spool: Spool,
    _permit: inflight::Permit,
}

struct Session {
    conn: Conn,
    shared: Arc<Shared>,
    hostname: String,
    max_size: usize,
    /// `limits.max_inflight_message_bytes` when the connection started.
    budget_limit: u64,
    opts: DeliveryOptions,
    greeted: bool,
    tx: Option<Transaction>,
    bad: u32,
}

/// What the loop does after a command.
enum Next {
    Continue,
    Close,
}

/// Serves one LMTP connection until QUIT, EOF, an error, a timeout or shutdown.
pub async fn run(conn: Conn, shared: Arc<Shared>, _listener: ListenerConfig) {
    let cfg = shared.config();
    let mut s = Session {
        conn,
        hostname: cfg.server.hostname.clone(),
        max_size: usize::try_from(cfg.limits.max_message_size).unwrap_or(usize::MAX),
        budget_limit: cfg.limits.max_inflight_message_bytes,
        opts: DeliveryOptions::from(&cfg.lmtp),
        shared: shared.clone(),
        greeted: false,
        tx: None,
        bad: 0,
    };
    drop(cfg);
    s.conn
        .set_write_timeout(Duration::from_secs(LMTP_IDLE_SECS));
    let greeting = format!("220 {} LMTP mailcove ready\r\n", s.hostname);
    s.conn.queue(greeting.as_bytes());
    if let Err(e) = s.serve().await {
        debug!(error = %e, "connection ended");
    }
    s.conn.close().await;
}

impl Session {
    async fn serve(&mut self) -> std::io::Result<()> {
        loop {
            // Flush only when the client has nothing more queued: that batches pipelined replies.
            if !self.conn.buffered().contains(&b'\n') {
                self.conn.flush().await?;
            }
            let line = tokio::select! {
                _ = self.shared.shutdown.cancelled() => {
                    let bye = format!("421 4.3.2 {} Server shutting down\r\n", self.hostname);
                    self.conn.queue(bye.as_bytes());
                    return Ok(());
                }
                r = tokio::time::timeout(
                    Duration::from_secs(LMTP_IDLE_SECS),
                    self.conn.read_line(LMTP_MAX_COMMAND_LINE),
                ) => r,
            };
            let line = match line {
                Err(_) => {
                    let bye = format!(
                        "421 4.4.2 {} Timeout, closing connection\r\n",
                        self.hostname
                    );
                    self.conn.queue(bye.as_bytes());
                    return Ok(());
                }
                Ok(r) => r?,
            };
            let next = match line {
                Line::Eof => return Ok(()),
                Line::TooLong => self.bad_command("500 5.5.2 Line too long"),
                Line::Complete(l) => crate::metrics::lmtp_command(&l, self.command(&l)).await?,
            };
            if let Next::Close = next {
                return Ok(());
            }
        }
    }

    fn reply(&mut self, line: &str) {
        crate::metrics::lmtp_reply(line);
        self.conn.queue(line.as_bytes());
        self.conn.queue(b"\r\n");
    }

    fn bad_command(&mut self, reply: &str) -> Next {
        self.bad += 1;
        if self.bad > LMTP_MAX_BAD_COMMANDS {
            self.reply("421 4.7.0 Too many invalid commands, closing connection");
            return Next::Close;
        }
        self.reply(reply);
        Next::Continue
    }

    async fn command(&mut self, line: &[u8]) -> std::io::Result<Next> {
        let cmd = match command::parse(line) {
            Ok(c) => c,
            Err(ParseError::Syntax(why)) => {
                return Ok(self.bad_command(&format!("501 5.5.4 Syntax error: {why}")));
            }
            Err(ParseError::UnknownParameter(p)) => {
                return Ok(self.bad_command(&format!("555 5.5.4 Unsupported parameter {p}")));
            }
        };
        match cmd {
            Command::Lhlo(_) => {
                self.tx = None;
                self.greeted = true;
                let caps = format!(
                    "250-{}\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-SIZE {}\r\n250 CHUNKING",
                    self.hostname, self.max_size
                );
                self.reply(&caps);
            }
            Command::SmtpGreeting => {
                return Ok(self.bad_command("500 5.5.1 This is an LMTP server: use LHLO"));
            }
            Command::Mail {
                from, size, auth, ..
            } => {
                self.mail(from, size);
                if let Some(tx) = &mut self.tx {
                    tx.auth = auth;
                }
            }
            Command::Rcpt { to, orcpt } => {
                let before = self.tx.as_ref().map_or(0, |tx| tx.recipients.len());
                self.rcpt(to).await;
                if let Some(tx) = &mut self.tx
                    && tx.recipients.len() > before
                {
                    tx.orcpts.push(orcpt);
                }
            }
            Command::Data => self.data().await?,
            Command::Bdat { size, last } => self.bdat(size, last).await?,
            Command::Rset => {
                self.tx = None;
                self.reply("250 2.0.0 OK");
            }
            Command::Noop => self.reply("250 2.0.0 OK"),
            Command::Quit => {
                let bye = format!("221 2.0.0 {} closing connection", self.hostname);
                self.reply(&bye);
                return Ok(Next::Close);
            }
            Command::Vrfy => self.reply("502 5.5.1 VRFY is not supported"),
            Command::Unknown => return Ok(self.bad_command("500 5.5.2 Unknown command")),
        }
        Ok(Next::Continue)
    }

    fn mail(&mut self, from: String, size: Option<u64>) {
        if !self.greeted {
            self.reply("503 5.5.1 Send LHLO first");
        } else if self.tx.is_some() {
            self.reply("503 5.5.1 Nested MAIL command");
        } else if size.is_some_and(|s| s > self.max_size as u64) {
            self.reply("552 5.3.4 Message size exceeds fixed maximum message size");
        } else {
            self.tx = Some(Transaction {
                from,
                size,
                recipients: Vec::new(),
                auth: None,
                orcpts: Vec::new(),
                chunks: None,
                chunks_too_big: false,
                chunks_failed: None,
            });
            self.reply("250 2.1.0 OK");
        }
    }

    async fn rcpt(&mut self, to: String) {
        let Some(tx) = &self.tx else {
            self.reply("503 5.5.1 MAIL needed first");
            return;
        };
        if tx.chunks.is_some() {
            self.reply("503 5.5.1 RCPT not allowed after BDAT");
            return;
        }
        if tx.recipients.len() >= LMTP_MAX_RECIPIENTS {
            self.reply("452 4.5.3 Too many recipients");
            return;
        }
        let size = tx.size.unwrap_or(0);
        let resolved =
            deliver::resolve(&self.shared.auth, &self.shared.storage, &to, &self.opts).await;
        let checked = match resolved {
            Ok(r) => deliver::check_quota(&r, size, &self.opts).await.map(|()| r),
            Err(e) => Err(e),
        };
        match checked {
            Ok(r) => {
                if let Some(tx) = &mut self.tx {
                    tx.recipients.push(r);
                }
                self.reply("250 2.1.5 OK");
            }
            Err(e) => {
                info!(to = %to, error = %e, "recipient refused");
                let line = failure_reply(&to, &e);
                self.reply(&line);
            }
        }
    }

    /// A share of the global in-flight budget for one transfer (waiting briefly), or `None`
    /// when it is spent.
    async fn budget(&self) -> Option<inflight::Permit> {
        inflight::global()
            .acquire(
                INCOMING_MESSAGE_CHUNK as u64,
                self.budget_limit,
                Duration::from_millis(INFLIGHT_WAIT_MS),
            )
            .await
    }

    async fn data(&mut self) -> std::io::Result<()> {
        let Some(tx) = &self.tx else {
            self.reply("503 5.5.1 MAIL needed first");
            return Ok(());
        };
        if tx.chunks.is_some() {
            self.reply("503 5.5.1 DATA not allowed after BDAT");
            return Ok(());
        }
        if tx.recipients.is_empty() {
            self.reply("503 5.5.1 No valid recipients");
            return Ok(());
        }
        let Some(permit) = self.budget().await else {
            self.reply(BUDGET_SPENT);
            return Ok(());
        };
        self.reply("354 OK, end data with <CR><LF>.<CR><LF>");
        let mut spool = Spool::new(self.budget_limit);
        // On a connection failure the partial spool is dropped: nothing was stored.
        let received = data::read_data(&mut self.conn, self.max_size, &mut spool).await?;
        drop(permit);
        let Some(tx) = self.tx.take() else {
            return Ok(());
        };
        self.finish(tx, received, spool).await
    }

    async fn bdat(&mut self, size: u64, last: bool) -> std::io::Result<()> {
        let max = self.max_size;
        if self.tx.as_ref().is_some_and(|tx| tx.chunks.is_none()) {
            match self.budget().await {
                Some(permit) => {
                    if let Some(tx) = &mut self.tx {
                        tx.chunks = Some(Incoming {
                            spool: Spool::new(self.budget_limit),
                            _permit: permit,
                        });
                    }
                }
                None => {
                    // The chunk is on its way: read it to stay in step, then end the transaction.
                    // After BDAT LAST the client waits for one reply per accepted recipient
                    // (RFC 2033 section 4.3: none when there are none), as after any LAST chunk.
                    data::skip_chunk(&mut self.conn, size).await?;
                    let recipients = self.tx.take().map_or(0, |tx| tx.recipients.len());
                    let replies = if last { recipients } else { 1 };
                    for _ in 0..replies {
                        self.reply(BUDGET_SPENT);
                    }
                    return Ok(());
                }
            }
        }
        let Some(tx) = &mut self.tx else {
            // The chunk still has to be read so the stream stays in step.
            data::skip_chunk(&mut self.conn, size).await?;
            self.reply("503 5.5.1 MAIL needed first");
            return Ok(());
        };
        let keeping = !tx.chunks_too_big && tx.chunks_failed.is_none();
        let target = tx.chunks.as_mut().map(|c| &mut c.spool).filter(|_| keeping);
        match data::read_chunk(&mut self.conn, size, target, max).await? {
            Ok(fits) => tx.chunks_too_big |= keeping && !fits,
            Err(e) => tx.chunks_failed = Some(e),
        }
        if !last {
            let line = format!("250 2.0.0 {size} octets received");
            self.reply(&line);
            return Ok(());
        }
        let Some(mut tx) = self.tx.take() else {
            return Ok(());
        };
        let received = match (tx.chunks_failed.take(), tx.chunks_too_big) {
            (Some(e), _) => data::Received::Failed(e),
            (None, true) => data::Received::TooBig,
            (None, false) => data::Received::Complete,
        };
        let spool = match tx.chunks.take() {
            Some(c) => c.spool,
            None => Spool::new(self.budget_limit),
        };
        // RFC 2033 section 4.3: with no accepted recipient, BDAT LAST returns zero replies.
        self.finish(tx, received, spool).await
    }

    /// Stores the message for every recipient and sends their replies in RCPT order.
    async fn finish(
        &mut self,
        tx: Transaction,
        received: data::Received,
        spool: Spool,
    ) -> std::io::Result<()> {
        match received {
            data::Received::Complete => {}
            data::Received::TooBig => {
                for _ in &tx.recipients {
                    crate::metrics::lmtp_delivery("552");
                    self.reply("552 5.3.4 Message size exceeds fixed maximum message size");
                }
                return Ok(());
            }
            data::Received::Failed(e) => {
                warn!(error = %e, "spooling the message failed");
                let e = DeliverError::Temporary(e.to_string());
                for r in &tx.recipients {
                    let line = failure_reply(&r.address, &e);
                    crate::metrics::lmtp_delivery(&line);
                    self.reply(&line);
                }
                return Ok(());
            }
        }
        let message = spool.finish();
        // The stamped header takes the line ending of the message's first line.
        let start = match message.read_chunk(0).await {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "reading the spooled message failed");
                let e = DeliverError::Temporary(e.to_string());
                for r in &tx.recipients {
                    let line = failure_reply(&r.address, &e);
                    crate::metrics::lmtp_delivery(&line);
                    self.reply(&line);
                }
                return Ok(());
            }
        };
        // Names each recipient's delivery, so a storage that remembers deliveries stores the
        // MTA's retry of one that was committed but not acknowledged only once.
        // Hashed only when some recipient's storage keeps delivery ids (not Maildir's path).
        let digest = if tx.recipients.iter().any(|r| r.store.remembers_deliveries()) {
            match deliver::message_digest(&message).await {
                Ok(d) => Some(d),
                Err(e) => {
                    warn!(error = %e, "reading the spooled message failed");
                    None
                }
            }
        } else {
            None
        };
        let permits = Arc::new(Semaphore::new(LMTP_PARALLEL_DELIVERIES));
        let sieve_ctx = crate::sieve::deliver::Context {
            cfg: self.shared.config(),
            hostname: self.hostname.clone(),
            sender: tx.from.clone(),
            remote_ip: Some(self.conn.info.peer.ip()),
            remote_host: None,
            auth: tx.auth.clone(),
            orig_to: None,
        };
        let mut pending = Vec::with_capacity(tx.recipients.len());
        let mut orcpts = tx.orcpts.into_iter();
        for mut rcpt in tx.recipients {
            rcpt.delivery = digest
                .as_ref()
                .map(|d| crate::storage::DeliveryId::new(&tx.from, &rcpt.address, d));
            let (message, permits, opts) = (message.clone(), permits.clone(), self.opts.clone());
            let mut sieve_ctx = sieve_ctx.clone();
            sieve_ctx.orig_to = orcpts.next().flatten();
            let header = deliver::stamp_header(&tx.from, &rcpt.address, &start);
            let address = rcpt.address.clone();
            let task = tokio::spawn(async move {
                // Permits are handed out in spawn order, so copies are made in RCPT order too.
                let _permit = permits
                    .acquire_owned()
                    .await
                    .map_err(|e| DeliverError::Temporary(e.to_string()))?;
                let size = header.len() as u64 + message.len();
                let (delivered, followups) = crate::sieve::deliver::deliver_recipient(
                    &sieve_ctx, &rcpt, None, &header, &message, &opts,
                )
                .await?;
                if let crate::sieve::deliver::Delivered::Stored(stored) = &delivered
                    && let [stored] = stored.as_slice()
                {
                    info!(to = %rcpt.address, user = %rcpt.user.name, mailbox = %stored.mailbox, uid = stored.uid, size, "delivered");
                }
                // Vacation replies go out after the copy is durable, without holding the reply.
                if !followups.is_empty() {
                    tokio::spawn(followups.run());
                }
                Ok::<_, DeliverError>(delivered)
            });
            pending.push((address, task));
        }
        for (address, task) in pending {
            let line = match task.await {
                Ok(Ok(_)) => format!("250 2.0.0 <{address}> Saved"),
                Ok(Err(e)) => {
                    warn!(to = %address, error = %e, "delivery failed");
                    failure_reply(&address, &e)
                }
                Err(e) => {
                    warn!(to = %address, error = %e, "delivery task failed");
                    failure_reply(&address, &DeliverError::Temporary(e.to_string()))
                }
            };
            crate::metrics::lmtp_delivery(&line);
            self.reply(&line);
            self.conn.flush().await?;
        }
        Ok(())
    }
}

/// The answer to DATA or a first BDAT when the global in-flight budget is spent (RFC 3463
/// X.3.1: mail system full, temporary).
const BUDGET_SPENT: &str = "452 4.3.1 Insufficient system resources, try again later";

/// The reply line for a failed recipient.
fn failure_reply(address: &str, e: &DeliverError) -> String {
    match e {
        DeliverError::NoSuchUser(_) => format!("550 5.1.1 <{address}> User doesn't exist"),
        DeliverError::OverQuota { temporary: false } => {
            format!("552 5.2.2 <{address}> Quota exceeded (mailbox for user is full)")
        }
        DeliverError::OverQuota { temporary: true } => {
            format!("452 4.2.2 <{address}> Quota exceeded (mailbox for user is full)")
        }
        DeliverError::TooBig => {
            format!("552 5.3.4 <{address}> Message size exceeds fixed maximum message size")
        }
        DeliverError::Permanent(_) => format!("550 5.2.0 <{address}> Mailbox unavailable"),
        DeliverError::Temporary(_) => {
            format!("451 4.3.0 <{address}> Temporary internal error")
        }
        DeliverError::Rejected(reason) => {
            format!(
                "550 5.7.1 <{address}> {}",
                crate::sieve::deliver::reply_text(reason)
            )
        }
    }
}
