//! From the untyped tree of [`super::parse`] to the typed AST of [`super::ast`]: `require` is
//! checked (supported, before any other command), every command and test is checked against
//! its signature (tags, their arguments, positional argument kinds and counts), each use of an
//! extension is checked against `require`, and strings are prepared: `${hex:..}` /
//! `${unicode:..}` decoded when `encoded-character` is required (RFC 5228 section 2.4.2.4),
//! and split into variable templates when `variables` is required (RFC 5229 section 3).

use std::collections::BTreeSet;

use super::CompileError;
use super::ast::*;
use super::comparators::Comparator;
use super::ext;
use super::match_types::build_regex;
use super::parse::Pos;
use super::parse::{Arg, RawCommand, RawTest};
use crate::limits::SIEVE_MAX_VARIABLE_NAME;

/// A compiled script: its commands and the extensions it required.
#[derive(Debug, Clone, Default)]
pub struct Program {
    /// The commands.
    pub commands: Vec<Cmd>,
    /// Extensions named by `require`.
    pub required: BTreeSet<String>,
}

/// Compiles the parsed commands.
pub fn compile(raw: &[RawCommand]) -> Result<Program, CompileError> {
    let mut c = Compiler {
        required: BTreeSet::new(),
    };
    let mut i = 0;
    while let Some(cmd) = raw.get(i).filter(|c| c.name == "require") {
        c.require(cmd)?;
        i += 1;
    }
    let commands = c.block(raw.get(i..).unwrap_or(&[]))?;
    Ok(Program {
        commands,
        required: c.required,
    })
}

/// What a tag's argument or a positional argument must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum W {
    /// One string.
    Str,
    /// A string list (one string is a list of one).
    List,
    /// A number.
    Num,
}

/// A tag a command or test accepts: its name, its argument, the extension that brings it.
#[derive(Debug, Clone, Copy)]
struct TagSpec {
    name: &'static str,
    arg: Option<W>,
    ext: Option<&'static str>,
}

const fn tag(name: &'static str, arg: Option<W>, ext: Option<&'static str>) -> TagSpec {
    TagSpec { name, arg, ext }
}

const COMPARATOR: &[TagSpec] = &[tag("comparator", Some(W::Str), None)];
const MATCH: &[TagSpec] = &[
    tag("is", None, None),
    tag("contains", None, None),
    tag("matches", None, None),
    tag("regex", None, Some("regex")),
    tag("value", Some(W::Str), Some("relational")),
    tag("count", Some(W::Str), Some("relational")),
];
const MATCH_NAMES: &[&str] = &["is", "contains", "matches", "regex", "value", "count"];
const ADDRESS_PART: &[TagSpec] = &[
    tag("all", None, None),
    tag("localpart", None, None),
    tag("domain", None, None),
    tag("user", None, Some("subaddress")),
    tag("detail", None, Some("subaddress")),
];
const ADDRESS_PART_NAMES: &[&str] = &["all", "localpart", "domain", "user", "detail"];
const INDEX: &[TagSpec] = &[
    tag("index", Some(W::Num), Some("index")),
    tag("last", None, Some("index")),
];

/// The arguments of one command or test, split into tags and positionals.
struct Args {
    what: String,
    at: Pos,
    tags: Vec<(String, Option<Arg>, Pos)>,
    pos: Vec<(Arg, Pos)>,
}

impl Args {
    fn has(&self, name: &str) -> bool {
        self.tags.iter().any(|t| t.0 == name)
    }

    fn tag_arg(&self, name: &str) -> Option<&Arg> {
        self.tags
            .iter()
            .find(|t| t.0 == name)
            .and_then(|t| t.1.as_ref())
    }

    fn tag_pos(&self, name: &str) -> Pos {
        self.tags
            .iter()
            .find(|t| t.0 == name)
            .map_or(self.at, |t| t.2)
    }

    /// At most one of `names` may be given.
    fn exclusive(&self, names: &[&str]) -> Result<Option<&str>, CompileError> {
        let mut found: Option<&str> = None;
        for (name, _, pos) in &self.tags {
            if names.contains(&name.as_str()) {
                if let Some(prev) = found {
                    return Err(pos.error(format!(
                        "{}: ':{prev}' and ':{name}' cannot be used together",
                        self.what
                    )));
                }
                found = Some(name.as_str());
            }
        }
        Ok(found)
    }

    /// The positional arguments must be of these kinds (exactly).
    fn expect(&self, kinds: &[W]) -> Result<(), CompileError> {
        if self.pos.len() != kinds.len() {
            let at = self.pos.get(kinds.len()).map_or(self.at, |p| p.1);
            return Err(at.error(format!(
                "{} takes {} positional argument{}, {} given",
                self.what,
                kinds.len(),
                if kinds.len() == 1 { "" } else { "s" },
                self.pos.len()
            )));
        }
        for ((arg, pos), want) in self.pos.iter().zip(kinds) {
            check_kind(arg, *want, *pos, &self.what)?;
        }
        Ok(())
    }
}

