//! IMAP commands: one file per command, named after it (`status.rs`, `move.rs`, ...), each with a
//! handler that checks its arguments, calls the store and returns a [`Reply`] or an
//! [`ImapError`]. The command table ([`table`]) says which states each command is valid in and
//! when the selected mailbox's changes may be reported; [`run`] applies it, [`dispatch`] calls the
//! handler, and errors become tagged `NO`/`BAD` in one place ([`ImapError::answer`]).
//!
//! Shared pieces are in `helpers.rs`. SELECT and EXAMINE share `select.rs`, SUBSCRIBE and
//! UNSUBSCRIBE `subscribe.rs`; MOVE is in `move.rs` and reuses COPY's body. SORT with `RETURN`
//! (RFC 5267 ESORT) is answered by `search.rs`, like the extended SEARCH it mirrors.

mod append;
mod authenticate;
mod authenticate_bearer;
mod cancelupdate;
mod capability;
mod check;
mod close;
mod compress;
mod copy;
mod create;
mod delete;
mod enable;
mod expunge;
mod fetch;
mod getmetadata;
mod getquota;
mod getquotaroot;
mod helpers;
mod id;
mod idle;
mod list;
pub(crate) use list::mailbox_attrs;
mod login;
mod logout;
mod lsub;
mod r#move;
mod namespace;
mod noop;
pub(crate) mod notify;
mod rename;
mod search;
mod select;
mod setmetadata;
mod setquota;
mod sort;
mod starttls;
mod status;
mod store;
mod subscribe;
pub mod table;
mod thread;
mod unselect;

use super::proto::encode::{self, Code, Status};
use super::proto::types::{Command, CommandBody, Tag};
use super::response::ImapError;
use super::session::{Session, State};
use table::{CommandSpec, States};

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

/// Why `spec` may not run in `state`, if it may not.
fn state_error(spec: &CommandSpec, state: &State) -> Option<&'static str> {
    match (spec.states, state) {
        (States::NotAuthenticated, State::Authenticated(_) | State::Selected(..)) => {
            Some("already logged in")
        }
        (States::Authenticated | States::Selected, State::NotAuthenticated) => Some("log in first"),
        (States::Selected, State::Authenticated(_)) => Some("no mailbox is selected"),
        _ => None,
    }
}

/// Runs one parsed command and queues its responses.
pub async fn run(s: &mut Session, command: Command) -> Outcome {
    let Command { tag, body } = command;
    let spec = table::spec(&body);
    let started = std::time::Instant::now();
    let result = match state_error(spec, &s.state) {
        Some(why) => Err(ImapError::WrongState(why)),
        None if spec.flags.unsupported => Err(ImapError::NotSupported(spec.name)),
        None => dispatch(s, &tag, body).await,
    };
    crate::metrics::imap_command(spec.name, started, result.as_ref().err());
    // Changes made by others are told before the tagged answer, where RFC 3501 7.4.1 allows.
    // (With NOTIFY, new messages also get the MessageNew FETCH attributes.)
    if spec.reports_changes()
        && matches!(s.state, State::Selected(..))
        && !matches!(result, Ok(Reply::Written | Reply::Close))
        && let Err(e) = crate::imap::notify::refresh_selected(s).await
    {
        tracing::warn!(error = ?e, "refreshing the selected mailbox failed");
    }
    // NOTIFY (RFC 5465): what the user's other sessions changed while this command ran.
    if !matches!(result, Ok(Reply::Written | Reply::Close)) {
        crate::imap::notify::drain(s).await;
    }
    // RFC 5267 4.3: this session's own changes (STORE, FETCH setting \Seen) update the live
    // search contexts too, right after the FETCH responses that tell them.
    if let State::Selected(_, sel) = &mut s.state
        && !sel.contexts.is_empty()
    {
        crate::imap::context::update(sel, s.conn.out()).await;
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
            e.write(s.conn.out(), Some(&tag));
            if e.counts_as_bad() {
                Outcome::Bad
            } else {
                Outcome::Continue
            }
        }
    }
}

