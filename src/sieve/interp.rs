//! The interpreter: runs compiled scripts over one message and collects the actions.
//!
//! Every command, test, compared value and wildcard step costs one step of
//! `RunOptions::max_steps`; a run that exceeds a limit (steps, actions, redirects, include
//! depth, a run-time error such as a missing include or a bad regex) ends with the implicit
//! keep only and the error (`Outcome::error`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use super::address::{self, Addr};
use super::ast::*;
use super::ext;
use super::match_types::{self, Exhausted};
use super::{Action, Envelope, Environment, IncludeLocation, Outcome, RunOptions, Script};
use crate::limits::{
    SIEVE_DUPLICATE_DEFAULT_SECS, SIEVE_DUPLICATE_MAX_SECS, SIEVE_MAX_VARIABLE_LEN,
    SIEVE_MAX_VARIABLES,
};
use crate::mime::decode_header_value;

/// Why a run stopped early.
type Fail = String;

/// Steps (in units of 64 bytes, see `Run::charge`) that building one `:regex` key at run time
/// costs.
const REGEX_BUILD_COST: usize = 64 * 1000;

enum Flow {
    Next,
    Stop,
    Return,
}

/// The message as the tests see it: header fields (edited by `editheader`) and the body.
struct Msg<'a> {
    raw: &'a [u8],
    fields: Vec<(String, Vec<u8>)>,
    body_start: usize,
    edited: bool,
}

impl<'a> Msg<'a> {
    fn parse(raw: &'a [u8]) -> Msg<'a> {
        // The header ends at the first empty line.
        let mut pos = 0usize;
        let mut body_start = raw.len();
        while pos < raw.len() {
            let end = memchr::memchr(b'\n', raw.get(pos..).unwrap_or(&[]))
                .map_or(raw.len(), |k| pos + k + 1);
            let line = raw.get(pos..end).unwrap_or(&[]);
            if line == b"\n" || line == b"\r\n" {
                body_start = end;
                break;
            }
            pos = end;
        }
        let header = raw.get(..body_start.min(raw.len())).unwrap_or(&[]);
        let fields = crate::mime::fields(header)
            .map(|f| {
                (
                    String::from_utf8_lossy(f.name).into_owned(),
                    f.raw_value.to_vec(),
                )
            })
            .collect();
        Msg {
            raw,
            fields,
            body_start,
            edited: false,
        }
    }

    /// Raw values of the fields called `name`, in order.
    fn raw_values(&self, name: &str) -> Vec<&[u8]> {
        self.fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    fn body(&self) -> &'a [u8] {
        self.raw.get(self.body_start..).unwrap_or(&[])
    }

    /// The message with the edited header.
    fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.raw.len() + 256);
        for (n, v) in &self.fields {
            out.extend_from_slice(n.as_bytes());
            out.push(b':');
            out.extend_from_slice(v);
            if !v.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.body());
        out
    }
}

/// Per-script variables (RFC 5229: variables are local to a script; RFC 6609 `global`).
#[derive(Default)]
struct Frame {
    locals: HashMap<String, String>,
    globals_declared: HashSet<String>,
    match_vars: Vec<String>,
}

struct Run<'e, 'm> {
    env: &'e mut dyn Environment,
    opts: &'e RunOptions,
    envelope: &'e Envelope<'e>,
    msg: Msg<'m>,
    steps: u64,
    actions: Vec<Action>,
    implicit_keep: bool,
    /// The current script executed `keep` (which keeps a sequence going, see [`run`]).
    explicit_keep: bool,
    /// `fileinto "INBOX"` was executed: the `Keep` action is a store, not a deferred keep.
    inbox_filed: bool,
    discarded: bool,
    rejected: bool,
    vacation: bool,
    redirects: usize,
    action_count: usize,
    flags: String,
    globals: HashMap<String, String>,
    included_once: HashSet<(bool, String)>,
    include_stack: Vec<(bool, String)>,
    duplicate_marks: Vec<([u8; 32], Duration)>,
    /// The MIME structure, parsed on the first `body` test.
    info: Option<crate::mime::MessageInfo>,
    /// `body :text` and `body :raw` texts, made once per run.
    body_cache: Vec<(bool, Vec<String>)>,
}

