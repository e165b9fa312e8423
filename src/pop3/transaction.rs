//! TRANSACTION-state commands (RFC 1939 section 5) and QUIT's UPDATE state (section 6).

use tracing::{info, warn};

use super::command::Command;
use super::response::Pop3Error;
use super::session::{Next, Session, State};

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
            let out = s.conn.out();
            out.extend_from_slice(format!("+OK {count} messages ({size} octets)\r\n").as_bytes());
            for (n, e) in drop.live_entries() {
                out.extend_from_slice(format!("{n} {}\r\n", e.size).as_bytes());
            }
            out.extend_from_slice(b".\r\n");
        }
        Command::Uidl(Some(n)) => {
            let uidl = drop.uidl(drop.live(n)?);
            s.conn.queue(format!("+OK {n} {uidl}\r\n").as_bytes());
        }
        Command::Uidl(None) => {
            let lines: Vec<String> = drop
                .live_entries()
                .map(|(n, e)| format!("{n} {}\r\n", drop.uidl(e)))
                .collect();
            let out = s.conn.out();
            out.extend_from_slice(b"+OK\r\n");
            for l in lines {
                out.extend_from_slice(l.as_bytes());
            }
            out.extend_from_slice(b".\r\n");
        }
        Command::Retr(n) => {
            let size = drop.live(n)?.size;
            let status = format!("+OK {size} octets\r\n");
            drop.send(&mut s.conn, n, None, status.as_bytes()).await?;
        }
        Command::Top(n, lines) => {
            drop.live(n)?;
            drop.send(&mut s.conn, n, Some(lines), b"+OK\r\n").await?;
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
        Err(e) => {
            // RFC 1939 section 6: some deleted messages not removed -> negative response.
            warn!(error = ?e, "POP3 update failed");
            s.conn.queue(Pop3Error::Storage(e).line().as_bytes());
        }
    }
    Ok(Next::Close)
}
