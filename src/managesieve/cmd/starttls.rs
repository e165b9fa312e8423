//! STARTTLS (RFC 5804 section 2.2): upgrade, then the capabilities again and OK. Anything the
//! client pipelined behind the command is discarded (see `Conn::start_tls`).

use tracing::debug;

use crate::managesieve::response::{SieveError, Status, push_response};
use crate::managesieve::session::{Args, Next, Session};

/// STARTTLS.
pub async fn run(s: &mut Session, args: Args) -> Result<Next, SieveError> {
    args.finish()?;
    if s.conn.is_tls() {
        return Err(SieveError::TlsUnavailable("TLS is already active."));
    }
    if !super::capability::starttls_possible(s) {
        return Err(SieveError::TlsUnavailable("STARTTLS is not offered here."));
    }
    let Some(acceptor) = s.shared.tls.current() else {
        return Err(SieveError::TlsUnavailable("STARTTLS is not offered here."));
    };
    push_response(s.conn.out(), Status::Ok, None, "Begin TLS negotiation now.");
    match s.conn.start_tls(&acceptor).await {
        Ok(()) => {
            super::capability::write(s);
            push_response(
                s.conn.out(),
                Status::Ok,
                None,
                "TLS negotiation successful.",
            );
            Ok(Next::Continue)
        }
        Err(e) => {
            debug!(error = %e, "STARTTLS handshake failed");
            Ok(Next::Close)
        }
    }
}
