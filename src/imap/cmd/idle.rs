//! IDLE (RFC 2177): push new mail, flag changes and expunges as they happen, until `DONE`.
//!
//! A `* OK Still here` goes out every two minutes, as Dovecot sends, so NAT boxes keep the
//! connection. Commands a client pipelines right behind `DONE` stay in the buffer and run next, in
//! order (iOS Mail does this).

use std::time::Duration;

use super::Reply;
use crate::imap::proto::encode;
use crate::imap::proto::receive::{LineFramed, is_idle_done};
use crate::imap::proto::types::Tag;
use crate::imap::response::ImapError;
use crate::imap::session::{Session, State};

/// Interval of the keepalive line during IDLE.
const KEEPALIVE: Duration = Duration::from_secs(120);
/// Longest line accepted while idling (it should be `DONE`).
const MAX_IDLE_LINE: usize = 1024;
/// Bytes buffered while idling; anything beyond is a client that does not follow the protocol.
const MAX_IDLE_BUFFER: usize = 64 * 1024;

/// IDLE until DONE.
pub async fn idle(s: &mut Session, tag: &Tag) -> Result<Reply, ImapError> {
    s.refresh().await?;
    encode::continue_req(s.conn.out(), "idling");
    let shutdown = s.shared.shutdown.clone();
    let kick = s.conn.kick_token();
    loop {
        // A complete line may already be buffered (pipelined DONE).
        match s.receiver.poll_line(s.conn.buffered(), MAX_IDLE_LINE) {
            LineFramed::Line { consumed, line_len } => {
                let done = is_idle_done(&s.conn.buffered()[..line_len]);
                s.conn.consume(consumed);
                if done {
                    s.ok(tag, None, "Idle completed.");
                    return Ok(Reply::Written);
                }
                return Err(ImapError::Parse("Expected DONE."));
            }
            LineFramed::TooLong { consumed } => {
                s.conn.consume(consumed);
                return Err(ImapError::Parse("Expected DONE."));
            }
            LineFramed::Incomplete => {}
        }
        s.conn
            .flush()
            .await
            .map_err(|_| ImapError::Cannot("connection lost"))?;
        let Session {
            conn,
            state,
            notify,
            ..
        } = s;
        let view = match state {
            State::Selected(_, sel) => Some(&mut sel.view),
            _ => None,
        };
        let changed = async {
            match view {
                Some(v) => v.changed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => {
                s.untagged("BYE Server shutting down.");
                s.conn.set_end(crate::server::sessions::EndReason::Shutdown);
                s.state = State::Logout;
                return Ok(Reply::Close);
            }
            _ = kick.cancelled() => {
                s.untagged(crate::imap::session::KICKED_BYE);
                tracing::info!("disconnected by administrator during IDLE");
                s.state = State::Logout;
                return Ok(Reply::Close);
            }
            _ = tokio::time::sleep(KEEPALIVE) => {
                s.untagged("OK Still here");
            }
            _ = changed => {
                crate::imap::notify::refresh_selected(s).await?;
            }
            // NOTIFY (RFC 5465 4): IDLE tells the same events as between commands.
            w = crate::imap::notify::wait_feed(notify) => {
                crate::imap::notify::woke(s, w).await;
            }
            r = conn.fill(MAX_IDLE_BUFFER) => match r {
                Ok(0) | Err(_) => {
                    s.state = State::Logout;
                    return Ok(Reply::Close);
                }
                Ok(_) => {}
            },
        }
    }
}