fn check_kind(arg: &Arg, want: W, pos: Pos, what: &str) -> Result<(), CompileError> {
    let ok = matches!(
        (arg, want),
        (Arg::Strings { list: false, .. }, W::Str)
            | (Arg::Strings { .. }, W::List)
            | (Arg::Number(_), W::Num)
    );
    if ok {
        return Ok(());
    }
    let want = match want {
        W::Str => "a string",
        W::List => "a string list",
        W::Num => "a number",
    };
    let got = match arg {
        Arg::Strings { list: true, .. } => "a string list",
        Arg::Strings { .. } => "a string",
        Arg::Number(_) => "a number",
        Arg::Tag(_) => "a tag",
    };
    Err(pos.error(format!("{what}: expected {want}, found {got}")))
}

struct Compiler {
    required: BTreeSet<String>,
}

impl Compiler {
    fn has(&self, ext: &str) -> bool {
        self.required.contains(ext)
    }

    fn need(&self, ext: &str, what: &str, pos: Pos) -> Result<(), CompileError> {
        if self.has(ext) {
            Ok(())
        } else {
            Err(pos.error(format!(
                "{what} requires extension \"{ext}\" (require \"{ext}\";)"
            )))
        }
    }

    fn require(&mut self, cmd: &RawCommand) -> Result<(), CompileError> {
        let args = self.args("require", cmd.pos, &cmd.args, &[])?;
        args.expect(&[W::List])?;
        no_tests(cmd)?;
        if cmd.block.is_some() {
            return Err(cmd.pos.error("require takes no block"));
        }
        let (Some((Arg::Strings { values, .. }, pos)), _) = (args.pos.first(), ()) else {
            return Err(cmd.pos.error("require needs a string list"));
        };
        for v in values {
            let name = v.to_ascii_lowercase();
            if !ext::is_supported(&name) {
                return Err(pos.error(format!("unsupported extension \"{v}\"")));
            }
            for implied in ext::implies(&name) {
                self.required.insert((*implied).to_string());
            }
            self.required.insert(name);
        }
        Ok(())
    }

    /// Splits `raw` into tags (checked against `specs`) and positionals.
    fn args(
        &self,
        what: &str,
        at: Pos,
        raw: &[(Arg, Pos)],
        specs: &[&[TagSpec]],
    ) -> Result<Args, CompileError> {
        let mut out = Args {
            what: what.to_string(),
            at,
            tags: Vec::new(),
            pos: Vec::new(),
        };
        let mut it = raw.iter();
        while let Some((arg, pos)) = it.next() {
            let Arg::Tag(name) = arg else {
                out.pos.push((arg.clone(), *pos));
                continue;
            };
            if !out.pos.is_empty() {
                return Err(pos.error(format!("{what}: tag ':{name}' after a positional argument")));
            }
            let Some(spec) = specs.iter().flat_map(|s| s.iter()).find(|s| s.name == name) else {
                return Err(pos.error(format!("{what}: unknown tag ':{name}'")));
            };
            if let Some(ext) = spec.ext {
                self.need(ext, &format!("{what} :{name}"), *pos)?;
            }
            if out.has(name) {
                return Err(pos.error(format!("{what}: tag ':{name}' given twice")));
            }
            let value = match spec.arg {
                None => None,
                Some(want) => {
                    let Some((next, npos)) = it.next() else {
                        return Err(pos.error(format!("{what}: ':{name}' needs an argument")));
                    };
                    check_kind(next, want, *npos, &format!("{what} :{name}"))?;
                    Some(next.clone())
                }
            };
            out.tags.push((name.clone(), value, *pos));
        }
        Ok(out)
    }

    fn block(&mut self, raw: &[RawCommand]) -> Result<Vec<Cmd>, CompileError> {
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(cmd) = raw.get(i) {
            i += 1;
            match cmd.name.as_str() {
                "if" => {
                    let mut branches = Vec::new();
                    let mut otherwise = None;
                    branches.push(self.branch(cmd)?);
                    while let Some(next) = raw.get(i) {
                        match next.name.as_str() {
                            "elsif" => branches.push(self.branch(next)?),
                            "else" => {
                                let args = self.args("else", next.pos, &next.args, &[])?;
                                args.expect(&[])?;
                                no_tests(next)?;
                                otherwise = Some(self.need_block(next)?);
                                i += 1;
                                break;
                            }
                            _ => break,
                        }
                        i += 1;
                    }
                    out.push(Cmd::If {
                        branches,
                        otherwise,
                    });
                }
                "elsif" | "else" => {
                    return Err(cmd
                        .pos
                        .error(format!("{} without a preceding if", cmd.name)));
                }
                "require" => {
                    return Err(cmd
                        .pos
                        .error("require must come before every other command"));
                }
                _ => {
                    if cmd.block.is_some() {
                        return Err(cmd.pos.error(format!("{} takes no block", cmd.name)));
                    }
                    no_tests(cmd)?;
                    out.push(self.command(cmd)?);
                }
            }
        }
        Ok(out)
    }

    fn need_block(&mut self, cmd: &RawCommand) -> Result<Vec<Cmd>, CompileError> {
        match &cmd.block {
            Some(b) => self.block(b),
            None => Err(cmd.pos.error(format!("{} needs a block", cmd.name))),
        }
    }

