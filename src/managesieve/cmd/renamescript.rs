//! RENAMESCRIPT (RFC 5804 section 2.11.1): an active script stays active under its new name;
//! a taken new name is `NO (ALREADYEXISTS)`, a missing old one `NO (NONEXISTENT)`.

use tracing::info;

use crate::managesieve::response::{SieveError, Status, push_response};
use crate::managesieve::session::{Args, Next, Session};
use crate::server::login::printable;

/// RENAMESCRIPT old new.
pub async fn run(s: &mut Session, mut args: Args) -> Result<Next, SieveError> {
    let old = args.name()?;
    let new = args.name()?;
    args.finish()?;
    let (o, n) = (old.clone(), new.clone());
    s.with_store("rename script", move |st| st.rename(&o, &n))
        .await?;
    info!(user = %s.user(), script = %printable(&old), new = %printable(&new), "script renamed");
    push_response(s.conn.out(), Status::Ok, None, "Renamescript completed.");
    Ok(Next::Continue)
}
