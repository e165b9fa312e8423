//! LISTSCRIPTS (RFC 5804 section 2.7): one line per script, the active one marked `ACTIVE`.

use crate::managesieve::response::{SieveError, Status, push_response, push_string};
use crate::managesieve::session::{Args, Next, Session};

/// LISTSCRIPTS.
pub async fn run(s: &mut Session, args: Args) -> Result<Next, SieveError> {
    args.finish()?;
    let scripts = s.with_store("list scripts", |st| st.list()).await?;
    let out = s.conn.out();
    for (name, active) in scripts {
        push_string(out, name.as_bytes());
        if active {
            out.extend_from_slice(b" ACTIVE");
        }
        out.extend_from_slice(b"\r\n");
    }
    push_response(out, Status::Ok, None, "Listscripts completed.");
    Ok(Next::Continue)
}
