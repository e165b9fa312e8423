//! Sieve (RFC 5228): the public face of the language that delivery (`lmtp`, `deliver`) and
//! ManageSieve use. [`compile`] turns a script into a checked [`Script`] (syntax, `require`,
//! argument types); [`execute`] runs a sequence of scripts (`sieve_before`, the user's,
//! `sieve_after`) over one message and returns the [`Action`]s to apply.
//!
//! The language itself (grammar, AST, compiler, interpreter, extensions) lives in submodules;
//! this file is the contract between the language and its users and changes only additively.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub mod address;
pub mod ast;
pub mod cli;
pub mod comparators;
pub mod compile;
pub mod ext;
pub mod interp;
pub mod match_types;
pub mod parse;

use crate::limits::{
    SIEVE_DEFAULT_MAX_ACTIONS, SIEVE_DEFAULT_MAX_INCLUDE_DEPTH, SIEVE_DEFAULT_MAX_REDIRECTS,
    SIEVE_DEFAULT_MAX_STEPS, SIEVE_MAX_SCRIPT_SIZE,
};

/// A compiled, checked script. Cheap to share (`Arc<Script>`); `Send + Sync`.
#[derive(Debug)]
pub struct Script {
    /// The source text (kept for GETSCRIPT-style uses and error reports).
    source: String,
    /// The typed, checked commands.
    program: compile::Program,
}

impl Script {
    /// The script's source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The extensions the script requires (lowercase, sorted).
    pub fn required_extensions(&self) -> impl Iterator<Item = &str> {
        self.program.required.iter().map(String::as_str)
    }
}

/// Why a script does not compile: the position and a message a user can act on (ManageSieve
/// PUTSCRIPT/CHECKSCRIPT answer `NO "line N: message"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct CompileError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// What is wrong.
    pub message: String,
}

/// Every extension this implementation supports, as `require` and the ManageSieve `SIEVE`
/// capability name them.
pub fn extensions() -> &'static [&'static str] {
    ext::SUPPORTED
}

/// Compiles `source`. Checks syntax, that every extension used is required and supported,
/// argument types and counts, and the named limits (script size, nesting). Includes are not
/// resolved here (they are looked up through [`Environment::include`] at run time), so a
/// script that includes a missing script compiles, as in Pigeonhole.
pub fn compile(source: &str) -> Result<Script, CompileError> {
    if source.len() > SIEVE_MAX_SCRIPT_SIZE {
        return Err(CompileError {
            line: 1,
            column: 1,
            message: format!("script too large (more than {SIEVE_MAX_SCRIPT_SIZE} bytes)"),
        });
    }
    let raw = parse::parse(source)?;
    let program = compile::compile(&raw)?;
    Ok(Script {
        source: source.to_string(),
        program,
    })
}

/// The SMTP envelope of the delivery being filtered.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// MAIL FROM without angle brackets; `""` for the null sender.
    pub from: &'a str,
    /// The RCPT TO address being delivered to (the `envelope "to"` value), e.g.
    /// `user+detail@example.org`.
    pub to: &'a str,
    /// The ORCPT original recipient, when the MTA gave one.
    pub orig_to: Option<&'a str>,
    /// The authenticated submitter (`envelope "auth"`), if known.
    pub auth: Option<&'a str>,
}

/// Where an `include` looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeLocation {
    /// `:personal` (the default): the user's script directory.
    Personal,
    /// `:global`: the site's `sieve_global` directory.
    Global,
}

/// What the interpreter asks of the world while it runs. Delivery implements it over the
/// user's store and the site configuration; tests implement it in memory.
pub trait Environment {
    /// The compiled script `name` (without `.sieve`) at `location`: `None` if it does not
    /// exist, `Some(Err)` if it does not compile.
    fn include(
        &mut self,
        location: IncludeLocation,
        name: &str,
    ) -> Option<Result<Arc<Script>, CompileError>>;
    /// Whether the mailbox exists (`mailboxexists`, `fileinto` without `:create`).
    fn mailbox_exists(&mut self, mailbox: &str) -> bool;
    /// The name of a mailbox with special-use `attribute` (`\Junk`), if any (RFC 8579).
    fn special_use_mailbox(&mut self, attribute: &str) -> Option<String>;
    /// A METADATA entry (`metadata`, `servermetadata`; mailbox `None` for server entries).
    fn metadata(&mut self, mailbox: Option<&str>, entry: &str) -> Option<String>;
    /// An `environment` item ("domain", "host", "location", "name", "phase", "remote-host",
    /// "remote-ip", "version", "vnd.dovecot.*"); `None` if unknown.
    fn environment(&mut self, item: &str) -> Option<String>;
    /// RFC 7352 `duplicate`: whether `key` (already hashed with the handle) was seen within
    /// `period`. The key is recorded only when delivery succeeds, through
    /// [`Outcome::duplicate_marks`].
    fn duplicate_seen(&mut self, key: &[u8; 32], period: Duration) -> bool;
    /// The current time (tests fix it; `currentdate`).
    fn now(&mut self) -> SystemTime;
}