/// Runs `scripts` in sequence (`sieve_before`, the user's, `sieve_after`) as Pigeonhole runs
/// its script sequence (after draft-degener-sieve-multiscript; docs/sieve.md "Script
/// sequences"):
///
/// - the next script runs only when the script ends with a keep in effect: the implicit keep
///   not cancelled, or an explicit `keep` executed. `stop` ends only its own script;
///   `discard; stop;` (or any action that cancels the keep without `keep`) ends the sequence;
/// - a keep in a script that is followed by another only lets that script run: the message is
///   stored in INBOX only if the last script run ends with a keep in effect. `fileinto "INBOX"`
///   stores it at once, as in Pigeonhole;
/// - each script starts with its own implicit keep; all other actions of every script run add
///   up and are applied together (all or nothing).
pub fn run(
    scripts: &[Arc<Script>],
    message: &[u8],
    envelope: &Envelope<'_>,
    env: &mut dyn Environment,
    opts: &RunOptions,
) -> Outcome {
    let mut r = Run {
        env,
        opts,
        envelope,
        msg: Msg::parse(message),
        steps: opts.max_steps,
        actions: Vec::new(),
        implicit_keep: true,
        explicit_keep: false,
        inbox_filed: false,
        discarded: false,
        rejected: false,
        vacation: false,
        redirects: 0,
        action_count: 0,
        flags: String::new(),
        globals: HashMap::new(),
        included_once: HashSet::new(),
        include_stack: Vec::new(),
        duplicate_marks: Vec::new(),
        info: None,
        body_cache: Vec::new(),
    };
    let mut error = None;
    for script in scripts {
        // The previous script's keep only let this one run (see above): withdrawn, unless it
        // also holds a `fileinto "INBOX"`.
        if !r.inbox_filed {
            let before = r.actions.len();
            r.actions.retain(|a| !matches!(a, Action::Keep { .. }));
            r.action_count -= before - r.actions.len();
        }
        r.implicit_keep = true;
        r.explicit_keep = false;
        let mut frame = Frame::default();
        match r.block(&script.program.commands, &mut frame) {
            Ok(_) => {}
            Err(e) => {
                error = Some(e);
                break;
            }
        }
        if !r.implicit_keep && !r.explicit_keep {
            break;
        }
    }
    if let Some(e) = error {
        return Outcome {
            actions: vec![Action::Keep {
                flags: ext::imap4flags::split(std::slice::from_ref(&r.flags)),
            }],
            edited_message: None,
            duplicate_marks: Vec::new(),
            error: Some(e),
        };
    }
    let mut actions = std::mem::take(&mut r.actions);
    if r.implicit_keep && !actions.iter().any(|a| matches!(a, Action::Keep { .. })) {
        actions.push(Action::Keep {
            flags: ext::imap4flags::split(std::slice::from_ref(&r.flags)),
        });
    }
    // A run whose actions neither store, send nor refuse the message discarded it.
    let delivers = actions.iter().any(|a| {
        matches!(
            a,
            Action::Keep { .. }
                | Action::FileInto { .. }
                | Action::Redirect { .. }
                | Action::Reject { .. }
        )
    });
    if !delivers {
        actions.push(Action::Discard);
    }
    Outcome {
        actions,
        edited_message: r.msg.edited.then(|| r.msg.render()),
        duplicate_marks: r.duplicate_marks,
        error: None,
    }
}

impl Run<'_, '_> {
    fn step(&mut self) -> Result<(), Fail> {
        if self.steps == 0 {
            return Err("the script ran too long (step limit reached)".to_string());
        }
        self.steps -= 1;
        Ok(())
    }

    fn count_action(&mut self) -> Result<(), Fail> {
        self.action_count += 1;
        if self.action_count > self.opts.max_actions {
            return Err(format!(
                "too many actions (more than {})",
                self.opts.max_actions
            ));
        }
        Ok(())
    }

    // ---- variables ----

    fn get_var(&self, frame: &Frame, name: &str) -> String {
        if let Some(g) = name.strip_prefix("global.") {
            return self.globals.get(g).cloned().unwrap_or_default();
        }
        if frame.globals_declared.contains(name) {
            return self.globals.get(name).cloned().unwrap_or_default();
        }
        frame.locals.get(name).cloned().unwrap_or_default()
    }

    fn set_var(&mut self, frame: &mut Frame, name: &str, mut value: String) -> Result<(), Fail> {
        if value.len() > SIEVE_MAX_VARIABLE_LEN {
            let mut cut = SIEVE_MAX_VARIABLE_LEN;
            while !value.is_char_boundary(cut) {
                cut -= 1;
            }
            value.truncate(cut);
        }
        let (map, key) = if let Some(g) = name.strip_prefix("global.") {
            (&mut self.globals, g.to_string())
        } else if frame.globals_declared.contains(name) {
            (&mut self.globals, name.to_string())
        } else {
            (&mut frame.locals, name.to_string())
        };
        if !map.contains_key(&key) && map.len() >= SIEVE_MAX_VARIABLES {
            return Err(format!(
                "too many variables (more than {SIEVE_MAX_VARIABLES})"
            ));
        }
        map.insert(key, value);
        Ok(())
    }

    fn expand(&mut self, frame: &Frame, s: &Str) -> Result<String, Fail> {
        if let [StrPart::Lit(l)] = s.parts.as_slice() {
            return Ok(l.clone());
        }
        self.step()?;
        let mut out = String::new();
        for p in &s.parts {
            match p {
                StrPart::Lit(l) => out.push_str(l),
                StrPart::Var(v) => out.push_str(&self.get_var(frame, v)),
                StrPart::Match(i) => {
                    out.push_str(frame.match_vars.get(*i).map_or("", String::as_str));
                }
            }
            if out.len() > SIEVE_MAX_VARIABLE_LEN * 4 {
                return Err("a string grew too long while expanding variables".to_string());
            }
        }
        Ok(out)
    }

    fn expand_list(&mut self, frame: &Frame, l: &[Str]) -> Result<Vec<String>, Fail> {
        l.iter().map(|s| self.expand(frame, s)).collect()
    }

