//! Command-line interface: `serve`, `check-config`, `user`, `hash-password`, `deliver`, `quota`,
//! and the storage admin commands of [`crate::admin`] (`mailbox`, `expunge`, `index`, `import`,
//! `export`, `migrate`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

/// mailcove: IMAP4rev1 and POP3 mail-access server.
#[derive(Debug, Parser)]
#[command(name = "mailcove", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the daemon.
    Serve {
        /// Configuration file.
        #[arg(long, short = 'c', default_value = "/etc/mailcove/mailcove.toml")]
        config: PathBuf,
    },
    /// Validate a configuration file and print the effective configuration; exit 1 on errors.
    CheckConfig {
        /// Configuration file.
        #[arg(long, short = 'c', default_value = "/etc/mailcove/mailcove.toml")]
        config: PathBuf,
    },
    /// Manage the users file (Dovecot passwd-file format).
    User {
        #[command(subcommand)]
        action: UserCmd,
    },
    /// Read a password from stdin (or the terminal) and print its argon2id PHC hash.
    HashPassword {
        /// Take the argon2 costs from this configuration file instead of the defaults.
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
        /// Password scheme: ARGON2ID, or SCRAM-SHA-256 / SCRAM-SHA-1 keys (Dovecot's format).
        #[arg(long, default_value = "ARGON2ID", value_parser = SCHEMES, ignore_case = true)]
        scheme: String,
    },
    /// Store one message read on stdin for a user (an MTA's mailbox_command or pipe transport).
    /// Exits 0, 67 (no such user), 73 (cannot store, permanently) or 75 (try again later).
    Deliver {
        /// Configuration file.
        #[arg(long, short = 'c', default_value = "/etc/mailcove/mailcove.toml")]
        config: PathBuf,
        /// Recipient: `user`, `user@domain` or `user+folder@domain`.
        #[arg(short = 'd', long = "destination")]
        user: String,
        /// Folder to store into; INBOX when it does not exist.
        #[arg(short = 'm', long = "mailbox")]
        mailbox: Option<String>,
        /// Envelope sender, for the Return-Path header.
        #[arg(short = 'f', long = "from")]
        sender: Option<String>,
    },
    /// Quota administration.
    Quota {
        #[command(subcommand)]
        action: crate::admin::quota::QuotaCmd,
    },
    /// Mailbox administration: list, status, create, delete, rename.
    Mailbox {
        #[command(subcommand)]
        action: crate::admin::mailbox::MailboxCmd,
    },
    /// Expunge the messages of a mailbox that IMAP SEARCH keys match.
    Expunge(crate::admin::expunge::ExpungeArgs),
    /// Index administration.
    Index {
        #[command(subcommand)]
        action: crate::admin::index::IndexCmd,
    },
    /// Import an mbox file (mboxrd) into a mailbox.
    Import(crate::admin::mbox::MboxArgs),
    /// Export a mailbox to a new mbox file (mboxrd).
    Export(crate::admin::mbox::MboxArgs),
    /// Copy users' mail from the storage of one configuration to another's (Maildir to
    /// PostgreSQL and back), keeping UIDVALIDITY, UIDs, flags and dates; resumable, verified.
    Migrate(crate::admin::migrate::MigrateArgs),
    /// List the users logged in over IMAP and POP3 (asks the running daemon).
    Who {
        /// Configuration file (for server.control_socket).
        #[arg(long, short = 'c', default_value = "/etc/mailcove/mailcove.toml")]
        config: PathBuf,
        /// Also list connections that have not logged in yet.
        #[arg(long)]
        all: bool,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Disconnect every IMAP/POP3 session of a user; exits 68 when none was found.
    Kick {
        /// Configuration file (for server.control_socket).
        #[arg(long, short = 'c', default_value = "/etc/mailcove/mailcove.toml")]
        config: PathBuf,
        /// User name, as logged in.
        user: String,
        /// Only sessions of this protocol.
        #[arg(long, value_enum)]
        protocol: Option<KickProtocol>,
        /// JSON instead of a sentence.
        #[arg(long)]
        json: bool,
    },
    /// Re-read the configuration, users file and certificate of the running daemon (as SIGHUP).
    Reload {
        /// Configuration file (for server.control_socket).
        #[arg(long, short = 'c', default_value = "/etc/mailcove/mailcove.toml")]
        config: PathBuf,
    },
    /// Compile a Sieve script and run it over a message, printing the actions (as Pigeonhole's sieve-test).
    SieveTest(Box<crate::sieve::cli::SieveTestArgs>),
    /// Write man pages or shell completions generated from this command line (packaging/build-deb).
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: crate::cli_generate::GenerateCmd,
    },
}

