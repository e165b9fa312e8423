//! `mailcove serve`: start-up order, signals and systemd notification.
//!
//! Start-up runs in the order that keeps root's window small: read the config, generate the dev
//! certificate if asked, load TLS, bind the ports, then drop to the configured user before anything
//! reads a client byte. SIGHUP re-reads the config, the users file and the certificate; a bad new
//! config is reported and the old one stays in force. SIGTERM/SIGINT stop accepting, ask every
//! session to say BYE, and exit within the grace time.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};

use super::privdrop::{self, Identity};
use super::tls::{self, TlsHolder};
use super::{Shared, bind_all, serve};
use crate::auth::Authenticator;
use crate::config::Config;
use crate::logging::{self, LogHandle};

/// Runs the daemon until a stop signal; the exit code for `main`.
pub fn run(config_path: &Path) -> ExitCode {
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let log = logging::init(&config.logging);
    super::alloc::tune();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "cannot start the runtime");
            return ExitCode::from(1);
        }
    };
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let result = rt.block_on(start(config, config_path.to_path_buf(), log));
    // Blocking tasks (a hash in progress, a slow disk) must not hold the exit beyond the grace time.
    rt.shutdown_timeout(grace.min(Duration::from_secs(1)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            eprintln!("mailcove: {e}");
            ExitCode::from(1)
        }
    }
}

