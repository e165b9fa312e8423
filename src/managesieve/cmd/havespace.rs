//! HAVESPACE (RFC 5804 section 2.5): whether a script of that name and size could be stored
//! now (`NO (QUOTA/MAXSIZE)`, `NO (QUOTA/MAXSCRIPTS)`).

use crate::managesieve::response::{SieveError, Status, push_response};
use crate::managesieve::session::{Args, Next, Session};

/// HAVESPACE name size.
pub async fn run(s: &mut Session, mut args: Args) -> Result<Next, SieveError> {
    let name = args.name()?;
    let size = args.number("expected a size")?;
    args.finish()?;
    s.with_store("check space", move |st| {
        st.check_space(&name, u64::from(size))
    })
    .await?;
    push_response(s.conn.out(), Status::Ok, None, "Putscript would succeed.");
    Ok(Next::Continue)
}
