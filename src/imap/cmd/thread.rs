//! THREAD and UID THREAD (RFC 5256 section 3): search like SEARCH, load the found messages'
//! sort/thread keys, thread them with the asked algorithm ([`crate::imap::thread`]) and answer
//! `* THREAD ...`.
//!
//! The criteria and charset are handled exactly as SEARCH's (same [`Program`]): a charset other
//! than UTF-8 or US-ASCII is `NO [BADCHARSET (UTF-8 US-ASCII)]`; an unknown algorithm was already
//! refused as BAD by the parser. RFC 7162 3.1.9: a MODSEQ criterion leaves the THREAD response
//! unchanged, and THREAD is not among the CONDSTORE enabling commands of RFC 7162 3.1.

use super::Reply;
use crate::imap::proto::encode;
use crate::imap::proto::types::{SearchKey, ThreadAlgorithm};
use crate::imap::response::ImapError;
use crate::imap::search::{self, Program};
use crate::imap::session::Session;
use crate::imap::sort::{KeyMask, Keys};
use crate::imap::thread::{self, ThreadMessage};

/// [UID] THREAD algorithm charset keys.
pub async fn thread(
    s: &mut Session,
    uid: bool,
    algorithm: ThreadAlgorithm,
    charset: &[u8],
    criteria: &SearchKey,
) -> Result<Reply, ImapError> {
    let want = match algorithm {
        ThreadAlgorithm::OrderedSubject => KeyMask::SENT | KeyMask::SUBJECT,
        ThreadAlgorithm::References | ThreadAlgorithm::Refs => KeyMask::THREAD,
    };
    let keys = {
        let sel = s.selected_mut()?;
        let prog = Program::compile(criteria, Some(charset), sel).await?;
        let hits = search::run(sel, &prog).await?;
        crate::imap::sort::load(sel, &hits, want).await?
    };
    let response = crate::compute::run(move || respond(algorithm, uid, keys))
        .await
        .map_err(|e| ImapError::from(crate::storage::StorageError::from(e)))?;
    s.conn.out().extend_from_slice(&response);
    Reply::ok("Thread completed.")
}

/// The `* THREAD` line for the found messages' keys (in mailbox order).
fn respond(algorithm: ThreadAlgorithm, uid: bool, mut keys: Vec<Keys>) -> Vec<u8> {
    for k in &mut keys {
        normalize_ids(k);
    }
    let msgs: Vec<ThreadMessage<'_, Box<str>>> = keys
        .iter()
        .map(|k| ThreadMessage {
            number: if uid { k.uid } else { k.seq },
            date: k.sent,
            base_subject: &k.subject,
            is_reply: k.is_reply,
            message_id: k.message_id.as_deref(),
            references: &k.references,
            in_reply_to: &k.in_reply_to,
        })
        .collect();
    let tree = thread::thread(algorithm, &msgs);
    let mut out = Vec::new();
    encode::thread(&mut out, &tree);
    out
}

/// RFC 5256 3 (REFERENCES): "Implementations ... MUST normalize any msg-id in order to avoid
/// false non-matches due to differences in quoting": `<"01KF8JCEOCBS0045PS"@xxx.yyy.com>` and
/// `<01KF8JCEOCBS0045PS@xxx.yyy.com>` are the same Message ID. The keys hold ids without the
/// brackets and folding whitespace; here quotes are dropped and quoted-pairs unescaped.
fn normalize_ids(k: &mut Keys) {
    if let Some(id) = k.message_id.as_mut() {
        normalize(id);
    }
    for id in k.references.iter_mut().chain(k.in_reply_to.iter_mut()) {
        normalize(id);
    }
}

fn normalize(id: &mut Box<str>) {
    if !id.contains(['"', '\\']) {
        return;
    }
    let mut out = String::with_capacity(id.len());
    let mut chars = id.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {}
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    *id = out.into_boxed_str();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_does_not_change_a_message_id() {
        let mut a: Box<str> = "\"01KF8JCEOCBS0045PS\"@xxx.yyy.com".into();
        normalize(&mut a);
        assert_eq!(&*a, "01KF8JCEOCBS0045PS@xxx.yyy.com");
        let mut b: Box<str> = "\"a\\\"b\"@x".into();
        normalize(&mut b);
        assert_eq!(&*b, "a\"b@x");
        let mut c: Box<str> = "plain@x".into();
        normalize(&mut c);
        assert_eq!(&*c, "plain@x");
    }
}