    /// `if`/`elsif`: one test and a block. A test that is an `ihave` (RFC 5463) makes its
    /// extensions usable inside the block when all are supported; when one is not, the block
    /// is not compiled at all (it may use what this implementation does not know) and the
    /// test is false.
    fn branch(&mut self, cmd: &RawCommand) -> Result<(Test, Vec<Cmd>), CompileError> {
        let args = self.args(&cmd.name, cmd.pos, &cmd.args, &[])?;
        args.expect(&[])?;
        let [raw_test] = cmd.tests.as_slice() else {
            return Err(cmd
                .pos
                .error(format!("{} needs exactly one test", cmd.name)));
        };
        if raw_test.name == "ihave" {
            let exts = self.ihave_list(raw_test)?;
            if exts.iter().all(|e| ext::is_supported(e)) {
                let saved = self.required.clone();
                for e in &exts {
                    for implied in ext::implies(e) {
                        self.required.insert((*implied).to_string());
                    }
                    self.required.insert(e.clone());
                }
                let block = self.need_block(cmd);
                self.required = saved;
                return Ok((Test::True, block?));
            }
            if cmd.block.is_none() {
                return Err(cmd.pos.error(format!("{} needs a block", cmd.name)));
            }
            return Ok((Test::False, Vec::new()));
        }
        let test = self.test(raw_test)?;
        Ok((test, self.need_block(cmd)?))
    }

    fn ihave_list(&self, t: &RawTest) -> Result<Vec<String>, CompileError> {
        self.need("ihave", "ihave", t.pos)?;
        let args = self.args("ihave", t.pos, &t.args, &[])?;
        args.expect(&[W::List])?;
        no_subtests(t)?;
        Ok(strings(&args.pos[0].0)
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect())
    }

    // ---- strings ----

    /// Prepares one string: encoded characters, then variable references.
    fn string(&self, s: &str, pos: Pos) -> Result<Str, CompileError> {
        let decoded = if self.has("encoded-character") {
            ext::encoded_character::decode(s).map_err(|m| pos.error(m))?
        } else {
            s.to_string()
        };
        if self.has("variables") {
            Ok(ext::variables::template(&decoded, self.has("include")))
        } else {
            Ok(Str::lit(decoded))
        }
    }

    fn str_of(&self, arg: &Arg, pos: Pos) -> Result<Str, CompileError> {
        let values = strings(arg);
        self.string(values.first().map_or("", String::as_str), pos)
    }

    fn list_of(&self, arg: &Arg, pos: Pos) -> Result<StrList, CompileError> {
        strings(arg).iter().map(|s| self.string(s, pos)).collect()
    }

    fn pos_str(&self, args: &Args, i: usize) -> Result<Str, CompileError> {
        let (a, p) = &args.pos[i];
        self.str_of(a, *p)
    }

    fn pos_list(&self, args: &Args, i: usize) -> Result<StrList, CompileError> {
        let (a, p) = &args.pos[i];
        self.list_of(a, *p)
    }

    fn tag_str(&self, args: &Args, name: &str) -> Result<Option<Str>, CompileError> {
        args.tag_arg(name)
            .map(|a| self.str_of(a, args.tag_pos(name)))
            .transpose()
    }

    fn tag_list(&self, args: &Args, name: &str) -> Result<Option<StrList>, CompileError> {
        args.tag_arg(name)
            .map(|a| self.list_of(a, args.tag_pos(name)))
            .transpose()
    }

    // ---- shared argument groups ----

    fn match_spec(&self, args: &Args, keys: &StrList) -> Result<MatchSpec, CompileError> {
        let comparator = match args.tag_arg("comparator") {
            None => Comparator::AsciiCasemap,
            Some(a) => {
                let name = strings(a).first().cloned().unwrap_or_default();
                let pos = args.tag_pos("comparator");
                let c = Comparator::parse(&name)
                    .ok_or_else(|| pos.error(format!("unknown comparator \"{name}\"")))?;
                if let Some(ext) = c.extension() {
                    self.need(ext, &format!("comparator \"{name}\""), pos)?;
                }
                c
            }
        };
        let kind = match args.exclusive(MATCH_NAMES)? {
            None | Some("is") => MatchKind::Is,
            Some("contains") => MatchKind::Contains,
            Some("matches") => MatchKind::Matches,
            Some("regex") => MatchKind::Regex,
            Some(rel @ ("value" | "count")) => {
                let s = args
                    .tag_arg(rel)
                    .map(|a| strings(a).first().cloned().unwrap_or_default())
                    .unwrap_or_default();
                let r = Relation::parse(&s).ok_or_else(|| {
                    args.tag_pos(rel)
                        .error(format!("unknown relational operator \"{s}\""))
                })?;
                if rel == "value" {
                    MatchKind::Value(r)
                } else {
                    MatchKind::Count(r)
                }
            }
            Some(_) => MatchKind::Is,
        };
        if matches!(
            kind,
            MatchKind::Contains | MatchKind::Matches | MatchKind::Regex
        ) && !comparator.substring_ok()
        {
            return Err(args.at.error(format!(
                "{}: comparator \"i;ascii-numeric\" cannot do substring matching",
                args.what
            )));
        }
        let mut regexes = Vec::new();
        if kind == MatchKind::Regex {
            for k in keys {
                match k.constant() {
                    Some(pat) => regexes.push(Some(
                        build_regex(&pat, comparator).map_err(|m| args.at.error(m))?,
                    )),
                    None => regexes.push(None),
                }
            }
        }
        Ok(MatchSpec {
            comparator,
            kind,
            regexes,
        })
    }

