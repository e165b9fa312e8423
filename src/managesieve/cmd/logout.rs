//! LOGOUT (RFC 5804 section 2.3).

use crate::managesieve::response::{SieveError, Status, push_response};
use crate::managesieve::session::{Args, Next, Session};

/// LOGOUT: OK, then the connection is closed.
pub fn run(s: &mut Session, args: Args) -> Result<Next, SieveError> {
    args.finish()?;
    push_response(s.conn.out(), Status::Ok, None, "Logout completed.");
    Ok(Next::Close)
}
