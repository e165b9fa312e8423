//! TRANSACTION-state commands (RFC 1939 section 5) and QUIT's UPDATE state (section 6).

use tracing::info;

use super::command::Command;
use super::response::Pop3Error;
use super::session::{Next, Session, State};
use crate::limits;
use crate::server::conn::Conn;

/// STAT, LIST, RETR, TOP, UIDL, DELE, RSET.
pub async fn run(s: &mut Session, cmd: Command) -> Result<Next, Pop3Error> {
    let State::Transaction { drop, .. } = &mut s.state else {
        return Err(Pop3Error::WrongState("not logged in yet"));
    };
    match cmd {
        Command::Stat => {
            let (n, size) = drop.stat();
            s.conn.queue(format!("+OK {n} {size}\r\n").as_bytes());
        }
        Command::List(Some(n)) => {
            let size = drop.live(n)?.size;
            s.conn.queue(format!("+OK {n} {size}\r\n").as_bytes());
        }
        Command::List(None) => {
            let (count, size) = drop.stat();
            s.conn
                .queue(format!("+OK {count} messages ({size} octets)\r\n").as_bytes());
            let lines = drop
                .live_entries()
                .map(|(n, e)| format!("{n} {}\r\n", e.size));
            send_listing(&mut s.conn, lines).await?;
        }
        Command::Uidl(Some(n)) => {
            let uidl = drop.uidl(drop.live(n)?);
            s.conn.queue(format!("+OK {n} {uidl}\r\n").as_bytes());
        }
        Command::Uidl(None) => {
            s.conn.queue(b"+OK Unique-ID listing follows\r\n");
            let lines = drop
                .live_entries()
                .map(|(n, e)| format!("{n} {}\r\n", drop.uidl(e)));
            send_listing(&mut s.conn, lines).await?;
        }
        Command::Retr(n) => {
            let size = drop.live(n)?.size;
            let file = drop.open_message(n).await?;
            s.conn.queue(format!("+OK {size} octets\r\n").as_bytes());
            drop.send(&mut s.conn, n, file, None).await?;
        }
        Command::Top(n, lines) => {
            let file = drop.open_message(n).await?;
            s.conn.queue(b"+OK\r\n");
            drop.send(&mut s.conn, n, file, Some(lines)).await?;
        }
        Command::Dele(n) => {
            drop.live(n)?;
            drop.delete(n);
            s.conn
                .queue(format!("+OK Message {n} deleted.\r\n").as_bytes());
        }
        Command::Rset => {
            drop.reset();
            let (n, size) = drop.stat();
            s.conn
                .queue(format!("+OK {n} messages ({size} octets)\r\n").as_bytes());
        }
        _ => return Err(Pop3Error::WrongState("already logged in")),
    }
    Ok(Next::Continue)
}

/// Queues the lines of a multi-line LIST/UIDL answer and its terminator, flushing whenever the
/// buffer passes [`limits::POP3_LISTING_FLUSH`], so a 100,000-message maildrop does not build
/// its whole listing in memory.
async fn send_listing(
    conn: &mut Conn,
    lines: impl Iterator<Item = String>,
) -> Result<(), Pop3Error> {
    for l in lines {
        conn.queue(l.as_bytes());
        if conn.out().len() >= limits::POP3_LISTING_FLUSH {
            conn.flush().await?;
        }
    }
    conn.queue(b".\r\n");
    Ok(())
}

/// QUIT in TRANSACTION: enter UPDATE, apply the deletions under the configured policy, log out.
pub async fn quit(s: &mut Session) -> Result<Next, Pop3Error> {
    let State::Transaction { drop, .. } = &mut s.state else {
        return Err(Pop3Error::WrongState("not logged in yet"));
    };
    match drop.commit().await {
        Ok(removed) => {
            info!(deleted = removed, "maildrop updated");
            s.conn.queue(b"+OK Logging out.\r\n");
        }
        // RFC 1939 section 6: some deleted messages not removed -> negative response, logged
        // with the user where every POP3 error is answered.
        Err(e) => super::session::answer_error(s, &Pop3Error::Storage(e)),
    }
    // The session is over: release the maildrop lock (and the login slot) before the answer is
    // sent, so a client that reconnects at once after QUIT is not told the mailbox is in use.
    s.state = State::Authorization { user: None };
    Ok(Next::Close)
}
