//! UNAUTHENTICATE (RFC 5804 section 2.14.1): back to the non-authenticated state; the login's
//! connection slot is given back and a new AUTHENTICATE may follow.

use tracing::info;

use crate::managesieve::response::{SieveError, Status, push_response};
use crate::managesieve::session::{Args, Next, Session, State};

/// UNAUTHENTICATE.
pub fn run(s: &mut Session, args: Args) -> Result<Next, SieveError> {
    args.finish()?;
    info!(user = %s.user(), "unauthenticated");
    s.state = State::NonAuth;
    push_response(s.conn.out(), Status::Ok, None, "Unauthenticate completed.");
    Ok(Next::Continue)
}
