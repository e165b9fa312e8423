//! The Sieve grammar and compiler (`mailcove::sieve::compile`), and the interpreter over a
//! fixed message for what compiles (`mailcove::sieve::execute`).
//!
//! Invariants: never a panic; an error's position is 1-based and inside the script (its line
//! at most one past the number of lines); a compiled script runs to an outcome with at least
//! one action, and a run stopped by an error or a limit holds exactly the implicit keep.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mailcove::sieve::{
    Action, CompileError, Envelope, Environment, IncludeLocation, RunOptions, Script, compile,
    execute,
};

const MESSAGE: &[u8] = b"From: \"Ken\" <ken+sieve@example.org>\r\n\
To: me@example.com, other@example.net\r\n\
Subject: [list] =?UTF-8?B?w6l0w6k=?= money\r\n\
Date: Fri, 19 Nov 1982 10:10:00 -0500\r\n\
Received: from a by b; Sat, 8 Mar 2008 12:00:00 +0000\r\n\
Message-ID: <1@example.org>\r\n\
X-Spam-Score: 6.5\r\n\
\r\n\
Hello, this is the body.\r\n";

struct Env;

impl Environment for Env {
    fn include(
        &mut self,
        _location: IncludeLocation,
        name: &str,
    ) -> Option<Result<Arc<Script>, CompileError>> {
        // One script that includes itself, to exercise the recursion check.
        (name == "self").then(|| compile("require \"include\"; include \"self\";").map(Arc::new))
    }
    fn mailbox_exists(&mut self, mailbox: &str) -> bool {
        mailbox == "INBOX" || mailbox == "Lists"
    }
    fn special_use_mailbox(&mut self, attribute: &str) -> Option<String> {
        (attribute == "\\Junk").then(|| "Spam".to_string())
    }
    fn metadata(&mut self, _mailbox: Option<&str>, _entry: &str) -> Option<String> {
        None
    }
    fn environment(&mut self, item: &str) -> Option<String> {
        (item == "location").then(|| "MDA".to_string())
    }
    fn duplicate_seen(&mut self, key: &[u8; 32], _period: Duration) -> bool {
        key[0] & 1 == 1
    }
    fn now(&mut self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }
}

pub fn run(data: &[u8]) {
    let src = String::from_utf8_lossy(data);
    match compile(&src) {
        Err(e) => {
            assert!(
                e.line >= 1 && e.column >= 1,
                "position {}:{}",
                e.line,
                e.column
            );
            let lines = src.split('\n').count();
            assert!((e.line as usize) <= lines + 1, "line {} of {lines}", e.line);
        }
        Ok(script) => {
            let opts = RunOptions {
                max_steps: 100_000,
                spam_header: Some("X-Spam-Score".to_string()),
                virus_header: Some("X-Virus".to_string()),
                ..RunOptions::default()
            };
            let envelope = Envelope {
                from: "sender@example.com",
                to: "me+detail@example.com",
                orig_to: None,
                auth: None,
            };
            let out = execute(&[Arc::new(script)], MESSAGE, &envelope, &mut Env, &opts);
            assert!(!out.actions.is_empty(), "no action at all");
            if out.error.is_some() {
                assert!(
                    matches!(out.actions.as_slice(), [Action::Keep { .. }]),
                    "error but {:?}",
                    out.actions
                );
                assert!(out.edited_message.is_none());
            }
        }
    }
}