    fn address_part(&self, args: &Args) -> Result<AddressPart, CompileError> {
        Ok(match args.exclusive(ADDRESS_PART_NAMES)? {
            Some("localpart") => AddressPart::Localpart,
            Some("domain") => AddressPart::Domain,
            Some("user") => AddressPart::User,
            Some("detail") => AddressPart::Detail,
            _ => AddressPart::All,
        })
    }

    fn index(&self, args: &Args) -> Result<Option<Index>, CompileError> {
        match args.tag_arg("index") {
            Some(Arg::Number(n)) => {
                if *n == 0 {
                    return Err(args.tag_pos("index").error(":index counts from 1"));
                }
                Ok(Some(Index {
                    n: *n,
                    last: args.has("last"),
                }))
            }
            _ if args.has("last") => Err(args.tag_pos("last").error(":last needs :index")),
            _ => Ok(None),
        }
    }

    fn zone(&self, args: &Args) -> Result<Zone, CompileError> {
        args.exclusive(&["zone", "originalzone"])?;
        if args.has("originalzone") {
            return Ok(Zone::Original);
        }
        match args.tag_arg("zone") {
            Some(a) => {
                let s = strings(a).first().cloned().unwrap_or_default();
                ext::date::parse_zone(&s)
                    .map(Zone::Fixed)
                    .ok_or_else(|| args.tag_pos("zone").error(format!("invalid zone \"{s}\"")))
            }
            None => Ok(Zone::Local),
        }
    }

    fn date_part(&self, part: &Str, pos: Pos) -> Result<(), CompileError> {
        if let Some(p) = part.constant()
            && !ext::date::is_date_part(&p)
        {
            return Err(pos.error(format!("unknown date part \"{p}\"")));
        }
        Ok(())
    }

    // ---- commands ----

