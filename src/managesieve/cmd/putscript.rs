//! PUTSCRIPT (RFC 5804 section 2.6): the script is checked against the quota, then compiled,
//! and only a script that compiles is stored (durably, before OK).

use tracing::info;

use crate::managesieve::response::{SieveError, Status, push_response};
use crate::managesieve::session::{Args, Next, Session};
use crate::server::login::printable;

/// PUTSCRIPT name script.
pub async fn run(s: &mut Session, mut args: Args) -> Result<Next, SieveError> {
    let name = args.name()?;
    let script = args.string("expected the script as a string")?;
    args.finish()?;
    let size = script.len() as u64;
    let n = name.clone();
    s.with_store("check space", move |st| st.check_space(&n, size))
        .await?;
    super::checkscript::compile(&script)?;
    let n = name.clone();
    s.with_store("store script", move |st| st.put(&n, &script))
        .await?;
    info!(user = %s.user(), script = %printable(&name), size, "script stored");
    push_response(s.conn.out(), Status::Ok, None, "PUTSCRIPT completed.");
    Ok(Next::Continue)
}