/// The directory part of a mail location template before its first variable, e.g. `/var/mail`
/// for `/var/mail/%d/%n`; None for home-relative templates.
pub fn static_mail_root(location: &str) -> Option<PathBuf> {
    // `memory:` names no directory (storage::memory).
    if crate::setup::is_memory_location(location) {
        return None;
    }
    // `maildir:/var/vmail/%d/%n:INDEX=...` names the same root as `/var/vmail/%d/%n`.
    let location = crate::storage::maildir::maildir_template(location).ok()?;
    if location.starts_with('~') {
        return None;
    }
    let upto = location.find('%').unwrap_or(location.len());
    let prefix = &location[..upto];
    let dir = match prefix.rfind('/') {
        Some(i) => &prefix[..i],
        None => return None,
    };
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// The outcome of checking the mail root against the user the daemon runs as.
#[derive(Debug, PartialEq, Eq)]
pub enum MailRootCheck {
    /// Writable (or creatable) by that user, or no fixed root to check.
    Fine,
    /// Not usable; the message names the path, the user, the owner and the fixing command.
    Problem(String),
    /// Could not be checked here; says why.
    Skipped(String),
}

/// Checks that the mail root of `config` is writable by the user the daemon runs as (`server.user`
/// and `server.group` when set, else the current user), so a root-owned mail directory is reported
/// with its fix instead of as "Internal error" at every login. A root that does not exist yet
/// is created by the daemon at start-up (as root, then handed to the user), so only the way to it
/// must be searchable.
pub fn check_mail_root(config: &Config) -> MailRootCheck {
    use crate::fsperm::{self, Who};
    let Some(root) = static_mail_root(&config.mail.location) else {
        return MailRootCheck::Fine;
    };
    let who = match config.server.user.as_deref() {
        Some(user) => match Who::named(user, config.server.group.as_deref()) {
            Some(w) => w,
            None => {
                return MailRootCheck::Skipped(format!(
                    "server.user `{user}` (or its group) does not exist here; permissions of {} not checked",
                    root.display()
                ));
            }
        },
        None if nix::unistd::Uid::effective().is_root() => {
            return MailRootCheck::Skipped(
                "server.user is not set; permissions of the mail root not checked".into(),
            );
        }
        None => Who::current(),
    };
    let denied = if root.exists() {
        fsperm::check_dir_writable(&root, &who)
    } else {
        let existing = root.ancestors().find(|p| p.exists());
        existing.and_then(|p| fsperm::check_dir_reachable(p, &who))
    };
    match denied {
        None => MailRootCheck::Fine,
        Some(d) => MailRootCheck::Problem(format!(
            "mail root {} is not writable by the mail user: {d}; fix: {}",
            root.display(),
            fsperm::fix_for(&root, &d)
        )),
    }
}

async fn start(config: Config, config_path: PathBuf, log: LogHandle) -> Result<(), String> {
    // Handlers first: a SIGHUP during start-up must not kill the process (its default action).
    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let id = privdrop::resolve(
        config.server.user.as_deref(),
        config.server.group.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    prepare_files(&config, id)?;
    // Logged, not fatal, as Dovecot: users whose own directories already have the right owner
    // still work, and `check-config` (run before every package upgrade) fails on it.
    match check_mail_root(&config) {
        MailRootCheck::Problem(msg) => error!("{msg}"),
        MailRootCheck::Skipped(why) => warn!("{why}"),
        MailRootCheck::Fine => {}
    }
    let acceptor = tls::load_acceptor(&config.tls).map_err(|e| e.to_string())?;
    let listeners = bind_all(&config, id).await.map_err(|e| e.to_string())?;
    let metrics = crate::metrics::http::bind(&config)
        .await
        .map_err(|e| e.to_string())?;
    let control_path = config.server.control_socket.clone();
    let control = super::control::bind_configured(&control_path, id);
    if let Some(id) = id {
        privdrop::drop_to(id).map_err(|e| e.to_string())?;
        info!(
            uid = id.uid.as_raw(),
            gid = id.gid.as_raw(),
            "dropped root privileges"
        );
    } else if nix::unistd::Uid::effective().is_root() {
        return Err("refusing to serve sessions as root".into());
    }
    let external = crate::auth::external::open_database(&config.auth)
        .map_err(|e| format!("user database: {e}"))?;
    let auth = Authenticator::with_database(crate::setup::auth_options(&config), external)
        .map_err(|e| format!("users file: {e}"))?;
    let storage =
        crate::setup::storage_backend(&config).map_err(|e| format!("mail storage: {e}"))?;
    let shared = Arc::new(Shared::new(
        config,
        config_path,
        TlsHolder::new(acceptor),
        Arc::new(auth),
        storage,
    ));
    let server = tokio::spawn(serve(listeners, shared.clone()));
    crate::metrics::http::spawn(metrics, shared.clone());
    // The control socket asks this loop to reload, so SIGHUP and `mailcove reload` share one path.
    let (reload_tx, mut reload_rx) = tokio::sync::mpsc::channel::<super::control::ReloadRequest>(1);
    let control = control.map(|l| {
        tokio::spawn(super::control::serve(
            l,
            control_path,
            shared.clone(),
            reload_tx,
        ))
    });
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    info!(version = env!("CARGO_PKG_VERSION"), "mailcove started");
    loop {
        tokio::select! {
            _ = hup.recv() => {
                info!("SIGHUP: reloading configuration");
                let _ = reload(&shared, &log);
            }
            Some(reply) = reload_rx.recv() => {
                info!("control socket: reloading configuration");
                let _ = reply.send(reload(&shared, &log));
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    let grace = Duration::from_secs(shared.config().server.shutdown_grace_secs);
    info!(
        sessions = shared.tracker.total(),
        grace_secs = grace.as_secs(),
        "stopping"
    );
    shared.shutdown.cancel();
    let _ = server.await;
    if let Some(c) = control {
        let _ = c.await;
    }
    let deadline = tokio::time::Instant::now() + grace;
    while shared.tracker.total() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if shared.tracker.total() > 0 {
        warn!(
            sessions = shared.tracker.total(),
            "grace time over, closing remaining sessions"
        );
    }
    info!("mailcove stopped");
    Ok(())
}

/// Files and directories made before dropping root: the dev certificate and the mail root.
fn prepare_files(config: &Config, id: Option<Identity>) -> Result<(), String> {
    if tls::ensure_self_signed(&config.tls, &config.server.hostname).map_err(|e| e.to_string())? {
        for p in [&config.tls.certificate, &config.tls.key]
            .into_iter()
            .flatten()
        {
            privdrop::give(p, id).map_err(|e| format!("{}: {e}", p.display()))?;
        }
        info!(certificate = ?config.tls.certificate, "generated a self-signed certificate");
    }
    if let Some(root) = static_mail_root(&config.mail.location) {
        privdrop::prepare_dir(&root, id)
            .map_err(|e| format!("mail root {}: {e}", root.display()))?;
    }
    Ok(())
}

/// Re-reads the configuration, the users file and the certificate; on failure the old ones stay
/// in force and the error says why (for `mailcove reload`).
fn reload(shared: &Shared, log: &LogHandle) -> Result<(), String> {
    let new = match Config::load(&shared.config_path) {
        Ok(c) => c,
        Err(e) => {
            error!("reload failed, the old configuration stays in force:\n{e}");
            return Err(format!("{e}"));
        }
    };
    let acceptor = match tls::load_acceptor(&new.tls) {
        Ok(a) => a,
        Err(e) => {
            error!(error = %e, "reload failed, the old configuration stays in force");
            return Err(format!("TLS: {e}"));
        }
    };
    let reopened = crate::auth::external::open_database(&new.auth);
    if let Err(e) = reopened.and_then(|db| {
        shared
            .auth
            .reload_with_database(crate::setup::auth_options(&new), db)
    }) {
        error!(error = %e, "reload failed (users file), the old configuration stays in force");
        return Err(format!("users file: {e}"));
    }
    let old = shared.config();
    if old.listeners != new.listeners {
        warn!("listener changes take effect only after a restart");
    }
    if old.mail.separator != new.mail.separator {
        // The running storage keeps the separator it was built with, and IMAP asks the store,
        // never the config: clients keep seeing one separator until the restart.
        warn!(
            running = %old.mail.separator,
            configured = %new.mail.separator,
            "mail.separator changed: the new separator takes effect only after a restart"
        );
    }
    if old.mail != new.mail {
        warn!("[mail] changes take effect only after a restart");
    }
    if old.metrics != new.metrics {
        warn!("[metrics] changes take effect only after a restart");
    }
    if old.server.control_socket != new.server.control_socket {
        warn!("server.control_socket changes take effect only after a restart");
    }
    shared.tls.replace(acceptor);
    log.set_level(&new.logging.level);
    shared.set_config(new);
    info!("configuration reloaded");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_root_of_templates() {
        assert_eq!(
            static_mail_root("/var/mail/%d/%n"),
            Some(PathBuf::from("/var/mail"))
        );
        assert_eq!(
            static_mail_root("./var/mail/%n"),
            Some(PathBuf::from("./var/mail"))
        );
        assert_eq!(static_mail_root("~/Maildir"), None);
        assert_eq!(static_mail_root("memory:"), None);
        assert_eq!(
            static_mail_root("maildir:/var/vmail/%d/%n:INDEX=/var/idx/%u"),
            Some(PathBuf::from("/var/vmail"))
        );
        assert_eq!(static_mail_root("maildir:~/Maildir"), None);
        assert_eq!(
            static_mail_root("/srv/mail/%u/Maildir"),
            Some(PathBuf::from("/srv/mail"))
        );
    }
}