    fn command(&mut self, cmd: &RawCommand) -> Result<Cmd, CompileError> {
        let name = cmd.name.as_str();
        let at = cmd.pos;
        let raw = &cmd.args;
        if let Some(e) = ext::command_extension(name) {
            for e in e.split('+') {
                self.need(e, name, at)?;
            }
        }
        Ok(match name {
            "stop" | "discard" | "return" => {
                self.args(name, at, raw, &[])?.expect(&[])?;
                match name {
                    "stop" => Cmd::Stop,
                    "discard" => Cmd::Discard,
                    _ => Cmd::Return,
                }
            }
            "keep" => {
                let a = self.args(
                    name,
                    at,
                    raw,
                    &[&[tag("flags", Some(W::List), Some("imap4flags"))]],
                )?;
                a.expect(&[])?;
                Cmd::Keep {
                    flags: self.tag_list(&a, "flags")?,
                }
            }
            "redirect" => {
                let a = self.args(name, at, raw, &[&[tag("copy", None, Some("copy"))]])?;
                a.expect(&[W::Str])?;
                let address = self.pos_str(&a, 0)?;
                if let Some(addr) = address.constant()
                    && !ext::redirect_address_ok(&addr)
                {
                    return Err(a.pos[0]
                        .1
                        .error(format!("invalid redirect address \"{addr}\"")));
                }
                Cmd::Redirect {
                    address,
                    copy: a.has("copy"),
                }
            }
            "fileinto" => {
                let a = self.args(
                    name,
                    at,
                    raw,
                    &[&[
                        tag("flags", Some(W::List), Some("imap4flags")),
                        tag("copy", None, Some("copy")),
                        tag("create", None, Some("mailbox")),
                        tag("specialuse", Some(W::Str), Some("special-use")),
                    ]],
                )?;
                a.expect(&[W::Str])?;
                Cmd::FileInto {
                    mailbox: self.pos_str(&a, 0)?,
                    flags: self.tag_list(&a, "flags")?,
                    copy: a.has("copy"),
                    create: a.has("create"),
                    special_use: self.tag_str(&a, "specialuse")?,
                }
            }
            "reject" | "ereject" => {
                let a = self.args(name, at, raw, &[])?;
                a.expect(&[W::Str])?;
                Cmd::Reject {
                    reason: self.pos_str(&a, 0)?,
                    extended: name == "ereject",
                }
            }
            "setflag" | "addflag" | "removeflag" => {
                let a = self.args(name, at, raw, &[])?;
                let (var, flags) = match a.pos.len() {
                    1 => {
                        a.expect(&[W::List])?;
                        (None, self.pos_list(&a, 0)?)
                    }
                    _ => {
                        a.expect(&[W::Str, W::List])?;
                        let v = self.pos_str(&a, 0)?;
                        if let Some(n) = v.constant() {
                            ext::variables::check_name(&n, self.has("include"))
                                .map_err(|m| a.pos[0].1.error(m))?;
                        }
                        (Some(v), self.pos_list(&a, 1)?)
                    }
                };
                let op = match name {
                    "setflag" => FlagOp::Set,
                    "addflag" => FlagOp::Add,
                    _ => FlagOp::Remove,
                };
                Cmd::Flag { op, var, flags }
            }
            "set" => {
                let mut mods: Vec<TagSpec> = [
                    "lower",
                    "upper",
                    "lowerfirst",
                    "upperfirst",
                    "quotewildcard",
                    "length",
                ]
                .iter()
                .map(|m| tag(m, None, None))
                .collect();
                mods.push(tag("quoteregex", None, Some("regex")));
                let a = self.args(name, at, raw, &[&mods])?;
                a.expect(&[W::Str, W::Str])?;
                let var = strings(&a.pos[0].0).first().cloned().unwrap_or_default();
                ext::variables::check_name(&var, self.has("include"))
                    .map_err(|m| a.pos[0].1.error(m))?;
                let mut modifiers: Vec<Modifier> = Vec::new();
                for (t, _, p) in &a.tags {
                    let m = match t.as_str() {
                        "lower" => Modifier::Lower,
                        "upper" => Modifier::Upper,
                        "lowerfirst" => Modifier::LowerFirst,
                        "upperfirst" => Modifier::UpperFirst,
                        "quotewildcard" => Modifier::QuoteWildcard,
                        "quoteregex" => Modifier::QuoteRegex,
                        _ => Modifier::Length,
                    };
                    if modifiers.iter().any(|o| o.precedence() == m.precedence()) {
                        return Err(p.error(format!(
                            "set: ':{t}' conflicts with another modifier of the same precedence"
                        )));
                    }
                    modifiers.push(m);
                }
                modifiers.sort_by_key(|m| std::cmp::Reverse(m.precedence()));
                Cmd::Set {
                    name: var.to_ascii_lowercase(),
                    value: self.pos_str(&a, 1)?,
                    modifiers,
                }
            }
            "vacation" => {
                let a = self.args(
                    name,
                    at,
                    raw,
                    &[&[
                        tag("days", Some(W::Num), None),
                        tag("seconds", Some(W::Num), Some("vacation-seconds")),
                        tag("subject", Some(W::Str), None),
                        tag("from", Some(W::Str), None),
                        tag("addresses", Some(W::List), None),
                        tag("mime", None, None),
                        tag("handle", Some(W::Str), None),
                    ]],
                )?;
                a.exclusive(&["days", "seconds"])?;
                a.expect(&[W::Str])?;
                let num = |t: &str| match a.tag_arg(t) {
                    Some(Arg::Number(n)) => Some(*n),
                    _ => None,
                };
                Cmd::Vacation(Box::new(Vacation {
                    days: num("days"),
                    seconds: num("seconds"),
                    subject: self.tag_str(&a, "subject")?,
                    from: self.tag_str(&a, "from")?,
                    addresses: self.tag_list(&a, "addresses")?.unwrap_or_default(),
                    mime: a.has("mime"),
                    handle: self.tag_str(&a, "handle")?,
                    reason: self.pos_str(&a, 0)?,
                }))
            }
            "include" => {
                let a = self.args(
                    name,
                    at,
                    raw,
                    &[&[
                        tag("personal", None, None),
                        tag("global", None, None),
                        tag("once", None, None),
                        tag("optional", None, None),
                    ]],
                )?;
                a.exclusive(&["personal", "global"])?;
                a.expect(&[W::Str])?;
                let script = self.pos_str(&a, 0)?;
                if let Some(n) = script.constant()
                    && !ext::include::name_ok(&n)
                {
                    return Err(a.pos[0].1.error(format!("invalid script name \"{n}\"")));
                }
                Cmd::Include {
                    global: a.has("global"),
                    once: a.has("once"),
                    optional: a.has("optional"),
                    name: script,
                }
            }
            "global" => {
                let a = self.args(name, at, raw, &[])?;
                a.expect(&[W::List])?;
                let mut names = Vec::new();
                for n in strings(&a.pos[0].0) {
                    ext::variables::check_name(&n, false).map_err(|m| a.pos[0].1.error(m))?;
                    names.push(n.to_ascii_lowercase());
                }
                Cmd::Global(names)
            }
            "addheader" => {
                let a = self.args(name, at, raw, &[&[tag("last", None, None)]])?;
                a.expect(&[W::Str, W::Str])?;
                let field = self.pos_str(&a, 0)?;
                if let Some(n) = field.constant()
                    && !ext::editheader::field_name_ok(&n)
                {
                    return Err(a.pos[0]
                        .1
                        .error(format!("invalid header field name \"{n}\"")));
                }
                Cmd::AddHeader {
                    last: a.has("last"),
                    name: field,
                    value: self.pos_str(&a, 1)?,
                }
            }
            "deleteheader" => {
                let a = self.args(
                    name,
                    at,
                    raw,
                    &[
                        &[tag("index", Some(W::Num), None), tag("last", None, None)],
                        COMPARATOR,
                        MATCH,
                    ],
                )?;
                let (field, values) = match a.pos.len() {
                    1 => {
                        a.expect(&[W::Str])?;
                        (self.pos_str(&a, 0)?, None)
                    }
                    _ => {
                        a.expect(&[W::Str, W::List])?;
                        (self.pos_str(&a, 0)?, Some(self.pos_list(&a, 1)?))
                    }
                };
                if let Some(n) = field.constant()
                    && !ext::editheader::field_name_ok(&n)
                {
                    return Err(a.pos[0]
                        .1
                        .error(format!("invalid header field name \"{n}\"")));
                }
                let m = self.match_spec(&a, values.as_ref().unwrap_or(&Vec::new()))?;
                Cmd::DeleteHeader {
                    m,
                    index: self.index(&a)?,
                    name: field,
                    values,
                }
            }
            "error" => {
                let a = self.args(name, at, raw, &[])?;
                a.expect(&[W::Str])?;
                Cmd::Error(self.pos_str(&a, 0)?)
            }
            other => {
                return Err(at.error(format!("unknown command \"{other}\"")));
            }
        })
    }

