//! DELETESCRIPT (RFC 5804 section 2.10): the active script cannot be deleted
//! (`NO (ACTIVE)`); a missing one is `NO (NONEXISTENT)`.

use tracing::info;

use crate::managesieve::response::{SieveError, Status, push_response};
use crate::managesieve::session::{Args, Next, Session};
use crate::server::login::printable;

/// DELETESCRIPT name.
pub async fn run(s: &mut Session, mut args: Args) -> Result<Next, SieveError> {
    let name = args.name()?;
    args.finish()?;
    let n = name.clone();
    s.with_store("delete script", move |st| st.delete(&n))
        .await?;
    info!(user = %s.user(), script = %printable(&name), "script deleted");
    push_response(s.conn.out(), Status::Ok, None, "Deletescript completed.");
    Ok(Next::Continue)
}
