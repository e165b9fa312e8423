//! The storage admin commands: `mailcove mailbox`, `expunge`, `quota`, `index`, `import` and
//! `export`, which work on a user's mail directly, with the daemon running or not.
//!
//! Every command goes through the same steps ([`start`]), those of `mailcove deliver`:
//!
//! 1. load the configuration; refuse `mail.location = "memory:"`, whose mail lives in the
//!    daemon's memory where no other process can reach it;
//! 2. find the users: one (`-u`, looked up as the daemon looks up a login) or all of the users
//!    file (`-A`);
//! 3. open the files named on the command line (`--mbox`) while still the invoking user, so the
//!    caller's own rights decide which files may be read or written;
//! 4. started as root, become `server.user` (and `server.group`), so nothing in the mail store
//!    ends up owned by root;
//! 5. open the storage backend and work through the storage traits only
//!    ([`crate::storage::UserStore`]): the backend's locks make this safe while the daemon
//!    serves the same mailboxes, and the daemon sees the changes as it sees another session's.
//!
//! With `-A` a failure for one user is reported on stderr and the others still run; the exit
//! status is then 1. Output is a [`output::Table`], printed as text or (`--json`) JSON, with a
//! `user` column first when `-A` is given.

pub mod expunge;
pub mod index;
pub mod mailbox;
pub mod mbox;
pub mod migrate;
pub mod output;
pub mod quota;

use std::path::PathBuf;
use std::sync::Arc;

use crate::auth::UserInfo;
use crate::config::Config;
use crate::server::privdrop;
use crate::storage::{Storage, UserStore};

use self::output::{Cell, Table};

/// Which users a command works on, where the configuration is and how to print.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// Configuration file.
    #[arg(long, short = 'c', default_value = "/etc/mailcove/mailcove.toml")]
    pub config: PathBuf,
    /// User name, as in the users file.
    #[arg(
        long,
        short = 'u',
        required_unless_present = "all_users",
        conflicts_with = "all_users"
    )]
    pub user: Option<String>,
    /// Every user of the users file.
    #[arg(short = 'A', long = "all-users")]
    pub all_users: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// A command ready to run: the users, the storage, and a runtime to drive it.
pub(crate) struct Admin {
    storage: Arc<dyn Storage>,
    users: Vec<UserInfo>,
    all: bool,
    json: bool,
    rt: tokio::runtime::Runtime,
}

/// Why the memory backend is refused.
const MEMORY_REFUSED: &str = "mail.location = \"memory:\" keeps mail in the daemon's memory, \
where a separate process cannot reach it: the storage admin commands need mail on disk";

/// Steps 1 to 5 of the module docs; `before_drop` runs with the users found, as the invoking
/// user (it opens the files named on the command line).
pub(crate) fn start<X>(
    target: &Target,
    before_drop: impl FnOnce(&[UserInfo]) -> Result<X, String>,
) -> Result<(Admin, X), String> {
    let config = Config::load(&target.config).map_err(|e| {
        let first = e.to_string().lines().next().unwrap_or_default().to_string();
        format!("configuration: {first}")
    })?;
    if crate::setup::is_memory_location(&config.mail.location) {
        return Err(MEMORY_REFUSED.into());
    }
    let id = privdrop::resolve(
        config.server.user.as_deref(),
        config.server.group.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    let users = match target.user.as_deref() {
        Some(name) => {
            let auth = crate::setup::lookup_authenticator(&config)
                .map_err(|e| format!("users file: {e}"))?;
            vec![
                auth.lookup_user_blocking(name, "admin")
                    .map_err(|e| format!("user database: {e}"))?
                    .ok_or_else(|| format!("no such user {name:?}"))?,
            ]
        }
        None if config.auth.backend != crate::config::AuthBackend::UsersFile => {
            crate::setup::lookup_authenticator(&config)
                .map_err(|e| format!("user database: {e}"))?
                .all_users_blocking()
                .map_err(|e| format!("user database: {e}"))?
                .unwrap_or_default()
        }
        None => crate::auth::admin::user_list(&config.auth.users_file)
            .map_err(|e| format!("users file: {e}"))?,
    };
    let extra = before_drop(&users)?;
    if let Some(id) = id {
        privdrop::drop_to(id).map_err(|e| e.to_string())?;
    }
    let storage =
        crate::setup::storage_backend(&config).map_err(|e| format!("mail storage: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    Ok((
        Admin {
            storage,
            users,
            all: target.user.is_none(),
            json: target.json,
            rt,
        },
        extra,
    ))
}

impl Admin {
    /// Print JSON.
    pub(crate) fn json(&self) -> bool {
        self.json
    }

    /// Runs `f` for every user (with the user's index in the list [`start`] found, its entry and
    /// its mail) and collects the rows it returns under `columns`, with a `user` column first for
    /// `-A`. A user whose `f` fails is reported on stderr (with `-A`, the others still run);
    /// `Err` then says how many failed, after the rows of the others.
    pub(crate) fn each(
        &self,
        columns: &[&'static str],
        mut f: impl AsyncFnMut(usize, &UserInfo, Arc<dyn UserStore>) -> Result<Vec<Vec<Cell>>, String>,
    ) -> (Table, Result<(), String>) {
        let mut all_columns = Vec::with_capacity(columns.len() + 1);
        if self.all {
            all_columns.push("user");
        }
        all_columns.extend_from_slice(columns);
        let mut table = Table::new(&all_columns);
        let mut failed = Vec::new();
        for (i, info) in self.users.iter().enumerate() {
            let done = self.rt.block_on(async {
                let store = self
                    .storage
                    .user(&crate::setup::storage_user(info))
                    .await
                    .map_err(|e| e.to_string())?;
                f(i, info, store).await
            });
            match done {
                Ok(rows) => {
                    for row in rows {
                        let mut full = Vec::with_capacity(row.len() + 1);
                        if self.all {
                            full.push(Cell::text(info.name.clone()));
                        }
                        full.extend(row);
                        table.push(full);
                    }
                }
                Err(e) => {
                    if self.all {
                        eprintln!("mailcove: {}: {e}", info.name);
                    }
                    failed.push((info.name.clone(), e));
                }
            }
        }
        let result = match failed.as_slice() {
            [] => Ok(()),
            [(name, e)] if !self.all => Err(format!("{name}: {e}")),
            _ => Err(format!("failed for {} user(s)", failed.len())),
        };
        (table, result)
    }

    /// [`Admin::each`], then prints the table (also when some users failed, for the others).
    pub(crate) fn run_and_print(
        &self,
        columns: &[&'static str],
        f: impl AsyncFnMut(usize, &UserInfo, Arc<dyn UserStore>) -> Result<Vec<Vec<Cell>>, String>,
    ) -> Result<(), String> {
        let (table, result) = self.each(columns, f);
        if result.is_ok() || self.all {
            table.print(self.json);
        }
        result
    }
}

/// The mailboxes named, or every selectable one of the user when none is.
pub(crate) async fn selectable_or(
    store: &dyn UserStore,
    named: &[String],
) -> Result<Vec<String>, String> {
    if !named.is_empty() {
        return Ok(named.to_vec());
    }
    Ok(store
        .list()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|m| !m.noselect)
        .map(|m| m.name)
        .collect())
}