    // ---- commands ----

    fn block(&mut self, cmds: &[Cmd], frame: &mut Frame) -> Result<Flow, Fail> {
        for c in cmds {
            match self.command(c, frame)? {
                Flow::Next => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Next)
    }

    fn command(&mut self, c: &Cmd, frame: &mut Frame) -> Result<Flow, Fail> {
        self.step()?;
        match c {
            Cmd::If {
                branches,
                otherwise,
            } => {
                for (test, block) in branches {
                    if self.test(test, frame)? {
                        return self.block(block, frame);
                    }
                }
                if let Some(b) = otherwise {
                    return self.block(b, frame);
                }
            }
            Cmd::Stop => return Ok(Flow::Stop),
            Cmd::Return => return Ok(Flow::Return),
            Cmd::Keep { flags } => {
                let flags = self.flags_for(frame, flags.as_ref())?;
                self.check_reject_conflict("keep")?;
                self.implicit_keep = false;
                self.explicit_keep = true;
                self.add_keep(flags)?;
            }
            Cmd::Discard => {
                self.implicit_keep = false;
                self.discarded = true;
            }
            Cmd::Redirect { address, copy } => {
                let addr = self.expand(frame, address)?;
                if !ext::redirect_address_ok(&addr) {
                    return Err(format!("invalid redirect address \"{addr}\""));
                }
                self.check_reject_conflict("redirect")?;
                if !copy {
                    self.implicit_keep = false;
                }
                let dup = self.actions.iter().any(|a| {
                    matches!(a, Action::Redirect { address } if address.eq_ignore_ascii_case(&addr))
                });
                if !dup {
                    self.redirects += 1;
                    if self.redirects > self.opts.max_redirects {
                        return Err(format!(
                            "too many redirects (more than {})",
                            self.opts.max_redirects
                        ));
                    }
                    self.count_action()?;
                    self.actions.push(Action::Redirect { address: addr });
                }
            }
            Cmd::FileInto {
                mailbox,
                flags,
                copy,
                create,
                special_use,
            } => {
                let mbox = self.expand(frame, mailbox)?;
                if !ext::mailbox::name_ok(&mbox) {
                    return Err(format!("invalid mailbox name \"{mbox}\""));
                }
                let flags = self.flags_for(frame, flags.as_ref())?;
                let special_use = match special_use {
                    Some(s) => Some(self.expand(frame, s)?),
                    None => None,
                };
                self.check_reject_conflict("fileinto")?;
                if !copy {
                    self.implicit_keep = false;
                }
                if mbox.eq_ignore_ascii_case("INBOX") && special_use.is_none() {
                    // fileinto "INBOX" and keep store the same message once (RFC 5228
                    // section 2.10.3), as Pigeonhole merges them.
                    self.inbox_filed = true;
                    self.add_keep(flags)?;
                } else if let Some(Action::FileInto {
                    flags: have,
                    create: c,
                    ..
                }) = self
                    .actions
                    .iter_mut()
                    .find(|a| matches!(a, Action::FileInto { mailbox, .. } if *mailbox == mbox))
                {
                    merge_flags(have, flags);
                    *c |= *create;
                } else {
                    self.count_action()?;
                    self.actions.push(Action::FileInto {
                        mailbox: mbox,
                        flags,
                        create: *create,
                        special_use,
                    });
                }
            }
            Cmd::Reject { reason, extended } => {
                let reason = self.expand(frame, reason)?;
                let delivering = self.actions.iter().any(|a| {
                    matches!(
                        a,
                        Action::Keep { .. } | Action::FileInto { .. } | Action::Redirect { .. }
                    )
                });
                if let Some(why) = ext::reject::conflict(self.rejected, self.vacation, delivering) {
                    return Err(why.to_string());
                }
                self.rejected = true;
                self.implicit_keep = false;
                self.count_action()?;
                self.actions.push(Action::Reject {
                    reason,
                    extended: *extended,
                });
            }
            Cmd::Flag { op, var, flags } => {
                let list = self.expand_list(frame, flags)?;
                let current = match var {
                    Some(v) => {
                        let name = self.expand(frame, v)?.to_ascii_lowercase();
                        Some(name)
                    }
                    None => None,
                };
                let old = match &current {
                    Some(n) => self.get_var(frame, n),
                    None => self.flags.clone(),
                };
                let new = match op {
                    FlagOp::Set => ext::imap4flags::split(&list).join(" "),
                    FlagOp::Add => ext::imap4flags::add(&old, &list),
                    FlagOp::Remove => ext::imap4flags::remove(&old, &list),
                };
                match current {
                    Some(n) => self.set_var(frame, &n, new)?,
                    None => self.flags = new,
                }
            }
            Cmd::Set {
                name,
                value,
                modifiers,
            } => {
                let v = self.expand(frame, value)?;
                let v = ext::variables::apply_modifiers(v, modifiers);
                self.set_var(frame, name, v)?;
            }
            Cmd::Vacation(v) => self.vacation(v, frame)?,
            Cmd::Include {
                global,
                once,
                optional,
                name,
            } => {
                let name = self.expand(frame, name)?;
                if !ext::include::name_ok(&name) {
                    return Err(format!("invalid script name \"{name}\" in include"));
                }
                return self.include(*global, *once, *optional, name);
            }
            Cmd::Global(names) => {
                for n in names {
                    frame.globals_declared.insert(n.clone());
                }
            }
            Cmd::AddHeader { last, name, value } => {
                let name = self.expand(frame, name)?;
                let value = self.expand(frame, value)?;
                if ext::editheader::field_name_ok(&name) && ext::editheader::editable(&name) {
                    let field = (name, ext::editheader::encode_value(&value));
                    if *last {
                        self.msg.fields.push(field);
                    } else {
                        self.msg.fields.insert(0, field);
                    }
                    self.msg.edited = true;
                }
            }
            Cmd::DeleteHeader {
                m,
                index,
                name,
                values,
            } => {
                let name = self.expand(frame, name)?;
                if !ext::editheader::editable(&name) {
                    // RFC 5293 section 4: silently ignored.
                    return Ok(Flow::Next);
                }
                let positions: Vec<usize> = self
                    .msg
                    .fields
                    .iter()
                    .enumerate()
                    .filter(|(_, (n, _))| n.eq_ignore_ascii_case(&name))
                    .map(|(i, _)| i)
                    .collect();
                let chosen: Vec<usize> = match index {
                    Some(ix) => pick(&positions, *ix).into_iter().collect(),
                    None => positions,
                };
                let mut remove = Vec::new();
                for i in chosen {
                    let ok = match values {
                        None => true,
                        Some(keys) => {
                            let v = self
                                .msg
                                .fields
                                .get(i)
                                .map(|(_, raw)| decode_header_value(raw))
                                .unwrap_or_default();
                            self.matches(m, &[v], keys, frame)?
                        }
                    };
                    if ok {
                        remove.push(i);
                    }
                }
                for i in remove.into_iter().rev() {
                    self.msg.fields.remove(i);
                    self.msg.edited = true;
                }
            }
            Cmd::Error(msg) => {
                let m = self.expand(frame, msg)?;
                return Err(format!("script error: {m}"));
            }
        }
        Ok(Flow::Next)
    }

    fn check_reject_conflict(&self, what: &str) -> Result<(), Fail> {
        if self.rejected {
            return Err(format!("{what} cannot be combined with reject"));
        }
        Ok(())
    }

    fn flags_for(&mut self, frame: &Frame, given: Option<&StrList>) -> Result<Vec<String>, Fail> {
        Ok(match given {
            Some(l) => ext::imap4flags::split(&self.expand_list(frame, l)?),
            None => ext::imap4flags::split(std::slice::from_ref(&self.flags)),
        })
    }

    fn add_keep(&mut self, flags: Vec<String>) -> Result<(), Fail> {
        if let Some(Action::Keep { flags: have }) = self
            .actions
            .iter_mut()
            .find(|a| matches!(a, Action::Keep { .. }))
        {
            merge_flags(have, flags);
            return Ok(());
        }
        self.count_action()?;
        self.actions.push(Action::Keep { flags });
        Ok(())
    }

    fn vacation(&mut self, v: &Vacation, frame: &Frame) -> Result<(), Fail> {
        if self.vacation {
            return Err("vacation may be used only once".to_string());
        }
        if self.rejected {
            return Err("vacation cannot be combined with reject (RFC 5429)".to_string());
        }
        let reason = self.expand(frame, &v.reason)?;
        let subject = match &v.subject {
            Some(s) => Some(self.expand(frame, s)?),
            None => None,
        };
        let from = match &v.from {
            Some(s) => Some(self.expand(frame, s)?),
            None => None,
        };
        let addresses = self.expand_list(frame, &v.addresses)?;
        let handle = match &v.handle {
            Some(h) => self.expand(frame, h)?,
            None => {
                ext::vacation::default_handle(&reason, subject.as_deref(), from.as_deref(), v.mime)
            }
        };
        self.vacation = true;
        self.count_action()?;
        self.actions.push(Action::Vacation {
            reason,
            subject,
            from,
            addresses,
            mime: v.mime,
            handle,
            period: ext::vacation::period(v.days, v.seconds),
        });
        Ok(())
    }

    fn include(
        &mut self,
        global: bool,
        once: bool,
        optional: bool,
        name: String,
    ) -> Result<Flow, Fail> {
        let key = (global, name.clone());
        if once && self.included_once.contains(&key) {
            return Ok(Flow::Next);
        }
        if self.include_stack.contains(&key) {
            return Err(format!("include of \"{name}\" is recursive"));
        }
        if self.include_stack.len() >= self.opts.max_include_depth {
            return Err(format!(
                "includes nested too deeply (more than {})",
                self.opts.max_include_depth
            ));
        }
        let loc = if global {
            IncludeLocation::Global
        } else {
            IncludeLocation::Personal
        };
        let script = match self.env.include(loc, &name) {
            None if optional => return Ok(Flow::Next),
            None => return Err(format!("included script \"{name}\" does not exist")),
            Some(Err(e)) => {
                return Err(format!("included script \"{name}\" does not compile: {e}"));
            }
            Some(Ok(s)) => s,
        };
        self.included_once.insert(key.clone());
        self.include_stack.push(key);
        let mut frame = Frame::default();
        let flow = self.block(&script.program.commands, &mut frame);
        self.include_stack.pop();
        Ok(match flow? {
            Flow::Stop => Flow::Stop,
            _ => Flow::Next,
        })
    }

    // ---- tests ----

    fn test(&mut self, t: &Test, frame: &mut Frame) -> Result<bool, Fail> {
        self.step()?;
        Ok(match t {
            Test::True => true,
            Test::False => false,
            Test::Not(t) => !self.test(t, frame)?,
            Test::AllOf(ts) => {
                for t in ts {
                    if !self.test(t, frame)? {
                        return Ok(false);
                    }
                }
                true
            }
            Test::AnyOf(ts) => {
                for t in ts {
                    if self.test(t, frame)? {
                        return Ok(true);
                    }
                }
                false
            }
            Test::Address {
                m,
                part,
                index,
                headers,
                keys,
            } => {
                let names = self.expand_list(frame, headers)?;
                let mut values = Vec::new();
                for n in &names {
                    let raws: Vec<Vec<u8>> = self
                        .msg
                        .raw_values(n)
                        .into_iter()
                        .map(<[u8]>::to_vec)
                        .collect();
                    let raws = select(raws, *index);
                    for raw in raws {
                        for a in address::header_addresses(&raw) {
                            if let Some(v) = address::part(&a, *part) {
                                values.push(v);
                            }
                        }
                    }
                }
                self.matches(m, &values, keys, frame)?
            }
            Test::Envelope {
                m,
                part,
                parts,
                keys,
            } => {
                let names = self.expand_list(frame, parts)?;
                let mut values = Vec::new();
                for n in &names {
                    match n.to_ascii_lowercase().as_str() {
                        // RFC 5228 section 5.4: the null reverse-path is the empty string,
                        // whatever the address part.
                        "from" if self.envelope.from.is_empty() => values.push(String::new()),
                        "from" => push_part(
                            &mut values,
                            &address::envelope_address(self.envelope.from),
                            *part,
                        ),
                        "to" => push_part(
                            &mut values,
                            &address::envelope_address(self.envelope.to),
                            *part,
                        ),
                        "auth" => {
                            if let Some(a) = self.envelope.auth {
                                push_part(&mut values, &address::envelope_address(a), *part);
                            }
                        }
                        _ => {}
                    }
                }
                self.matches(m, &values, keys, frame)?
            }
            Test::Header {
                m,
                index,
                headers,
                keys,
            } => {
                let names = self.expand_list(frame, headers)?;
                let mut values = Vec::new();
                for n in &names {
                    let vals: Vec<String> = self
                        .msg
                        .raw_values(n)
                        .into_iter()
                        .map(decode_header_value)
                        .collect();
                    values.extend(select(vals, *index));
                }
                self.matches(m, &values, keys, frame)?
            }
            Test::Exists(names) => {
                let names = self.expand_list(frame, names)?;
                names.iter().all(|n| !self.msg.raw_values(n).is_empty())
            }
            Test::Size { over, limit } => {
                let size = self.msg.raw.len() as u64;
                if *over { size > *limit } else { size < *limit }
            }
            Test::Body { m, transform, keys } => {
                let types = match transform {
                    BodyTransform::Content(t) => self.expand_list(frame, t)?,
                    _ => Vec::new(),
                };
                let raw = self.msg.raw;
                let cache_key = match transform {
                    BodyTransform::Raw => Some(true),
                    BodyTransform::Text => Some(false),
                    BodyTransform::Content(_) => None,
                };
                let cached = cache_key.and_then(|k| {
                    self.body_cache
                        .iter()
                        .find(|(c, _)| *c == k)
                        .map(|(_, t)| t.clone())
                });
                let texts = match cached {
                    Some(t) => t,
                    None => {
                        self.charge(raw.len())?;
                        let info = self
                            .info
                            .get_or_insert_with(|| crate::mime::MessageInfo::parse_structure(raw));
                        let t = ext::body::texts(raw, info, transform, &types);
                        if let Some(k) = cache_key {
                            self.body_cache.push((k, t.clone()));
                        }
                        t
                    }
                };
                self.body_matches(m, &texts, keys, frame)?
            }
            Test::Date {
                m,
                zone,
                index,
                header,
                part,
                keys,
            } => {
                let h = self.expand(frame, header)?;
                let part = self.expand(frame, part)?;
                let vals: Vec<String> = self
                    .msg
                    .raw_values(&h)
                    .into_iter()
                    .map(decode_header_value)
                    .collect();
                let mut values = Vec::new();
                let received = h.eq_ignore_ascii_case("received");
                for v in select(vals, *index) {
                    // RFC 5260 section 4: a Received field's date follows its last ";".
                    let v = match v.rsplit_once(';') {
                        Some((_, d)) if received => d.to_string(),
                        _ => v,
                    };
                    if let Some((ts, own)) = ext::date::parse_header_date(&v) {
                        let z = match zone {
                            Zone::Local => 0,
                            Zone::Fixed(z) => *z,
                            Zone::Original => own,
                        };
                        if let Some(p) = ext::date::date_part(ts, z, &part) {
                            values.push(p);
                        }
                    }
                }
                self.matches(m, &values, keys, frame)?
            }
            Test::CurrentDate {
                m,
                zone,
                part,
                keys,
            } => {
                let part = self.expand(frame, part)?;
                let now = self.env.now();
                let ts = match now.duration_since(UNIX_EPOCH) {
                    Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                    Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
                };
                let z = match zone {
                    Zone::Fixed(z) => *z,
                    _ => 0,
                };
                let values: Vec<String> = ext::date::date_part(ts, z, &part).into_iter().collect();
                self.matches(m, &values, keys, frame)?
            }
            Test::String { m, sources, keys } => {
                let mut values = self.expand_list(frame, sources)?;
                if matches!(m.kind, MatchKind::Count(_)) {
                    // RFC 5229 section 5: :count counts the non-empty strings.
                    values.retain(|v| !v.is_empty());
                }
                self.matches(m, &values, keys, frame)?
            }
            Test::HasFlag { m, vars, flags } => {
                let sets: Vec<String> = match vars {
                    Some(vs) => {
                        let names = self.expand_list(frame, vs)?;
                        names
                            .iter()
                            .map(|n| self.get_var(frame, &n.to_ascii_lowercase()))
                            .collect()
                    }
                    None => vec![self.flags.clone()],
                };
                let values = ext::imap4flags::split(&sets);
                self.matches(m, &values, flags, frame)?
            }
            Test::MailboxExists(names) => {
                let names = self.expand_list(frame, names)?;
                let mut all = true;
                for n in &names {
                    if !self.env.mailbox_exists(n) {
                        all = false;
                        break;
                    }
                }
                all
            }
            Test::Environment { m, name, keys } => {
                let item = self.expand(frame, name)?.to_ascii_lowercase();
                let value = self
                    .env
                    .environment(&item)
                    .or_else(|| ext::environment::builtin(&item));
                match value {
                    Some(v) => self.matches(m, &[v], keys, frame)?,
                    None => false,
                }
            }
            Test::SpamTest { m, percent, value } => {
                let header = self.opts.spam_header.as_deref().and_then(|h| {
                    self.msg
                        .raw_values(h)
                        .first()
                        .map(|v| decode_header_value(v))
                });
                let v = ext::spamtest::spam_value(header.as_deref(), self.opts.spam_max, *percent);
                self.matches(m, &[v], std::slice::from_ref(value), frame)?
            }
            Test::VirusTest { m, value } => {
                let header = self.opts.virus_header.as_deref().and_then(|h| {
                    self.msg
                        .raw_values(h)
                        .first()
                        .map(|v| decode_header_value(v))
                });
                let v = ext::spamtest::virus_value(header.as_deref());
                self.matches(m, &[v], std::slice::from_ref(value), frame)?
            }
            Test::Duplicate {
                handle,
                source,
                seconds,
                last,
            } => {
                let handle = match handle {
                    Some(h) => self.expand(frame, h)?,
                    None => String::new(),
                };
                let value = match source {
                    DupSource::MessageId => self
                        .msg
                        .raw_values("message-id")
                        .first()
                        .map(|v| decode_header_value(v)),
                    DupSource::Header(h) => {
                        let h = self.expand(frame, h)?;
                        self.msg
                            .raw_values(&h)
                            .first()
                            .map(|v| decode_header_value(v))
                    }
                    DupSource::UniqueId(u) => Some(self.expand(frame, u)?),
                };
                match value {
                    // RFC 7352 section 3.1: no value, no duplicate (and nothing to track).
                    None => false,
                    Some(v) => {
                        let key = ext::duplicate::key(&handle, &v);
                        let period = Duration::from_secs(
                            seconds
                                .unwrap_or(SIEVE_DUPLICATE_DEFAULT_SECS)
                                .min(SIEVE_DUPLICATE_MAX_SECS),
                        );
                        let seen = self.env.duplicate_seen(&key, period)
                            || self.duplicate_marks.iter().any(|(k, _)| *k == key);
                        if !seen || *last {
                            self.duplicate_marks.retain(|(k, _)| *k != key);
                            self.duplicate_marks.push((key, period));
                        }
                        seen
                    }
                }
            }
            Test::Metadata {
                m,
                mailbox,
                entry,
                keys,
            } => {
                let mailbox = match mailbox {
                    Some(mb) => Some(self.expand(frame, mb)?),
                    None => None,
                };
                let entry = self.expand(frame, entry)?;
                match self.env.metadata(mailbox.as_deref(), &entry) {
                    // RFC 5490 section 3.3: a missing annotation does not match.
                    None => false,
                    Some(v) => self.matches(m, &[v], keys, frame)?,
                }
            }
            Test::MetadataExists { mailbox, entries } => {
                let mailbox = match mailbox {
                    Some(mb) => Some(self.expand(frame, mb)?),
                    None => None,
                };
                let entries = self.expand_list(frame, entries)?;
                let mut all = true;
                for e in &entries {
                    if self.env.metadata(mailbox.as_deref(), e).is_none() {
                        all = false;
                        break;
                    }
                }
                all
            }
            Test::SpecialUseExists { mailbox, uses } => {
                let mailbox = match mailbox {
                    Some(mb) => Some(self.expand(frame, mb)?),
                    None => None,
                };
                let uses = self.expand_list(frame, uses)?;
                let env = &mut *self.env;
                ext::special_use::exists(mailbox.as_deref(), &uses, |u| env.special_use_mailbox(u))
            }
        })
    }

    /// Body tests: `:count` and `:value` do not apply (RFC 5173 section 5 allows only
    /// `:is`, `:contains`, `:matches`), so every text is compared as is.
    fn body_matches(
        &mut self,
        m: &MatchSpec,
        texts: &[String],
        keys: &[Str],
        frame: &mut Frame,
    ) -> Result<bool, Fail> {
        self.matches(m, texts, keys, frame)
    }

    /// The core of every test with a match type: whether any value matches any key.
    fn matches(
        &mut self,
        m: &MatchSpec,
        values: &[String],
        keys: &[Str],
        frame: &mut Frame,
    ) -> Result<bool, Fail> {
        let keys_text = self.expand_list(frame, keys)?;
        if let MatchKind::Count(rel) = &m.kind {
            let count = values.len().to_string();
            for k in &keys_text {
                self.step()?;
                if rel.holds(m.comparator.compare(&count, k)) {
                    return Ok(true);
                }
            }
            return Ok(false);
        }
        for v in values {
            for (ki, k) in keys_text.iter().enumerate() {
                self.step()?;
                let hit = match &m.kind {
                    MatchKind::Is => m.comparator.equals(v, k),
                    MatchKind::Contains => {
                        self.charge(v.len())?;
                        m.comparator.contains(v, k)
                    }
                    MatchKind::Value(rel) => rel.holds(m.comparator.compare(v, k)),
                    MatchKind::Count(_) => false,
                    MatchKind::Matches => {
                        let r = match_types::wildcard(v, k, m.comparator, &mut self.steps);
                        match r {
                            Err(Exhausted) => {
                                return Err(
                                    "the script ran too long (step limit reached)".to_string()
                                );
                            }
                            Ok(Some(caps)) => {
                                frame.match_vars = caps;
                                true
                            }
                            Ok(None) => false,
                        }
                    }
                    MatchKind::Regex => {
                        self.charge(v.len())?;
                        let built;
                        let re = match m.regexes.get(ki).and_then(Option::as_ref) {
                            Some(re) => re,
                            None => {
                                // Building a regex is costly: a key from a variable pays
                                // for it each time it is used.
                                self.charge(REGEX_BUILD_COST)?;
                                built = match_types::build_regex(k, m.comparator)
                                    .map_err(|e| format!("{e}: \"{k}\""))?;
                                &built
                            }
                        };
                        match match_types::regex_match(v, re) {
                            Some(caps) => {
                                frame.match_vars = caps;
                                true
                            }
                            None => false,
                        }
                    }
                };
                if hit {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Charges steps for work proportional to `len` bytes (substring search, regex scan).
    fn charge(&mut self, len: usize) -> Result<(), Fail> {
        let cost = (len / 64) as u64;
        if self.steps < cost {
            self.steps = 0;
            return Err("the script ran too long (step limit reached)".to_string());
        }
        self.steps -= cost;
        Ok(())
    }
}

fn push_part(values: &mut Vec<String>, a: &Addr, part: AddressPart) {
    if let Some(v) = address::part(a, part) {
        values.push(v);
    }
}

fn merge_flags(have: &mut Vec<String>, add: Vec<String>) {
    for f in add {
        if !have.iter().any(|h| h.eq_ignore_ascii_case(&f)) {
            have.push(f);
        }
    }
}

/// RFC 5260 section 6: `:index N` picks the Nth field (`:last`: counted from the end).
fn select<T>(mut v: Vec<T>, index: Option<Index>) -> Vec<T> {
    let Some(ix) = index else {
        return v;
    };
    let n = usize::try_from(ix.n).unwrap_or(usize::MAX);
    if n == 0 || n > v.len() {
        return Vec::new();
    }
    let i = if ix.last { v.len() - n } else { n - 1 };
    vec![v.swap_remove(i)]
}

fn pick(positions: &[usize], ix: Index) -> Option<usize> {
    select(positions.to_vec(), Some(ix)).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::super::{compile, execute};
    use super::*;
    use std::time::SystemTime;

    struct Env;

    impl Environment for Env {
        fn include(
            &mut self,
            _location: IncludeLocation,
            _name: &str,
        ) -> Option<Result<Arc<Script>, super::super::CompileError>> {
            None
        }
        fn mailbox_exists(&mut self, _mailbox: &str) -> bool {
            true
        }
        fn special_use_mailbox(&mut self, _attribute: &str) -> Option<String> {
            None
        }
        fn metadata(&mut self, _mailbox: Option<&str>, _entry: &str) -> Option<String> {
            None
        }
        fn environment(&mut self, _item: &str) -> Option<String> {
            None
        }
        fn duplicate_seen(&mut self, _key: &[u8; 32], _period: Duration) -> bool {
            false
        }
        fn now(&mut self) -> SystemTime {
            UNIX_EPOCH
        }
    }

    const MSG: &[u8] = b"From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n";

    fn run_all(scripts: &[&str]) -> Outcome {
        let compiled: Vec<Arc<Script>> = scripts
            .iter()
            .map(|s| Arc::new(compile(s).expect("compiles")))
            .collect();
        let envelope = Envelope {
            from: "a@example.com",
            to: "b@example.com",
            orig_to: None,
            auth: None,
        };
        execute(&compiled, MSG, &envelope, &mut Env, &RunOptions::default())
    }

    fn fileinto(mailbox: &str, flags: &[&str]) -> Action {
        Action::FileInto {
            mailbox: mailbox.to_string(),
            flags: flags.iter().map(|f| f.to_string()).collect(),
            create: false,
            special_use: None,
        }
    }

    #[test]
    fn sequence_shares_flags_and_edits_and_ends_when_keep_is_cancelled() {
        let before = "require [\"imap4flags\", \"editheader\"]; addflag \"\\\\Seen\"; addheader \"X-Before\" \"1\";";
        let user = "require \"fileinto\"; if exists \"x-before\" { fileinto \"X\"; }";
        let after = "require \"fileinto\"; fileinto \"after\";";
        let o = run_all(&[before, user, after]);
        assert_eq!(o.error, None);
        assert_eq!(o.actions, vec![fileinto("X", &["\\Seen"])]);
        let edited = o.edited_message.expect("edited");
        assert!(edited.starts_with(b"X-Before: 1\r\nFrom:"), "{edited:?}");
        // stop ends only its script; the implicit keep is still on, so the next one runs.
        let o = run_all(&["stop;", after]);
        assert_eq!(o.actions, vec![fileinto("after", &[])]);
        // A discard in the first script ends the sequence.
        let o = run_all(&["discard;", after]);
        assert_eq!(o.actions, vec![Action::Discard]);
    }

    /// Pigeonhole's sequence rule (docs/sieve.md "Script sequences"): an explicit keep keeps
    /// the sequence going, and only the last script's keep stores into INBOX.
    #[test]
    fn an_explicit_keep_continues_the_sequence_and_only_the_last_keep_stores() {
        let after = "require \"fileinto\"; fileinto \"after\";";
        // keep, then a script that files: the keep was only a "go on", INBOX gets nothing.
        let o = run_all(&["keep; stop;", after]);
        assert_eq!(o.actions, vec![fileinto("after", &[])]);
        // keep cancels the implicit keep of its own script only; a discard after keep does
        // not end the sequence either (the explicit keep stays in effect).
        let o = run_all(&["keep; discard;", after]);
        assert_eq!(o.actions, vec![fileinto("after", &[])]);
        // keep in every script: one store into INBOX, with the last script's flags.
        let o = run_all(&["keep;", "require \"imap4flags\"; keep :flags \"\\\\Seen\";"]);
        assert_eq!(
            o.actions,
            vec![Action::Keep {
                flags: vec!["\\Seen".to_string()]
            }]
        );
        // A later script that does nothing keeps by its own implicit keep.
        let o = run_all(&["keep;", "if false { discard; }"]);
        assert_eq!(o.actions, vec![Action::Keep { flags: vec![] }]);
        // fileinto "INBOX" stores at once (the way to store early in a sequence).
        let o = run_all(&["require \"fileinto\"; fileinto \"INBOX\";", after]);
        assert_eq!(o.actions, vec![Action::Keep { flags: vec![] }]);
        let o = run_all(&[
            "require [\"fileinto\", \"copy\"]; fileinto :copy \"INBOX\";",
            after,
        ]);
        assert_eq!(
            o.actions,
            vec![Action::Keep { flags: vec![] }, fileinto("after", &[])]
        );
        // discard; stop; ends everything.
        let o = run_all(&["discard; stop;", after]);
        assert_eq!(o.actions, vec![Action::Discard]);
    }

    #[test]
    fn an_error_keeps_with_the_flags_so_far_and_drops_other_actions() {
        let o = run_all(&[
            "require [\"imap4flags\", \"fileinto\", \"editheader\"]; addflag \"$A\"; fileinto \"X\"; addheader \"X-Y\" \"z\";",
            "require \"ihave\"; error \"boom\";",
        ]);
        // The first script filed the message: the second does not run.
        assert_eq!(o.error, None);
        let o = run_all(&[
            "require [\"imap4flags\", \"editheader\"]; addflag \"$A\"; addheader \"X-Y\" \"z\";",
            "require \"ihave\"; error \"boom\";",
        ]);
        assert_eq!(o.error.as_deref(), Some("script error: boom"));
        assert_eq!(
            o.actions,
            vec![Action::Keep {
                flags: vec!["$A".to_string()]
            }]
        );
        assert_eq!(o.edited_message, None);
        assert!(o.duplicate_marks.is_empty());
    }
}
