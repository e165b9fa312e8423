//! `mailcove quota recalc`: rebuilds a user's quota usage from their messages.
//!
//! The usage is kept incrementally (Maildir++ `maildirsize`: every writer appends a delta line),
//! and nothing scans the mailboxes per command. Should the file ever disagree with the mail
//! (messages added or removed by hand, a restore from backup), this walks every folder of the
//! user under the Maildir++ rules and writes the file anew, exactly what the server does by
//! itself when the file is missing or has grown past 5120 bytes. It may run while the daemon
//! runs; started as root it becomes `server.user` first, as `deliver` does.

use std::path::Path;

use crate::config::Config;
use crate::server::privdrop;
use crate::storage::QuotaUsage;

/// Recalculates the quota usage of `user` and returns a one-line report of it.
pub fn recalc(config: &Path, user: &str) -> Result<String, String> {
    let config = Config::load(config).map_err(|e| {
        let first = e.to_string().lines().next().unwrap_or_default().to_string();
        format!("configuration: {first}")
    })?;
    if crate::setup::is_memory_location(&config.mail.location) {
        return Err(
            "mail.location = \"memory:\" keeps mail in the daemon's memory, where \
            the usage is always exact: there is nothing to recalculate"
                .into(),
        );
    }
    let id = privdrop::resolve(
        config.server.user.as_deref(),
        config.server.group.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    let auth =
        crate::setup::lookup_authenticator(&config).map_err(|e| format!("users file: {e}"))?;
    let info = auth
        .lookup(user)
        .ok_or_else(|| format!("no such user {user:?}"))?;
    if let Some(id) = id {
        privdrop::drop_to(id).map_err(|e| e.to_string())?;
    }
    let storage =
        crate::setup::storage_backend(&config).map_err(|e| format!("mail storage: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let usage = rt
        .block_on(async {
            let store = storage.user(&crate::setup::storage_user(&info)).await?;
            store.quota_recalc().await
        })
        .map_err(|e| format!("{}: {e}", info.name))?;
    Ok(report(&info.name, &usage))
}

/// `name: storage <bytes> of <limit|unlimited> bytes, messages <n> of <limit|unlimited>`.
fn report(name: &str, u: &QuotaUsage) -> String {
    let limit = |l: Option<u64>| l.map_or_else(|| "unlimited".to_string(), |l| l.to_string());
    format!(
        "{name}: storage {} of {} bytes, messages {} of {}",
        u.bytes_used,
        limit(u.bytes_limit),
        u.messages_used,
        limit(u.messages_limit)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_names_limits_or_unlimited() {
        let u = QuotaUsage {
            bytes_used: 10,
            bytes_limit: Some(2048),
            messages_used: 1,
            messages_limit: None,
        };
        assert_eq!(
            report("ann", &u),
            "ann: storage 10 of 2048 bytes, messages 1 of unlimited"
        );
    }
}