    // ---- tests ----

    fn test(&mut self, t: &RawTest) -> Result<Test, CompileError> {
        let name = t.name.as_str();
        let at = t.pos;
        let raw = &t.args;
        if let Some(e) = ext::test_extension(name) {
            // "spamtest" is also brought by "spamtestplus" (implied at require).
            self.need(e, name, at)?;
        }
        match name {
            "not" => {
                self.args(name, at, raw, &[])?.expect(&[])?;
                let [sub] = t.tests.as_slice() else {
                    return Err(at.error("not needs exactly one test"));
                };
                return Ok(Test::Not(Box::new(self.test(sub)?)));
            }
            "allof" | "anyof" => {
                self.args(name, at, raw, &[])?.expect(&[])?;
                if t.tests.is_empty() {
                    return Err(at.error(format!("{name} needs a test list")));
                }
                let subs = t
                    .tests
                    .iter()
                    .map(|s| self.test(s))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(if name == "allof" {
                    Test::AllOf(subs)
                } else {
                    Test::AnyOf(subs)
                });
            }
            _ => no_subtests(t)?,
        }
        Ok(match name {
            "true" | "false" => {
                self.args(name, at, raw, &[])?.expect(&[])?;
                if name == "true" {
                    Test::True
                } else {
                    Test::False
                }
            }
            "address" => {
                let a = self.args(name, at, raw, &[COMPARATOR, ADDRESS_PART, MATCH, INDEX])?;
                a.expect(&[W::List, W::List])?;
                let keys = self.pos_list(&a, 1)?;
                Test::Address {
                    m: self.match_spec(&a, &keys)?,
                    part: self.address_part(&a)?,
                    index: self.index(&a)?,
                    headers: self.pos_list(&a, 0)?,
                    keys,
                }
            }
            "envelope" => {
                let a = self.args(name, at, raw, &[COMPARATOR, ADDRESS_PART, MATCH])?;
                a.expect(&[W::List, W::List])?;
                let keys = self.pos_list(&a, 1)?;
                let parts = self.pos_list(&a, 0)?;
                for p in &parts {
                    if let Some(p) = p.constant()
                        && !["from", "to", "auth"].contains(&p.to_ascii_lowercase().as_str())
                    {
                        return Err(a.pos[0].1.error(format!("unknown envelope part \"{p}\"")));
                    }
                }
                Test::Envelope {
                    m: self.match_spec(&a, &keys)?,
                    part: self.address_part(&a)?,
                    parts,
                    keys,
                }
            }
            "header" => {
                let a = self.args(name, at, raw, &[COMPARATOR, MATCH, INDEX])?;
                a.expect(&[W::List, W::List])?;
                let keys = self.pos_list(&a, 1)?;
                Test::Header {
                    m: self.match_spec(&a, &keys)?,
                    index: self.index(&a)?,
                    headers: self.pos_list(&a, 0)?,
                    keys,
                }
            }
            "exists" => {
                let a = self.args(name, at, raw, &[])?;
                a.expect(&[W::List])?;
                Test::Exists(self.pos_list(&a, 0)?)
            }
            "size" => {
                let a = self.args(
                    name,
                    at,
                    raw,
                    &[&[tag("over", None, None), tag("under", None, None)]],
                )?;
                a.expect(&[W::Num])?;
                let Some(which) = a.exclusive(&["over", "under"])? else {
                    return Err(at.error("size needs :over or :under"));
                };
                let limit = match a.pos[0].0 {
                    Arg::Number(n) => n,
                    _ => 0,
                };
                Test::Size {
                    over: which == "over",
                    limit,
                }
            }
            "body" => {
                let a = self.args(
                    name,
                    at,
                    raw,
                    &[
                        COMPARATOR,
                        MATCH,
                        &[
                            tag("raw", None, None),
                            tag("content", Some(W::List), None),
                            tag("text", None, None),
                        ],
                    ],
                )?;
                a.expect(&[W::List])?;
                let keys = self.pos_list(&a, 0)?;
                let transform = match a.exclusive(&["raw", "content", "text"])? {
                    Some("raw") => BodyTransform::Raw,
                    Some("content") => {
                        BodyTransform::Content(self.tag_list(&a, "content")?.unwrap_or_default())
                    }
                    _ => BodyTransform::Text,
                };
                Test::Body {
                    m: self.match_spec(&a, &keys)?,
                    transform,
                    keys,
                }
            }
            "date" => {
                let a = self.args(
                    name,
                    at,
                    raw,
                    &[
                        &[
                            tag("zone", Some(W::Str), None),
                            tag("originalzone", None, None),
                        ],
                        COMPARATOR,
                        MATCH,
                        INDEX,
                    ],
                )?;
                a.expect(&[W::Str, W::Str, W::List])?;
                let keys = self.pos_list(&a, 2)?;
                let part = self.pos_str(&a, 1)?;
                self.date_part(&part, a.pos[1].1)?;
                Test::Date {
                    m: self.match_spec(&a, &keys)?,
                    zone: self.zone(&a)?,
                    index: self.index(&a)?,
                    header: self.pos_str(&a, 0)?,
                    part,
                    keys,
                }
            }
            "currentdate" => {
                let a = self.args(
                    name,
                    at,
                    raw,
                    &[&[tag("zone", Some(W::Str), None)], COMPARATOR, MATCH],
                )?;
                a.expect(&[W::Str, W::List])?;
                let keys = self.pos_list(&a, 1)?;
                let part = self.pos_str(&a, 0)?;
                self.date_part(&part, a.pos[0].1)?;
                Test::CurrentDate {
                    m: self.match_spec(&a, &keys)?,
                    zone: self.zone(&a)?,
                    part,
                    keys,
                }
            }
            "string" => {
                let a = self.args(name, at, raw, &[COMPARATOR, MATCH])?;
                a.expect(&[W::List, W::List])?;
                let keys = self.pos_list(&a, 1)?;
                Test::String {
                    m: self.match_spec(&a, &keys)?,
                    sources: self.pos_list(&a, 0)?,
                    keys,
                }
            }
            "hasflag" => {
                let a = self.args(name, at, raw, &[COMPARATOR, MATCH])?;
                let (vars, flags) = match a.pos.len() {
                    1 => {
                        a.expect(&[W::List])?;
                        (None, self.pos_list(&a, 0)?)
                    }
                    _ => {
                        a.expect(&[W::List, W::List])?;
                        (Some(self.pos_list(&a, 0)?), self.pos_list(&a, 1)?)
                    }
                };
                Test::HasFlag {
                    m: self.match_spec(&a, &flags)?,
                    vars,
                    flags,
                }
            }
            "mailboxexists" => {
                let a = self.args(name, at, raw, &[])?;
                a.expect(&[W::List])?;
                Test::MailboxExists(self.pos_list(&a, 0)?)
            }
            "metadata" | "servermetadata" => {
                let a = self.args(name, at, raw, &[COMPARATOR, MATCH])?;
                let server = name == "servermetadata";
                if server {
                    a.expect(&[W::Str, W::List])?;
                } else {
                    a.expect(&[W::Str, W::Str, W::List])?;
                }
                let k = if server { 1 } else { 2 };
                let keys = self.pos_list(&a, k)?;
                Test::Metadata {
                    m: self.match_spec(&a, &keys)?,
                    mailbox: if server {
                        None
                    } else {
                        Some(self.pos_str(&a, 0)?)
                    },
                    entry: self.pos_str(&a, k - 1)?,
                    keys,
                }
            }
            "metadataexists" => {
                let a = self.args(name, at, raw, &[])?;
                a.expect(&[W::Str, W::List])?;
                Test::MetadataExists {
                    mailbox: Some(self.pos_str(&a, 0)?),
                    entries: self.pos_list(&a, 1)?,
                }
            }
            "servermetadataexists" => {
                let a = self.args(name, at, raw, &[])?;
                a.expect(&[W::List])?;
                Test::MetadataExists {
                    mailbox: None,
                    entries: self.pos_list(&a, 0)?,
                }
            }
            "environment" => {
                let a = self.args(name, at, raw, &[COMPARATOR, MATCH])?;
                a.expect(&[W::Str, W::List])?;
                let keys = self.pos_list(&a, 1)?;
                Test::Environment {
                    m: self.match_spec(&a, &keys)?,
                    name: self.pos_str(&a, 0)?,
                    keys,
                }
            }
            "spamtest" => {
                let a = self.args(
                    name,
                    at,
                    raw,
                    &[
                        &[tag("percent", None, Some("spamtestplus"))],
                        COMPARATOR,
                        MATCH,
                    ],
                )?;
                a.expect(&[W::Str])?;
                let value = self.pos_str(&a, 0)?;
                Test::SpamTest {
                    m: self.match_spec(&a, &vec![value.clone()])?,
                    percent: a.has("percent"),
                    value,
                }
            }
            "virustest" => {
                let a = self.args(name, at, raw, &[COMPARATOR, MATCH])?;
                a.expect(&[W::Str])?;
                let value = self.pos_str(&a, 0)?;
                Test::VirusTest {
                    m: self.match_spec(&a, &vec![value.clone()])?,
                    value,
                }
            }
            "duplicate" => {
                let a = self.args(
                    name,
                    at,
                    raw,
                    &[&[
                        tag("handle", Some(W::Str), None),
                        tag("header", Some(W::Str), None),
                        tag("uniqueid", Some(W::Str), None),
                        tag("seconds", Some(W::Num), None),
                        tag("last", None, None),
                    ]],
                )?;
                a.exclusive(&["header", "uniqueid"])?;
                a.expect(&[])?;
                let source = if let Some(h) = self.tag_str(&a, "header")? {
                    DupSource::Header(h)
                } else if let Some(u) = self.tag_str(&a, "uniqueid")? {
                    DupSource::UniqueId(u)
                } else {
                    DupSource::MessageId
                };
                Test::Duplicate {
                    handle: self.tag_str(&a, "handle")?,
                    source,
                    seconds: match a.tag_arg("seconds") {
                        Some(Arg::Number(n)) => Some(*n),
                        _ => None,
                    },
                    last: a.has("last"),
                }
            }
            "ihave" => {
                let exts = self.ihave_list(t)?;
                if exts.iter().all(|e| ext::is_supported(e)) {
                    Test::True
                } else {
                    Test::False
                }
            }
            "specialuse_exists" => {
                let a = self.args(name, at, raw, &[])?;
                match a.pos.len() {
                    1 => {
                        a.expect(&[W::List])?;
                        Test::SpecialUseExists {
                            mailbox: None,
                            uses: self.pos_list(&a, 0)?,
                        }
                    }
                    _ => {
                        a.expect(&[W::Str, W::List])?;
                        Test::SpecialUseExists {
                            mailbox: Some(self.pos_str(&a, 0)?),
                            uses: self.pos_list(&a, 1)?,
                        }
                    }
                }
            }
            other => return Err(at.error(format!("unknown test \"{other}\""))),
        })
    }
}

