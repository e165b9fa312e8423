//! The command table: which state each command is valid in, and which handler runs it. One file
//! per command family.

mod any;
mod auth;

use super::proto::types::{Command, CommandBody};
use super::response::{ImapError, Status, write_status};
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

/// States a command is valid in (RFC 3501 section 6).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Allowed {
    Any,
    NotAuthenticated,
    Authenticated,
}

fn allowed(body: &CommandBody) -> Allowed {
    use CommandBody as C;
    match body {
        C::Capability | C::Noop | C::Logout | C::Id { .. } => Allowed::Any,
        C::StartTls | C::Authenticate { .. } | C::Login { .. } => Allowed::NotAuthenticated,
        _ => Allowed::Authenticated,
    }
}

/// Runs one parsed command and queues its responses.
pub async fn run(s: &mut Session, command: Command) -> Outcome {
    let Command { tag, body } = command;
    let tag = tag.as_str().to_string();
    let logged_in = !matches!(s.state, State::NotAuthenticated);
    let state_error = match (allowed(&body), logged_in) {
        (Allowed::NotAuthenticated, true) => Some("already logged in"),
        (Allowed::Authenticated, false) => Some("log in first"),
        _ => None,
    };
    let result = match state_error {
        Some(why) => Err(ImapError::WrongState(why)),
        None => dispatch(s, &tag, body).await,
    };
    match result {
        Ok(outcome) => outcome,
        Err(e) => {
            let (status, code, text) = e.answer();
            let status = match status {
                Status::No => "NO",
                Status::Bad => "BAD",
            };
            write_status(s.conn.out(), &tag, status, code, &text);
            if e.counts_as_bad() {
                Outcome::Bad
            } else {
                Outcome::Continue
            }
        }
    }
}

async fn dispatch(s: &mut Session, tag: &str, body: CommandBody) -> Result<Outcome, ImapError> {
    use CommandBody as C;
    match body {
        C::Capability => any::capability(s, tag),
        C::Noop => any::noop(s, tag),
        C::Logout => any::logout(s, tag),
        C::Id { parameters } => any::id(s, tag, parameters),
        C::StartTls => auth::starttls(s, tag).await,
        C::Login { username, password } => auth::login(s, tag, &username, password.expose()).await,
        C::Authenticate {
            mechanism,
            initial_response,
        } => {
            auth::authenticate(
                s,
                tag,
                &mechanism,
                initial_response.as_ref().map(|r| r.expose()),
            )
            .await
        }
        other => Err(ImapError::NotSupported(other.name())),
    }
}
