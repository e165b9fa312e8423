//! `mailcove sieve-test SCRIPT MESSAGE`: compiles a script and runs it over a message with an
//! in-memory environment, printing one line per action, as Pigeonhole's `sieve-test` does.
//! Compile errors go to stderr as `SCRIPT:LINE:COLUMN: message` with exit status 65
//! (EX_DATAERR); a run-time error prints `error: ...` and exits 1 (the actions printed are
//! then the implicit keep delivery would apply).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Action, CompileError, Envelope, Environment, IncludeLocation, RunOptions, Script};

/// EX_DATAERR from sysexits.h: the script does not compile.
const EX_DATAERR: u8 = 65;
/// EX_NOINPUT: a file could not be read.
const EX_NOINPUT: u8 = 66;

/// Arguments of `mailcove sieve-test`.
#[derive(Debug, clap::Args)]
pub struct SieveTestArgs {
    /// The Sieve script to compile and run.
    pub script: PathBuf,
    /// The message to run it over (RFC 5322, CRLF or LF line ends).
    pub message: PathBuf,
    /// Envelope sender (MAIL FROM); "" for the null sender.
    #[arg(long, default_value = "sender@example.com")]
    pub from: String,
    /// Envelope recipient (RCPT TO).
    #[arg(long, default_value = "recipient@example.com")]
    pub to: String,
    /// Authenticated submitter (`envelope "auth"`).
    #[arg(long)]
    pub auth: Option<String>,
    /// A mailbox that exists (INBOX always does); repeatable.
    #[arg(long = "mailbox")]
    pub mailboxes: Vec<String>,
    /// A special-use mailbox as ATTRIBUTE=MAILBOX (`\Junk=Spam`); repeatable.
    #[arg(long = "special-use")]
    pub special_use: Vec<String>,
    /// A METADATA entry as [MAILBOX:]ENTRY=VALUE (`/private/comment=x`, `INBOX:/shared/y=z`);
    /// repeatable.
    #[arg(long = "metadata")]
    pub metadata: Vec<String>,
    /// An environment item as NAME=VALUE; repeatable.
    #[arg(long = "env")]
    pub env: Vec<String>,
    /// Directory of `:global` includes (`NAME.sieve`); `:personal` ones are looked up next to
    /// SCRIPT.
    #[arg(long)]
    pub global_dir: Option<PathBuf>,
    /// Header holding the spam score for `spamtest`.
    #[arg(long)]
    pub spam_header: Option<String>,
    /// The score that counts as certain spam.
    #[arg(long, default_value_t = 10.0)]
    pub spam_max: f64,
    /// Header holding the virus verdict for `virustest`.
    #[arg(long)]
    pub virus_header: Option<String>,
    /// The current time as Unix seconds (`currentdate`); default: now.
    #[arg(long)]
    pub now: Option<u64>,
    /// A `duplicate` key (hex, as printed by a previous run) already seen; repeatable.
    #[arg(long = "seen")]
    pub seen: Vec<String>,
    /// A script run before SCRIPT, as `[sieve] sieve_before` (Pigeonhole's `sieve-test -s`);
    /// repeatable, run in the order given.
    #[arg(long = "before", short = 's')]
    pub before: Vec<PathBuf>,
    /// A script run after SCRIPT, as `[sieve] sieve_after`; repeatable.
    #[arg(long = "after")]
    pub after: Vec<PathBuf>,
}

/// Reads and compiles one script; on failure prints the error and returns the exit code.
fn load(path: &Path) -> Result<Arc<Script>, ExitCode> {
    let source = std::fs::read_to_string(path).map_err(|e| {
        eprintln!("mailcove: {}: {e}", path.display());
        ExitCode::from(EX_NOINPUT)
    })?;
    super::compile(&source).map(Arc::new).map_err(|e| {
        eprintln!("{}:{}:{}: {}", path.display(), e.line, e.column, e.message);
        ExitCode::from(EX_DATAERR)
    })
}