fn strings(arg: &Arg) -> Vec<String> {
    match arg {
        Arg::Strings { values, .. } => values.clone(),
        _ => Vec::new(),
    }
}

fn no_tests(cmd: &RawCommand) -> Result<(), CompileError> {
    if cmd.tests.is_empty() {
        Ok(())
    } else {
        Err(cmd.tests[0]
            .pos
            .error(format!("{} takes no test", cmd.name)))
    }
}

fn no_subtests(t: &RawTest) -> Result<(), CompileError> {
    if t.tests.is_empty() {
        Ok(())
    } else {
        Err(t.tests[0].pos.error(format!("{} takes no test", t.name)))
    }
}

/// Whether `name` is a valid variable name for `set` (RFC 5229: identifier, or
/// `global.identifier` when include is present).
pub fn variable_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= SIEVE_MAX_VARIABLE_NAME
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    fn c(src: &str) -> Result<Program, CompileError> {
        compile(&parse(src)?)
    }

    #[test]
    fn require_is_checked() {
        assert!(c("require [\"fileinto\", \"Copy\"]; fileinto :copy \"a\";").is_ok());
        let e = c("require \"x-unknown\";").expect_err("unsupported");
        assert!(e.message.contains("unsupported"), "{e}");
        let e = c("keep;\nrequire \"fileinto\";").expect_err("late require");
        assert_eq!((e.line, e.column), (2, 1));
        let e = c("fileinto :copy \"a\";").expect_err("no require");
        assert!(e.message.contains("\"fileinto\""), "{e}");
        let e = c("require \"fileinto\"; fileinto :copy \"a\";").expect_err("no copy");
        assert!(e.message.contains("\"copy\""), "{e}");
        // spamtestplus brings spamtest; vacation-seconds brings vacation.
        assert!(c("require \"spamtestplus\"; if spamtest :percent \"5\" { keep; }").is_ok());
        assert!(c("require \"vacation-seconds\"; vacation :seconds 10 \"x\";").is_ok());
    }

    #[test]
    fn signatures_are_checked() {
        for bad in [
            "if header :is :is \"a\" \"b\" { keep; }",
            "if header :comparator \"i;nope\" \"a\" \"b\" { keep; }",
            "if address :all :domain \"from\" \"x\" { keep; }",
            "if size :over \"1\" { keep; }",
            "if size :over 1 :under 2 { keep; }",
            "if not { keep; }",
            "if allof () { keep; }",
            "keep :flags \"x\";",
            "require \"variables\"; set \"1bad\" \"x\";",
            "require \"variables\"; set :lower :upper \"a\" \"x\";",
            "require \"date\"; if date \"date\" \"fortnight\" \"1\" { keep; }",
            "require \"date\"; if date :zone \"EST\" \"date\" \"year\" \"1\" { keep; }",
            "require \"index\"; if header :last \"a\" \"b\" { keep; }",
            "require \"include\"; include \"../x\";",
            "require \"editheader\"; addheader \"Bad:Name\" \"x\";",
            "redirect \"not an address\";",
            "require \"envelope\"; if envelope \"bogus\" \"x\" { keep; }",
            "else { keep; }",
            "if true { keep; } else { keep; } else { keep; }",
        ] {
            assert!(c(bad).is_err(), "{bad:?} compiled");
        }
    }

    #[test]
    fn ihave_scopes_extensions() {
        let p = c("require \"ihave\"; if ihave \"fileinto\" { fileinto \"x\"; } fileinto \"y\";");
        assert!(
            p.is_err(),
            "fileinto outside the ihave block must need require"
        );
        let p = c("require \"ihave\"; if ihave [\"fileinto\", \"x-none\"] { x_none; } keep;")
            .expect("unknown extension's block is skipped");
        assert!(matches!(
            p.commands.first(),
            Some(Cmd::If { branches, .. }) if matches!(branches[0].0, Test::False)
        ));
    }

    #[test]
    fn strings_become_templates_only_with_variables() {
        let p = c("require [\"fileinto\", \"variables\"]; fileinto \"a${x}\";").expect("ok");
        let Some(Cmd::FileInto { mailbox, .. }) = p.commands.first() else {
            panic!("not a fileinto");
        };
        assert_eq!(mailbox.constant(), None);
        let p = c("require \"fileinto\"; fileinto \"a${x}\";").expect("ok");
        let Some(Cmd::FileInto { mailbox, .. }) = p.commands.first() else {
            panic!("not a fileinto");
        };
        assert_eq!(mailbox.constant().as_deref(), Some("a${x}"));
    }
}