/// Per-run limits and site settings (named defaults in `limits.rs`).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Interpreter steps (tests, commands, string operations) per run before it is stopped.
    pub max_steps: u64,
    /// Actions per run (`fileinto`, `redirect`, `vacation`, ...).
    pub max_actions: usize,
    /// `redirect` actions per message.
    pub max_redirects: usize,
    /// Nesting of `include`.
    pub max_include_depth: usize,
    /// The header holding a spam score for `spamtest` (e.g. `X-Spam-Score`), if configured.
    pub spam_header: Option<String>,
    /// The score that maps to `spamtest` value 10 (the threshold of a certain spam).
    pub spam_max: f64,
    /// The header holding a virus verdict for `virustest`, if configured.
    pub virus_header: Option<String>,
}

impl Default for RunOptions {
    /// The named defaults of `limits.rs`; no spam or virus header; a spam score of 10 is
    /// certain spam (SpamAssassin's scale, whose default threshold is 5).
    fn default() -> Self {
        RunOptions {
            max_steps: SIEVE_DEFAULT_MAX_STEPS,
            max_actions: SIEVE_DEFAULT_MAX_ACTIONS,
            max_redirects: SIEVE_DEFAULT_MAX_REDIRECTS,
            max_include_depth: SIEVE_DEFAULT_MAX_INCLUDE_DEPTH,
            spam_header: None,
            spam_max: 10.0,
            virus_header: None,
        }
    }
}

/// One thing to do with the message. Delivery applies all of a run's actions for one
/// recipient atomically, or none and keeps the message in INBOX.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Store in INBOX (explicit `keep` or the implicit keep), with these flags and keywords.
    Keep {
        /// System flags (`\Seen`) and keywords to set.
        flags: Vec<String>,
    },
    /// `fileinto`.
    FileInto {
        /// The mailbox name (UTF-8, `/`-separated as the script wrote it).
        mailbox: String,
        /// Flags and keywords to set.
        flags: Vec<String>,
        /// `:create`: create the mailbox when missing (else keep in INBOX).
        create: bool,
        /// `:specialuse`: prefer the mailbox with this special-use attribute.
        special_use: Option<String>,
    },
    /// `redirect` to another address (`:copy` does not cancel the implicit keep; that is
    /// already reflected in whether a `Keep` is in the list).
    Redirect {
        /// The target address.
        address: String,
    },
    /// `discard` (cancels the implicit keep; nothing else to do).
    Discard,
    /// `reject` / `ereject`: refuse the message with this text (LMTP 550 5.7.1 for the
    /// recipient, as Pigeonhole does when the MTA is still in the transaction).
    Reject {
        /// The reason given by the script.
        reason: String,
        /// `ereject` (RFC 5429 section 2.1).
        extended: bool,
    },
    /// `vacation` (RFC 5230, RFC 6131): delivery decides whether to send (RFC 3834 rules,
    /// response tracking) and sends.
    Vacation {
        /// The reply body (or a MIME entity when `mime`).
        reason: String,
        /// `:subject`, if given.
        subject: Option<String>,
        /// `:from`, if given.
        from: Option<String>,
        /// `:addresses`: the user's other addresses.
        addresses: Vec<String>,
        /// `:mime`.
        mime: bool,
        /// `:handle`, or the default handle derived from the arguments (RFC 5230 4.2).
        handle: String,
        /// `:days` or `:seconds`, already clamped to the configured range.
        period: Duration,
    },
}

/// The result of running the scripts over one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// What to do, in script order. Always holds at least one of Keep, FileInto, Discard,
    /// Reject, or Redirect (a run with no actions holds the implicit `Keep`).
    pub actions: Vec<Action>,
    /// The message after `editheader` (`addheader`/`deleteheader`), to store and redirect
    /// instead of the original; `None` when unchanged.
    pub edited_message: Option<Vec<u8>>,
    /// Keys to record as seen for `duplicate`, with their periods, once delivery succeeded.
    pub duplicate_marks: Vec<([u8; 32], Duration)>,
    /// A run-time error or limit that stopped a script. Then `actions` is the implicit
    /// `Keep` only (flags as set so far), and delivery logs the error.
    pub error: Option<String>,
}

/// Runs `scripts` in order (Pigeonhole's sequence: `sieve_before`, the user's, `sieve_after`)
/// over `message` (the full RFC 5322 bytes) for one recipient.
pub fn execute(
    scripts: &[Arc<Script>],
    message: &[u8],
    envelope: &Envelope<'_>,
    env: &mut dyn Environment,
    opts: &RunOptions,
) -> Outcome {
    interp::run(scripts, message, envelope, env, opts)
}

// ---- delivery (LMTP, `deliver`): script loading, the environment, applying the outcome ----

pub mod cache;
pub mod deliver;
pub mod outbound;
pub mod store;
pub mod tracking;
pub mod vacation;
