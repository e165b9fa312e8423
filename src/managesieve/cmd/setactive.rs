//! SETACTIVE (RFC 5804 section 2.8): make a script the active one; `""` deactivates.

use tracing::info;

use crate::managesieve::response::{SieveError, Status, push_response};
use crate::managesieve::session::{Args, Next, Session};
use crate::managesieve::store::validate_name;
use crate::server::login::printable;

/// SETACTIVE name.
pub async fn run(s: &mut Session, mut args: Args) -> Result<Next, SieveError> {
    let name = String::from_utf8(args.string("expected a script name")?)
        .map_err(|_| SieveError::BadName("not UTF-8"))?;
    args.finish()?;
    if name.is_empty() {
        s.with_store("deactivate script", |st| st.set_active(None))
            .await?;
        info!(user = %s.user(), "script deactivated");
    } else {
        validate_name(&name).map_err(SieveError::BadName)?;
        let n = name.clone();
        s.with_store("activate script", move |st| st.set_active(Some(&n)))
            .await?;
        info!(user = %s.user(), script = %printable(&name), "script activated");
    }
    push_response(s.conn.out(), Status::Ok, None, "Setactive completed.");
    Ok(Next::Continue)
}
