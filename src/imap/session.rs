//! TEMPORARY until the parser lands.
use crate::config::ListenerConfig;
use crate::server::Shared;
use crate::server::conn::Conn;
use std::sync::Arc;
/// Runs.
pub async fn run(mut conn: Conn, _s: Arc<Shared>, _l: ListenerConfig) {
    let _ = conn.send(b"* BYE not yet\r\n").await;
}