/// Calls the handler of `body`. Exhaustive like [`table::spec`]: a new command needs a handler
/// (or an `unsupported` row) before it compiles.
async fn dispatch(s: &mut Session, tag: &Tag, body: CommandBody) -> Result<Reply, ImapError> {
    use CommandBody as C;
    match body {
        C::Capability => capability::capability(s),
        C::Noop => noop::noop(s),
        C::Logout => logout::logout(s, tag),
        C::Id { parameters } => id::id(s, parameters),
        C::Enable { capabilities } => enable::enable(s, &capabilities),
        C::Namespace => namespace::namespace(s),
        C::StartTls => starttls::starttls(s, tag).await,
        C::Login { username, password } => login::login(s, &username, password.expose()).await,
        C::Authenticate {
            mechanism,
            initial_response,
        } => {
            let initial = initial_response.as_ref().map(|r| r.expose());
            authenticate::authenticate(s, &mechanism, initial).await
        }
        C::Select {
            mailbox,
            condstore,
            qresync,
        } => select::select(s, &mailbox, false, condstore, qresync.as_deref()).await,
        C::Examine {
            mailbox,
            condstore,
            qresync,
        } => select::select(s, &mailbox, true, condstore, qresync.as_deref()).await,
        C::Check => check::check(s).await,
        C::Close => close::close(s).await,
        C::Unselect => unselect::unselect(s),
        C::Create {
            mailbox,
            special_use,
        } => create::create(s, &mailbox, &special_use).await,
        C::Delete { mailbox } => delete::delete(s, &mailbox).await,
        C::Rename { from, to } => rename::rename(s, &from, &to).await,
        C::Subscribe { mailbox } => subscribe::subscribe(s, &mailbox).await,
        C::Unsubscribe { mailbox } => subscribe::unsubscribe(s, &mailbox).await,
        C::Status { mailbox, items } => status::status(s, &mailbox, &items).await,
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
        C::Lsub { reference, pattern } => lsub::lsub(s, &reference, &pattern).await,
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
        C::Move { uid, set, mailbox } => r#move::move_messages(s, uid, &set, &mailbox).await,
        C::Fetch {
            uid,
            set,
            attrs,
            changed_since,
            vanished,
        } => fetch::fetch(s, uid, &set, &attrs, changed_since, vanished).await,
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
        C::CancelUpdate { tags } => cancelupdate::cancelupdate(s, &tags),
        C::Sort {
            uid,
            criteria,
            charset,
            search,
            returns: None,
        } => sort::sort(s, uid, &criteria, &charset, &search).await,
        // RFC 5267 3: with RETURN, SORT answers like the extended SEARCH.
        C::Sort {
            uid,
            criteria,
            charset,
            search,
            returns: Some(returns),
        } => search::esort(s, tag, uid, &returns, &criteria, &charset, &search).await,
        C::Idle => idle::idle(s, tag).await,
        C::Notify { set } => notify::notify(s, set).await,
        C::Thread {
            uid,
            algorithm,
            charset,
            criteria,
        } => thread::thread(s, uid, algorithm, &charset, &criteria).await,
        C::Compress { algorithm } => compress::compress(s, tag, &algorithm).await,
        C::GetQuota { root } => getquota::getquota(s, &root).await,
        C::GetQuotaRoot { mailbox } => getquotaroot::getquotaroot(s, &mailbox).await,
        C::SetQuota { root, limits } => setquota::setquota(s, &root, &limits),
        C::GetMetadata {
            mailbox,
            maxsize,
            depth,
            entries,
        } => getmetadata::getmetadata(s, &mailbox, maxsize, depth, &entries).await,
        C::SetMetadata { mailbox, entries } => setmetadata::setmetadata(s, &mailbox, entries).await,
    }
}
