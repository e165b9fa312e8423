//! GETSCRIPT (RFC 5804 section 2.9): the script as a literal, then OK.

use crate::managesieve::response::{SieveError, Status, push_response};
use crate::managesieve::session::{Args, Next, Session};

/// GETSCRIPT name.
pub async fn run(s: &mut Session, mut args: Args) -> Result<Next, SieveError> {
    let name = args.name()?;
    args.finish()?;
    let data = s.with_store("read script", move |st| st.get(&name)).await?;
    let out = s.conn.out();
    out.extend_from_slice(format!("{{{}}}\r\n", data.len()).as_bytes());
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\r\n");
    push_response(out, Status::Ok, None, "Getscript completed.");
    Ok(Next::Continue)
}
