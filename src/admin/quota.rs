//! `mailcove quota get|recalc`: a user's quota usage and limits, and its repair.
//!
//! The usage is kept incrementally (Maildir++ `maildirsize`: every writer appends a delta line),
//! and nothing scans the mailboxes per command. Should the file ever disagree with the mail
//! (messages added or removed by hand, a restore from backup), `recalc` walks every folder of
//! the user under the Maildir++ rules and writes the file anew, exactly what the server does by
//! itself when the file is missing or has grown past 5120 bytes. `get` only reads.
//!
//! `recalc` prints, without `--json`, one line per user as it always has
//! (`ann: storage 1300 of 1048576 bytes, messages 2 of unlimited`); `get` prints a table.

use clap::Subcommand;

use super::output::Cell;
use super::{Target, start};
use crate::storage::QuotaUsage;

/// `mailcove quota ...`.
#[derive(Debug, Subcommand)]
pub enum QuotaCmd {
    /// Show a user's quota usage and limits (storage in bytes, messages).
    Get {
        #[command(flatten)]
        target: Target,
    },
    /// Rebuild a user's quota usage (Maildir++ `maildirsize`) by walking all of their folders,
    /// and print it.
    Recalc {
        #[command(flatten)]
        target: Target,
    },
}

const COLUMNS: [&str; 4] = [
    "storage_used",
    "storage_limit",
    "messages_used",
    "messages_limit",
];

fn row(u: &QuotaUsage) -> Vec<Cell> {
    vec![
        Cell::Int(u.bytes_used),
        Cell::opt(u.bytes_limit),
        Cell::Int(u.messages_used),
        Cell::opt(u.messages_limit),
    ]
}

/// Runs a `mailcove quota` command.
pub fn run(cmd: QuotaCmd) -> Result<(), String> {
    match cmd {
        QuotaCmd::Get { target } => {
            let (admin, ()) = start(&target, |_| Ok(()))?;
            admin.run_and_print(&COLUMNS, async |_, _, store| {
                let u = store.quota().await.map_err(|e| e.to_string())?;
                Ok(vec![row(&u)])
            })
        }
        QuotaCmd::Recalc { target } => {
            let (admin, ()) = start(&target, |_| Ok(()))?;
            let mut lines = Vec::new();
            let (table, result) = admin.each(&COLUMNS, async |_, info, store| {
                let u = store.quota_recalc().await.map_err(|e| e.to_string())?;
                lines.push(report(&info.name, &u));
                Ok(vec![row(&u)])
            });
            if admin.json() {
                table.print(true);
            } else {
                for l in lines {
                    println!("{l}");
                }
            }
            result
        }
    }
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
