//! The command table: which state each command is valid in, which handler runs it, and when the
//! selected mailbox's changes may be reported. One file per command family.

mod any;
mod append;
mod auth;
mod copy;
mod expunge;
mod fetch;
mod idle;
mod list;
mod mailbox;
mod search;
mod select;
mod store;

use super::proto::encode::{self, Code, Status};
use super::proto::types::{Command, CommandBody, Tag};
use super::response::ImapError;
use super::session::{Session, State};

/// What the session loop does after a command.
pub enum Outcome {
    /// Read the next command.
    Continue,
    /// The command was a client error (counts towards the bad-command limit).
    Bad,
    /// Close the connection.
    Close,
}

/// How a handler finished successfully.
pub enum Reply {
    /// Send the tagged OK with this code and text (after any pending untagged updates).
    Ok(Option<Code>, String),
    /// The handler wrote its tagged answer itself (STARTTLS, IDLE, LOGOUT).
    Written,
    /// Close the connection after flushing (LOGOUT, a failed TLS handshake).
    Close,
}

impl Reply {
    /// `tag OK text` without a code.
    pub fn ok(text: &str) -> Result<Reply, ImapError> {
        Ok(Reply::Ok(None, text.to_string()))
    }
}

/// States a command is valid in (RFC 3501 section 6).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Allowed {
    Any,
    NotAuthenticated,
    Authenticated,
    Selected,
}

fn allowed(body: &CommandBody) -> Allowed {
    use CommandBody as C;
    match body {
        C::Capability | C::Noop | C::Logout | C::Id { .. } => Allowed::Any,
        C::StartTls | C::Authenticate { .. } | C::Login { .. } => Allowed::NotAuthenticated,
        C::Check
        | C::Close
        | C::Unselect
        | C::Expunge { .. }
        | C::Search { .. }
        | C::Fetch { .. }
        | C::Store { .. }
        | C::Copy { .. }
        | C::Move { .. } => Allowed::Selected,
        _ => Allowed::Authenticated,
    }
}

/// SELECT and EXAMINE answer from the sync that opened the view: refreshing it again before
/// the tagged answer would only cost a second sync (the next command reports what changed).
fn opens_mailbox(body: &CommandBody) -> bool {
    matches!(
        body,
        CommandBody::Select { .. } | CommandBody::Examine { .. }
    )
}

/// RFC 3501 7.4.1: no EXPUNGE while answering FETCH, STORE or SEARCH (their UID forms may).
/// Those commands also keep sequence numbers still, so the client's numbers stay valid.
fn may_report_expunges(body: &CommandBody) -> bool {
    use CommandBody as C;
    !matches!(
        body,
        C::Fetch { uid: false, .. } | C::Store { uid: false, .. } | C::Search { uid: false, .. }
    )
}

/// Runs one parsed command and queues its responses.
pub async fn run(s: &mut Session, command: Command) -> Outcome {
    let Command { tag, body } = command;
    let state_error = match (allowed(&body), &s.state) {
        (Allowed::NotAuthenticated, State::Authenticated(_) | State::Selected(..)) => {
            Some("already logged in")
        }
        (Allowed::Authenticated, State::NotAuthenticated) => Some("log in first"),
        (Allowed::Selected, State::NotAuthenticated) => Some("log in first"),
        (Allowed::Selected, State::Authenticated(_)) => Some("no mailbox is selected"),
        _ => None,
    };
    let report = may_report_expunges(&body) && !opens_mailbox(&body);
    let result = match state_error {
        Some(why) => Err(ImapError::WrongState(why)),
        None => dispatch(s, &tag, body).await,
    };
    // Changes made by others are told before the tagged answer, where RFC 3501 allows.
    if report
        && matches!(s.state, State::Selected(..))
        && !matches!(result, Ok(Reply::Written | Reply::Close))
        && let Err(e) = s.refresh().await
    {
        tracing::warn!(error = ?e, "refreshing the selected mailbox failed");
    }
    if matches!(s.state, State::Logout) {
        return Outcome::Close;
    }
    match result {
        Ok(Reply::Ok(code, text)) => {
            encode::tagged(s.conn.out(), &tag, Status::Ok, code.as_ref(), &text);
            Outcome::Continue
        }
        Ok(Reply::Written) => Outcome::Continue,
        Ok(Reply::Close) => Outcome::Close,
        Err(e) => {
            let (status, code, text) = e.answer();
            encode::tagged(s.conn.out(), &tag, status, code.as_ref(), &text);
            if e.counts_as_bad() {
                Outcome::Bad
            } else {
                Outcome::Continue
            }
        }
    }
}

async fn dispatch(s: &mut Session, tag: &Tag, body: CommandBody) -> Result<Reply, ImapError> {
    use CommandBody as C;
    match body {
        C::Capability => any::capability(s),
        C::Noop => any::noop(s),
        C::Logout => any::logout(s, tag),
        C::Id { parameters } => any::id(s, parameters),
        C::Enable { capabilities } => any::enable(s, &capabilities),
        C::Namespace => any::namespace(s),
        C::StartTls => auth::starttls(s, tag).await,
        C::Login { username, password } => auth::login(s, &username, password.expose()).await,
        C::Authenticate {
            mechanism,
            initial_response,
        } => auth::authenticate(s, &mechanism, initial_response.as_ref().map(|r| r.expose())).await,
        C::Select { mailbox, condstore } => select::select(s, &mailbox, false, condstore).await,
        C::Examine { mailbox, condstore } => select::select(s, &mailbox, true, condstore).await,
        C::Check => select::check(s).await,
        C::Close => select::close(s).await,
        C::Unselect => select::unselect(s),
        C::Create {
            mailbox,
            special_use,
        } => mailbox::create(s, &mailbox, &special_use).await,
        C::Delete { mailbox } => mailbox::delete(s, &mailbox).await,
        C::Rename { from, to } => mailbox::rename(s, &from, &to).await,
        C::Subscribe { mailbox } => mailbox::subscribe(s, &mailbox, true).await,
        C::Unsubscribe { mailbox } => mailbox::subscribe(s, &mailbox, false).await,
        C::Status { mailbox, items } => mailbox::status(s, &mailbox, &items).await,
        C::List {
            selection,
            reference,
            patterns,
            returns,
        } => {
            list::list(
                s,
                selection.as_deref(),
                &reference,
                &patterns,
                returns.as_deref(),
            )
            .await
        }
        C::Lsub { reference, pattern } => list::lsub(s, &reference, &pattern).await,
        C::Append { mailbox, messages } => append::append(s, &mailbox, messages).await,
        C::Expunge { uids } => expunge::expunge(s, uids.as_ref()).await,
        C::Store {
            uid,
            set,
            op,
            silent,
            flags,
            unchanged_since,
        } => store::store(s, uid, &set, op, silent, &flags, unchanged_since).await,
        C::Copy { uid, set, mailbox } => copy::copy(s, uid, &set, &mailbox, false).await,
        C::Move { uid, set, mailbox } => copy::copy(s, uid, &set, &mailbox, true).await,
        C::Fetch {
            uid,
            set,
            attrs,
            changed_since,
        } => fetch::fetch(s, uid, &set, &attrs, changed_since).await,
        C::Search {
            uid,
            returns,
            charset,
            criteria,
        } => {
            search::search(
                s,
                tag,
                uid,
                returns.as_deref(),
                charset.as_deref(),
                &criteria,
            )
            .await
        }
        C::Idle => idle::idle(s, tag).await,
        other => Err(ImapError::NotSupported(other.name())),
    }
}