/// Protocols `kick --protocol` accepts.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum KickProtocol {
    Imap,
    Pop3,
}

#[derive(Debug, Subcommand)]
enum UserCmd {
    /// Add a user; the password is read from the terminal (twice) or from stdin.
    Add {
        /// Users file to edit.
        #[arg(long)]
        users: PathBuf,
        /// User name (`name` or `name@domain`).
        name: String,
        /// Extra fields, e.g. `userdb_quota_rule=*:storage=1G`.
        #[arg(long = "field")]
        fields: Vec<String>,
        /// Password scheme: ARGON2ID, or SCRAM-SHA-256 / SCRAM-SHA-1 keys (Dovecot's format),
        /// which allow SCRAM logins as well as plain ones.
        #[arg(long, default_value = "ARGON2ID", value_parser = SCHEMES, ignore_case = true)]
        scheme: String,
    },
    /// Change a user's password.
    Passwd {
        /// Users file to edit.
        #[arg(long)]
        users: PathBuf,
        /// User name.
        name: String,
        /// Password scheme: ARGON2ID, or SCRAM-SHA-256 / SCRAM-SHA-1 keys (Dovecot's format).
        #[arg(long, default_value = "ARGON2ID", value_parser = SCHEMES, ignore_case = true)]
        scheme: String,
    },
    /// Remove a user (their mail stays on disk).
    Del {
        /// Users file to edit.
        #[arg(long)]
        users: PathBuf,
        /// User name.
        name: String,
    },
    /// List the users.
    List {
        /// Users file to read.
        #[arg(long)]
        users: PathBuf,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // An MTA reads the status of `deliver`: a usage error must be EX_USAGE, not clap's 2.
            let is_deliver = std::env::args().nth(1).as_deref() == Some("deliver");
            if is_deliver && e.use_stderr() {
                let _ = e.print();
                return ExitCode::from(crate::lmtp::cli::EX_USAGE);
            }
            e.exit()
        }
    };
    match cli.command {
        Cmd::Serve { config } => crate::server::daemon::run(&config),
        Cmd::CheckConfig { config } => check_config(&config),
        Cmd::User { action } => {
            crate::logging::init_cli();
            report(user(action))
        }
        Cmd::HashPassword { config, scheme } => {
            crate::logging::init_cli();
            report(hash_password_scheme(config.as_deref(), &scheme))
        }
        Cmd::Deliver {
            config,
            user,
            mailbox,
            sender,
        } => {
            let args = crate::lmtp::cli::DeliverArgs {
                config: &config,
                user: &user,
                mailbox: mailbox.as_deref(),
                sender: sender.as_deref(),
            };
            ExitCode::from(crate::lmtp::cli::run(&args, &mut std::io::stdin().lock()))
        }
        Cmd::Quota { action } => {
            crate::logging::init_cli();
            report(crate::admin::quota::run(action))
        }
        Cmd::Mailbox { action } => {
            crate::logging::init_cli();
            report(crate::admin::mailbox::run(action))
        }
        Cmd::Expunge(args) => {
            crate::logging::init_cli();
            report(crate::admin::expunge::run(args))
        }
        Cmd::Index { action } => {
            crate::logging::init_cli();
            report(crate::admin::index::run(action))
        }
        Cmd::Import(args) => {
            crate::logging::init_cli();
            report(crate::admin::mbox::import(args))
        }
        Cmd::Export(args) => {
            crate::logging::init_cli();
            report(crate::admin::mbox::export(args))
        }
        Cmd::Migrate(args) => {
            crate::logging::init_cli();
            report(crate::admin::migrate::run(args))
        }
        Cmd::Who { config, all, json } => crate::control_cli::who(&config, all, json),
        Cmd::Kick {
            config,
            user,
            protocol,
            json,
        } => {
            let protocol = protocol.map(|p| match p {
                KickProtocol::Imap => crate::config::Protocol::Imap,
                KickProtocol::Pop3 => crate::config::Protocol::Pop3,
            });
            crate::control_cli::kick(&config, &user, protocol, json)
        }
        Cmd::Reload { config } => crate::control_cli::reload(&config),
        Cmd::Generate { what } => report(crate::cli_generate::run(what)),
        Cmd::SieveTest(args) => crate::sieve::cli::run(&args),
    }
}