/// Runs `mailcove sieve-test`.
pub fn run(args: &SieveTestArgs) -> ExitCode {
    let source = match std::fs::read_to_string(&args.script) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mailcove: {}: {e}", args.script.display());
            return ExitCode::from(EX_NOINPUT);
        }
    };
    let script = match super::compile(&source) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!(
                "{}:{}:{}: {}",
                args.script.display(),
                e.line,
                e.column,
                e.message
            );
            return ExitCode::from(EX_DATAERR);
        }
    };
    let message = match std::fs::read(&args.message) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("mailcove: {}: {e}", args.message.display());
            return ExitCode::from(EX_NOINPUT);
        }
    };
    let mut env = TestEnv {
        personal_dir: args
            .script
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        global_dir: args.global_dir.clone(),
        mailboxes: args.mailboxes.clone(),
        special_use: pairs(&args.special_use),
        items: pairs(&args.env),
        metadata: args
            .metadata
            .iter()
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        now: args
            .now
            .map_or_else(SystemTime::now, |s| UNIX_EPOCH + Duration::from_secs(s)),
        seen: args.seen.iter().map(|s| s.to_ascii_lowercase()).collect(),
    };
    let envelope = Envelope {
        from: &args.from,
        to: &args.to,
        orig_to: None,
        auth: args.auth.as_deref(),
    };
    let opts = RunOptions {
        spam_header: args.spam_header.clone(),
        spam_max: args.spam_max,
        virus_header: args.virus_header.clone(),
        ..RunOptions::default()
    };
    // The sequence as delivery runs it: before scripts, SCRIPT, after scripts.
    let mut scripts = Vec::with_capacity(args.before.len() + 1 + args.after.len());
    for path in &args.before {
        match load(path) {
            Ok(s) => scripts.push(s),
            Err(code) => return code,
        }
    }
    scripts.push(script);
    for path in &args.after {
        match load(path) {
            Ok(s) => scripts.push(s),
            Err(code) => return code,
        }
    }
    let outcome = super::execute(&scripts, &message, &envelope, &mut env, &opts);
    if let Some(e) = &outcome.error {
        println!("error: {e}");
    }
    for a in &outcome.actions {
        println!("{}", describe(a));
    }
    for (key, period) in &outcome.duplicate_marks {
        println!(
            "duplicate mark {} period={}",
            hex(key),
            period_text(*period)
        );
    }
    if let Some(m) = &outcome.edited_message {
        println!("edited message:");
        print!("{}", String::from_utf8_lossy(m));
    }
    if outcome.error.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn pairs(v: &[String]) -> HashMap<String, String> {
    v.iter()
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect()
}

fn hex(k: &[u8]) -> String {
    k.iter().map(|b| format!("{b:02x}")).collect()
}

fn period_text(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(86400) {
        format!("{}d", s / 86400)
    } else {
        format!("{s}s")
    }
}

fn flags_text(flags: &[String]) -> String {
    if flags.is_empty() {
        String::new()
    } else {
        format!(" flags=[{}]", flags.join(" "))
    }
}

/// One action as a line.
pub fn describe(a: &Action) -> String {
    match a {
        Action::Keep { flags } => format!("keep{}", flags_text(flags)),
        Action::FileInto {
            mailbox,
            flags,
            create,
            special_use,
        } => {
            let mut s = format!("fileinto {mailbox:?}{}", flags_text(flags));
            if *create {
                s.push_str(" create");
            }
            if let Some(u) = special_use {
                s.push_str(&format!(" specialuse={u}"));
            }
            s
        }
        Action::Redirect { address } => format!("redirect {address:?}"),
        Action::Discard => "discard".to_string(),
        Action::Reject { reason, extended } => {
            format!(
                "{} {reason:?}",
                if *extended { "ereject" } else { "reject" }
            )
        }
        Action::Vacation {
            reason,
            subject,
            from,
            addresses,
            mime,
            handle,
            period,
        } => {
            let mut s = format!("vacation handle={handle} period={}", period_text(*period));
            if let Some(sub) = subject {
                s.push_str(&format!(" subject={sub:?}"));
            }
            if let Some(f) = from {
                s.push_str(&format!(" from={f:?}"));
            }
            if !addresses.is_empty() {
                s.push_str(&format!(" addresses={addresses:?}"));
            }
            if *mime {
                s.push_str(" mime");
            }
            s.push_str(&format!(" reason={reason:?}"));
            s
        }
    }
}

struct TestEnv {
    personal_dir: PathBuf,
    global_dir: Option<PathBuf>,
    mailboxes: Vec<String>,
    special_use: HashMap<String, String>,
    items: HashMap<String, String>,
    metadata: HashMap<String, String>,
    now: SystemTime,
    seen: Vec<String>,
}

impl Environment for TestEnv {
    fn include(
        &mut self,
        location: IncludeLocation,
        name: &str,
    ) -> Option<Result<Arc<Script>, CompileError>> {
        let dir = match location {
            IncludeLocation::Personal => self.personal_dir.clone(),
            IncludeLocation::Global => self.global_dir.clone()?,
        };
        let src = std::fs::read_to_string(dir.join(format!("{name}.sieve"))).ok()?;
        Some(super::compile(&src).map(Arc::new))
    }

    fn mailbox_exists(&mut self, mailbox: &str) -> bool {
        mailbox.eq_ignore_ascii_case("INBOX") || self.mailboxes.iter().any(|m| m == mailbox)
    }

    fn special_use_mailbox(&mut self, attribute: &str) -> Option<String> {
        self.special_use
            .get(&attribute.to_ascii_lowercase())
            .cloned()
    }

    fn metadata(&mut self, mailbox: Option<&str>, entry: &str) -> Option<String> {
        let key = match mailbox {
            Some(m) => format!("{m}:{entry}"),
            None => entry.to_string(),
        };
        self.metadata.get(&key).cloned()
    }

    fn environment(&mut self, item: &str) -> Option<String> {
        if let Some(v) = self.items.get(item) {
            return Some(v.clone());
        }
        match item {
            "location" => Some("MDA".to_string()),
            "phase" => Some("during".to_string()),
            "host" => Some("localhost".to_string()),
            "domain" => Some("localhost".to_string()),
            _ => None,
        }
    }

    fn duplicate_seen(&mut self, key: &[u8; 32], _period: Duration) -> bool {
        let k = hex(key);
        self.seen.contains(&k)
    }

    fn now(&mut self) -> SystemTime {
        self.now
    }
}
