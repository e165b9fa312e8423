//! One file per ManageSieve command; [`run`] dispatches a table row to its handler.

pub mod authenticate;
pub mod capability;
pub mod checkscript;
pub mod deletescript;
pub mod getscript;
pub mod havespace;
pub mod listscripts;
pub mod logout;
pub mod noop;
pub mod putscript;
pub mod renamescript;
pub mod setactive;
pub mod starttls;
pub mod unauthenticate;

use super::response::SieveError;
use super::session::{Args, Next, Session};
use super::table::Cmd;

/// Runs command `cmd` with its arguments (the state was checked against the table).
pub async fn run(s: &mut Session, cmd: Cmd, args: Args) -> Result<Next, SieveError> {
    match cmd {
        Cmd::Capability => capability::run(s, args),
        Cmd::Logout => logout::run(s, args),
        Cmd::Noop => noop::run(s, args),
        Cmd::Authenticate => authenticate::run(s, args).await,
        Cmd::Starttls => starttls::run(s, args).await,
        Cmd::Getscript => getscript::run(s, args).await,
        Cmd::Setactive => setactive::run(s, args).await,
        Cmd::Listscripts => listscripts::run(s, args).await,
        Cmd::Deletescript => deletescript::run(s, args).await,
        Cmd::Putscript => putscript::run(s, args).await,
        Cmd::Checkscript => checkscript::run(s, args).await,
        Cmd::Havespace => havespace::run(s, args).await,
        Cmd::Renamescript => renamescript::run(s, args).await,
        Cmd::Unauthenticate => unauthenticate::run(s, args),
    }
}
