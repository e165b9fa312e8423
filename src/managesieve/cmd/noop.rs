//! NOOP (RFC 5804 section 2.13): with a string argument, the answer carries it back in the TAG
//! response code, which clients use to resynchronise.

use crate::managesieve::response::{SieveError, Status, push_response, push_string};
use crate::managesieve::session::{Args, Next, Session};

/// NOOP [tag].
pub fn run(s: &mut Session, mut args: Args) -> Result<Next, SieveError> {
    let tag = args.opt_string("expected a string")?;
    args.finish()?;
    match tag {
        Some(tag) => {
            let mut code = b"TAG ".to_vec();
            push_string(&mut code, &tag);
            let out = s.conn.out();
            // push_response takes the code as text; a tag may hold any octets, so it is
            // written here as the RFC 5804 grammar has it: OK (TAG string) "Done".
            out.extend_from_slice(b"OK (");
            out.extend_from_slice(&code);
            out.extend_from_slice(b") \"Done\"\r\n");
        }
        None => push_response(s.conn.out(), Status::Ok, None, "NOOP completed."),
    }
    Ok(Next::Continue)
}