fn report(r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mailcove: {e}");
            ExitCode::from(1)
        }
    }
}

fn check_config(path: &Path) -> ExitCode {
    match Config::load(path) {
        Ok(c) => {
            println!("# effective configuration of {}", path.display());
            print!("{}", c.to_toml());
            use crate::server::daemon::{MailRootCheck, check_mail_root};
            match check_mail_root(&c) {
                MailRootCheck::Fine => ExitCode::SUCCESS,
                MailRootCheck::Skipped(why) => {
                    eprintln!("note: {why}");
                    ExitCode::SUCCESS
                }
                MailRootCheck::Problem(msg) => {
                    eprintln!("{}: {msg}", path.display());
                    ExitCode::from(1)
                }
            }
        }
        Err(e) => {
            eprintln!("{e}");
            eprintln!("{} error(s) in {}", e.issues.len(), path.display());
            ExitCode::from(1)
        }
    }
}

fn user(action: UserCmd) -> Result<(), String> {
    use crate::auth::admin;
    let params = crate::setup::argon2_params(&Config::default().auth);
    match action {
        UserCmd::Add {
            users,
            name,
            fields,
            scheme,
        } => {
            let scheme = password_scheme(&scheme)?;
            let pw =
                admin::read_password(true).map_err(|e| format!("reading the password: {e}"))?;
            admin::user_add_scheme(&users, &name, &pw, &fields, &params, scheme)
                .map_err(|e| e.to_string())?;
            eprintln!("added {name} to {}", users.display());
        }
        UserCmd::Passwd {
            users,
            name,
            scheme,
        } => {
            let scheme = password_scheme(&scheme)?;
            let pw =
                admin::read_password(true).map_err(|e| format!("reading the password: {e}"))?;
            admin::user_passwd_scheme(&users, &name, &pw, &params, scheme)
                .map_err(|e| e.to_string())?;
            eprintln!("changed the password of {name}");
        }
        UserCmd::Del { users, name } => {
            admin::user_del(&users, &name).map_err(|e| e.to_string())?;
            eprintln!("removed {name} from {}", users.display());
        }
        UserCmd::List { users } => {
            for u in admin::user_list(&users).map_err(|e| e.to_string())? {
                println!("{}", u.name);
            }
        }
    }
    Ok(())
}

/// The `--scheme` values of `user add`, `user passwd` and `hash-password`.
const SCHEMES: [&str; 3] = ["ARGON2ID", "SCRAM-SHA-256", "SCRAM-SHA-1"];

fn password_scheme(name: &str) -> Result<crate::auth::admin::PasswordScheme, String> {
    crate::auth::admin::PasswordScheme::from_name(name)
        .ok_or_else(|| format!("unknown password scheme {name:?}"))
}

/// `hash-password --scheme`: the whole password field, `{SCHEME}...`, for any scheme but the
/// default (whose output stays as it was).
fn hash_password_scheme(config: Option<&Path>, scheme: &str) -> Result<(), String> {
    let scheme = password_scheme(scheme)?;
    if scheme == crate::auth::admin::PasswordScheme::Argon2id {
        return hash_password(config);
    }
    let auth = match config {
        Some(p) => Config::load(p).map_err(|e| e.to_string())?.auth,
        None => Config::default().auth,
    };
    let pw = crate::auth::admin::read_password(false)
        .map_err(|e| format!("reading the password: {e}"))?;
    let field =
        crate::auth::admin::stored_password(&pw, scheme, &crate::setup::argon2_params(&auth))
            .map_err(|e| e.to_string())?;
    println!("{field}");
    Ok(())
}

fn hash_password(config: Option<&Path>) -> Result<(), String> {
    let auth = match config {
        Some(p) => Config::load(p).map_err(|e| e.to_string())?.auth,
        None => Config::default().auth,
    };
    let pw = crate::auth::admin::read_password(false)
        .map_err(|e| format!("reading the password: {e}"))?;
    let hash = crate::auth::admin::hash_password(&pw, &crate::setup::argon2_params(&auth))
        .map_err(|e| e.to_string())?;
    println!("{{ARGON2ID}}{hash}");
    Ok(())
}
