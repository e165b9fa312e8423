//! `command = tag SP (command-any / command-auth / command-nonauth / command-select) CRLF`
//!
//! One function per command (named after its ABNF rule), dispatched on the
//! case-insensitive command name. Each parses only its arguments; the common
//! tail (`CRLF` and nothing after it) is checked once in [`parse_command`].

use std::borrow::Cow;

use nom::Parser;
use nom::branch::alt;
use nom::bytes::complete::{tag, take_while1};
use nom::combinator::{map, opt, value};
use nom::multi::{separated_list0, separated_list1};
use nom::sequence::{delimited, preceded};

use super::core::{
    astring, atom, base64, crlf, date_time, flag_list, keyword, list_mailbox, literal, literal8,
    mailbox, mod_sequence_value, nstring, number64, nz_number, quoted, sequence_set, sp, string,
    tag_rule,
};
use super::fetch::fetch_atts;
use super::search::search_program;
use super::{PErr, PResult, ParseError, ParseErrorKind, ctx, ctx_override, error, failure};
use crate::imap::proto::types::{
    AppendMessage, CatPart, Command, CommandBody, ListReturn, ListSelect, MailboxAttr,
    PartialRange, QresyncParams, SearchReturn, Secret, SequenceSet, StatusItem, StoreOp,
    ThreadAlgorithm,
};
use crate::limits::{MAX_CANCELUPDATE_TAGS, MAX_CATENATE_PARTS, MAX_ID_FIELDS};

/// Parses one framed command (`buf[..consumed]` of a [`Framed::Command`](crate::imap::proto::receive::Framed)).
///
/// `input` must be the complete command: line(s) ending in CRLF with literal
/// data inline. Anything after the final CRLF is an error.
pub fn parse_command(input: &[u8]) -> Result<Command, ParseError> {
    let to_error = |tag, e: nom::Err<PErr>| {
        let pe = match e {
            nom::Err::Error(pe) | nom::Err::Failure(pe) => pe,
            nom::Err::Incomplete(_) => PErr {
                kind: ParseErrorKind::Syntax,
                message: "",
                remaining: 0,
            },
        };
        ParseError {
            tag,
            kind: pe.kind,
            message: if pe.message.is_empty() {
                "syntax error"
            } else {
                pe.message
            },
            offset: input.len().saturating_sub(pe.remaining),
        }
    };
    let (rest, tag) = match (tag_rule, sp).parse(input) {
        Ok((rest, (tag, ()))) => (rest, tag),
        Err(_) => {
            return Err(ParseError {
                tag: None,
                kind: ParseErrorKind::NoTag,
                message: "a command must start with a tag and a space",
                offset: 0,
            });
        }
    };
    let (rest, body) = match command_body(rest) {
        Ok(r) => r,
        Err(e) => return Err(to_error(Some(tag), e)),
    };
    match crlf(rest) {
        Ok(([], ())) => Ok(Command { tag, body }),
        Ok((r, ())) => Err(to_error(
            Some(tag),
            error(r, "data after the end of the command"),
        )),
        Err(e) => Err(to_error(Some(tag), e)),
    }
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// Dispatches on the command name; arguments follow.
fn command_body(i: &[u8]) -> PResult<'_, CommandBody> {
    let (rest, name) = ctx("expected a command name", take_while1(is_name_char)).parse(i)?;
    let name = name.to_ascii_uppercase();
    let simple = |body| Ok((rest, body));
    match name.as_slice() {
        b"CAPABILITY" => simple(CommandBody::Capability),
        b"NOOP" => simple(CommandBody::Noop),
        b"LOGOUT" => simple(CommandBody::Logout),
        b"STARTTLS" => simple(CommandBody::StartTls),
        b"NAMESPACE" => simple(CommandBody::Namespace),
        b"IDLE" => simple(CommandBody::Idle),
        b"CHECK" => simple(CommandBody::Check),
        b"CLOSE" => simple(CommandBody::Close),
        b"UNSELECT" => simple(CommandBody::Unselect),
        b"EXPUNGE" => simple(CommandBody::Expunge { uids: None }),
        b"LOGIN" => login(rest),
        b"AUTHENTICATE" => authenticate(rest),
        b"ENABLE" => enable(rest),
        b"ID" => id(rest),
        b"COMPRESS" => compress(rest),
        b"SELECT" => map(select_args, |(mailbox, condstore, qresync)| {
            CommandBody::Select {
                mailbox,
                condstore,
                qresync,
            }
        })
        .parse(rest),
        b"EXAMINE" => map(select_args, |(mailbox, condstore, qresync)| {
            CommandBody::Examine {
                mailbox,
                condstore,
                qresync,
            }
        })
        .parse(rest),
        b"CREATE" => create(rest),
        b"DELETE" => map(preceded(sp, mailbox), |mailbox| CommandBody::Delete {
            mailbox,
        })
        .parse(rest),
        b"RENAME" => rename(rest),
        b"SUBSCRIBE" => map(preceded(sp, mailbox), |mailbox| CommandBody::Subscribe {
            mailbox,
        })
        .parse(rest),
        b"UNSUBSCRIBE" => map(preceded(sp, mailbox), |mailbox| CommandBody::Unsubscribe {
            mailbox,
        })
        .parse(rest),
        b"LIST" => list(rest),
        b"LSUB" => lsub(rest),
        b"STATUS" => status(rest),
        b"APPEND" => append(rest),
        b"GETQUOTA" => map(preceded(sp, astring), |r: Cow<'_, [u8]>| {
            CommandBody::GetQuota {
                root: r.into_owned(),
            }
        })
        .parse(rest),
        b"GETQUOTAROOT" => map(preceded(sp, mailbox), |mailbox| CommandBody::GetQuotaRoot {
            mailbox,
        })
        .parse(rest),
        b"SETQUOTA" => setquota(rest),
        b"GETMETADATA" => super::metadata::getmetadata(rest),
        b"SETMETADATA" => super::metadata::setmetadata(rest),
        b"SEARCH" => search(rest, false),
        b"CANCELUPDATE" => cancelupdate(rest),
        b"SORT" => super::sort::sort(rest, false),
        b"FETCH" => fetch(rest, false),
        b"STORE" => store(rest, false),
        b"COPY" => copy(rest, false, false),
        b"MOVE" => copy(rest, false, true),
        b"UID" => uid(rest),
        b"THREAD" => thread(rest, false),
        b"NOTIFY" => super::notify::notify(rest),
        _ => Err(failure(
            i,
            ParseErrorKind::UnknownCommand,
            "unknown command",
        )),
    }
}

/// `uid = "UID" SP (copy / fetch / search / store / move)` plus `uid-expunge` (RFC 4315).
fn uid(i: &[u8]) -> PResult<'_, CommandBody> {
    let (rest, _) = sp(i)?;
    let (rest, name) =
        ctx("expected a command after UID", take_while1(is_name_char)).parse(rest)?;
    match name.to_ascii_uppercase().as_slice() {
        b"SEARCH" => search(rest, true),
        b"SORT" => super::sort::sort(rest, true),
        b"FETCH" => fetch(rest, true),
        b"STORE" => store(rest, true),
        b"COPY" => copy(rest, true, false),
        b"MOVE" => copy(rest, true, true),
        b"EXPUNGE" => map(preceded(sp, sequence_set), |s| CommandBody::Expunge {
            uids: Some(s),
        })
        .parse(rest),
        b"THREAD" => thread(rest, true),
        _ => Err(failure(
            i,
            ParseErrorKind::UnknownCommand,
            "UID must be followed by FETCH, SEARCH, STORE, COPY, MOVE or EXPUNGE",
        )),
    }
}

/// `login = "LOGIN" SP userid SP password`
fn login(i: &[u8]) -> PResult<'_, CommandBody> {
    let (rest, (_, user, _, pass)) = (
        sp,
        ctx("expected a user name", astring),
        sp,
        ctx("expected a password", astring),
    )
        .parse(i)?;
    Ok((
        rest,
        CommandBody::Login {
            username: user.into_owned(),
            password: Secret(pass.into_owned()),
        },
    ))
}

/// `authenticate = "AUTHENTICATE" SP auth-type [SP (base64 / "=")]` (RFC 4959)
fn authenticate(i: &[u8]) -> PResult<'_, CommandBody> {
    let (rest, (_, mech)) = (sp, ctx("expected a SASL mechanism name", atom)).parse(i)?;
    let (rest, ir) = opt(preceded(
        sp,
        ctx(
            "invalid SASL initial response",
            alt((value(Vec::new(), tag(&b"="[..])), base64)),
        ),
    ))
    .parse(rest)?;
    Ok((
        rest,
        CommandBody::Authenticate {
            mechanism: mech.as_str().to_ascii_uppercase(),
            initial_response: ir.map(Secret),
        },
    ))
}

/// `enable = "ENABLE" 1*(SP capability)` (RFC 5161)
fn enable(i: &[u8]) -> PResult<'_, CommandBody> {
    let (rest, caps) = ctx(
        "ENABLE needs at least one capability name",
        nom::multi::many1(preceded(sp, atom)),
    )
    .parse(i)?;
    Ok((rest, CommandBody::Enable { capabilities: caps }))
}

/// `id = "ID" SP id_params_list`, `id_params_list = "(" #(string SPACE nstring) ")" / nil` (RFC 2971)
fn id(i: &[u8]) -> PResult<'_, CommandBody> {
    let pair = map((string, sp, nstring), |(k, _, v)| {
        (k.into_owned(), v.map(Cow::into_owned))
    });
    let list = delimited(tag(&b"("[..]), separated_list0(sp, pair), tag(&b")"[..]));
    let (rest, params) = preceded(
        sp,
        ctx(
            "ID needs a list of field/value string pairs or NIL",
            alt((map(list, Some), value(None, keyword("NIL")))),
        ),
    )
    .parse(i)?;
    if params.as_ref().is_some_and(|p| p.len() > MAX_ID_FIELDS) {
        return Err(failure(
            i,
            ParseErrorKind::TooMany,
            "ID allows at most 30 field/value pairs",
        ));
    }
    Ok((rest, CommandBody::Id { parameters: params }))
}

/// `compress = "COMPRESS" SP algorithm` (RFC 4978)
fn compress(i: &[u8]) -> PResult<'_, CommandBody> {
    let (rest, alg) = preceded(sp, ctx("expected a compression algorithm", atom)).parse(i)?;
    Ok((
        rest,
        CommandBody::Compress {
            algorithm: alg.as_str().to_ascii_uppercase(),
        },
    ))
}

/// `select = "SELECT" SP mailbox [select-params]`, `select-params = SP "(" select-param *(SP select-param) ")"`
/// with `select-param = "CONDSTORE" / "QRESYNC" SP "(" ... ")"` (RFC 7162); other parameters
/// are refused, and so is a parameter given twice.
type SelectArgs = (
    crate::imap::proto::types::Mailbox,
    bool,
    Option<Box<QresyncParams>>,
);
fn select_args(i: &[u8]) -> PResult<'_, SelectArgs> {
    #[derive(Clone)]
    enum Param {
        CondStore,
        Qresync(Box<QresyncParams>),
    }
    let (rest, (_, mbox)) = (sp, mailbox).parse(i)?;
    let param = |i| -> PResult<'_, Param> {
        ctx_override(
            "the only SELECT parameters supported are CONDSTORE and QRESYNC",
            alt((
                map(qresync_param, |q| Param::Qresync(Box::new(q))),
                value(Param::CondStore, keyword("CONDSTORE")),
            )),
        )
        .parse(i)
    };
    let (after, params) = opt(preceded(
        sp,
        delimited(tag(&b"("[..]), separated_list1(sp, param), tag(&b")"[..])),
    ))
    .parse(rest)?;
    let (mut condstore, mut qresync) = (false, None);
    for p in params.into_iter().flatten() {
        match p {
            Param::CondStore if !condstore => condstore = true,
            Param::Qresync(q) if qresync.is_none() => qresync = Some(q),
            _ => {
                return Err(failure(
                    rest,
                    ParseErrorKind::Syntax,
                    "SELECT parameter given twice",
                ));
            }
        }
    }
    Ok((after, (mbox, condstore, qresync)))
}

/// `"QRESYNC" SP "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")"`,
/// `seq-match-data = "(" known-sequence-set SP known-uid-set ")"` (RFC 7162 section 7). None of
/// the sets may contain `*` (nor `$`, which is not a set of numbers the client knows).
fn qresync_param(i: &[u8]) -> PResult<'_, QresyncParams> {
    let (rest, (_, _, _, uidvalidity, _, modseq)) = (
        keyword("QRESYNC"),
        sp,
        tag(&b"("[..]),
        nz_number,
        sp,
        mod_sequence_value,
    )
        .parse(i)?;
    let (rest, known_uids) = opt(preceded(sp, known_set)).parse(rest)?;
    let (rest, seq_match) = opt(preceded(
        sp,
        delimited(
            tag(&b"("[..]),
            (known_set, preceded(sp, known_set)),
            tag(&b")"[..]),
        ),
    ))
    .parse(rest)?;
    let (rest, _) = ctx("expected ) after the QRESYNC parameters", tag(&b")"[..])).parse(rest)?;
    Ok((
        rest,
        QresyncParams {
            uidvalidity: uidvalidity.get(),
            modseq,
            known_uids,
            seq_match,
        },
    ))
}

/// A `sequence-set` without `*` or `$` (`known-uids`, `known-sequence-set`, `known-uid-set`).
fn known_set(i: &[u8]) -> PResult<'_, SequenceSet> {
    let (rest, set) = sequence_set(i)?;
    if set.uses_star() || set.uses_saved() {
        return Err(failure(
            i,
            ParseErrorKind::Syntax,
            "QRESYNC sets cannot contain * or $",
        ));
    }
    Ok((rest, set))
}

/// `create = "CREATE" SP mailbox [create-params]`, `create-param =/ "USE" SP "(" [use-attr *(SP use-attr)] ")"` (RFC 6154)
fn create(i: &[u8]) -> PResult<'_, CommandBody> {
    let (rest, (_, mbox)) = (sp, mailbox).parse(i)?;
    let use_attr = |i| -> PResult<'_, MailboxAttr> {
        let (rest, (_, a)) = (tag(&b"\\"[..]), atom).parse(i)?;
        match MailboxAttr::special_use(a.as_str()) {
            Some(attr) => Ok((rest, attr)),
            None => Err(error(i, "unknown special-use attribute")),
        }
    };
    let use_param = preceded(
        (keyword("USE"), sp),
        delimited(
            tag(&b"("[..]),
            separated_list0(sp, use_attr),
            tag(&b")"[..]),
        ),
    );
    let (rest, attrs) = opt(preceded(
        sp,
        ctx(
            "the only CREATE parameter supported is USE (special-use attributes)",
            delimited(tag(&b"("[..]), use_param, tag(&b")"[..])),
        ),
    ))
    .parse(rest)?;
    Ok((
        rest,
        CommandBody::Create {
            mailbox: mbox,
            special_use: attrs.unwrap_or_default(),
        },
    ))
}

/// `rename = "RENAME" SP mailbox SP mailbox`
fn rename(i: &[u8]) -> PResult<'_, CommandBody> {
    let (rest, (_, from, _, to)) = (sp, mailbox, sp, mailbox).parse(i)?;
    Ok((rest, CommandBody::Rename { from, to }))
}

/// `lsub = "LSUB" SP mailbox SP list-mailbox`
fn lsub(i: &[u8]) -> PResult<'_, CommandBody> {
    let (rest, (_, reference, _, pattern)) = (sp, mailbox, sp, list_mailbox).parse(i)?;
    Ok((rest, CommandBody::Lsub { reference, pattern }))
}

/// `list-select-opt = "SUBSCRIBED" / "REMOTE" / "RECURSIVEMATCH" / "SPECIAL-USE"`
fn list_select_opt(i: &[u8]) -> PResult<'_, ListSelect> {
    ctx_override(
        "unknown LIST selection option",
        alt((
            value(ListSelect::Subscribed, keyword("SUBSCRIBED")),
            value(ListSelect::Remote, keyword("REMOTE")),
            value(ListSelect::RecursiveMatch, keyword("RECURSIVEMATCH")),
            value(ListSelect::SpecialUse, keyword("SPECIAL-USE")),
        )),
    )
    .parse(i)
}

/// `status-att` (RFC 3501, 7162, 8438, 9208)
fn status_att(i: &[u8]) -> PResult<'_, StatusItem> {
    let (rest, name) = take_while1(is_name_char)(i)?;
    let item = std::str::from_utf8(name)
        .ok()
        .and_then(StatusItem::from_name);
    match item {
        Some(item) => Ok((rest, item)),
        None => Err(error(i, "unknown STATUS item")),
    }
}

/// `"(" status-att *(SP status-att) ")"`
fn status_att_list(i: &[u8]) -> PResult<'_, Vec<StatusItem>> {
    ctx(
        "expected a parenthesised list of STATUS items",
        delimited(
            tag(&b"("[..]),
            separated_list1(sp, status_att),
            tag(&b")"[..]),
        ),
    )
    .parse(i)
}

/// `return-option = "SUBSCRIBED" / "CHILDREN" / "SPECIAL-USE" / status-option` (RFC 5258, 6154, 5819)
fn return_option(i: &[u8]) -> PResult<'_, ListReturn> {
    alt((
        value(ListReturn::Subscribed, keyword("SUBSCRIBED")),
        value(ListReturn::Children, keyword("CHILDREN")),
        value(ListReturn::SpecialUse, keyword("SPECIAL-USE")),
        map(
            preceded((keyword("STATUS"), sp), status_att_list),
            ListReturn::Status,
        ),
    ))
    .parse(i)
    .map_err(|e| match e {
        nom::Err::Error(_) => error(i, "unknown LIST return option"),
        other => other,
    })
}

/// `list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]` (RFC 5258)
fn list(i: &[u8]) -> PResult<'_, CommandBody> {
    let (rest, _) = sp(i)?;
    let (rest, selection) = opt(delimited(
        tag(&b"("[..]),
        separated_list0(sp, list_select_opt),
        (tag(&b")"[..]), sp),
    ))
    .parse(rest)?;
    if let Some(sel) = &selection {
        // RFC 5258: RECURSIVEMATCH is a modifier and needs a base option (SUBSCRIBED).
        if sel.contains(&ListSelect::RecursiveMatch) && !sel.contains(&ListSelect::Subscribed) {
            return Err(failure(
                rest,
                ParseErrorKind::Syntax,
                "RECURSIVEMATCH needs another selection option such as SUBSCRIBED",
            ));
        }
    }
    let (rest, reference) = mailbox(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, patterns) = alt((
        delimited(
            tag(&b"("[..]),
            separated_list1(sp, list_mailbox),
            tag(&b")"[..]),
        ),
        map(list_mailbox, |p| vec![p]),
    ))
    .parse(rest)?;
    let (rest, returns) = opt(preceded(
        (sp, keyword("RETURN"), sp),
        ctx(
            "expected RETURN (options)",
            delimited(
                tag(&b"("[..]),
                separated_list0(sp, return_option),
                tag(&b")"[..]),
            ),
        ),
    ))
    .parse(rest)?;
    Ok((
        rest,
        CommandBody::List {
            selection,
            reference,
            patterns,
            returns,
        },
    ))
}

/// `status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"`
fn status(i: &[u8]) -> PResult<'_, CommandBody> {
    let (rest, (_, mbox, _, items)) = (sp, mailbox, sp, status_att_list).parse(i)?;
    Ok((
        rest,
        CommandBody::Status {
            mailbox: mbox,
            items,
        },
    ))
}

/// `setquota = "SETQUOTA" SP quota-root-name SP setquota-list` (RFC 9208 7), with
/// `setquota-list = "(" [setquota-resource *(SP setquota-resource)] ")"` and
/// `setquota-resource = resource-name SP resource-limit`. The list is bounded by the line limit.
fn setquota(i: &[u8]) -> PResult<'_, CommandBody> {
    let resource = map((atom, sp, number64), |(name, (), limit)| {
        (name.as_str().to_ascii_uppercase(), limit)
    });
    let (rest, (_, root, _, limits)) = (
        sp,
        astring,
        sp,
        ctx(
            "expected a parenthesised list of resource limits",
            delimited(
                tag(&b"("[..]),
                separated_list0(sp, resource),
                tag(&b")"[..]),
            ),
        ),
    )
        .parse(i)?;
    Ok((
        rest,
        CommandBody::SetQuota {
            root: root.into_owned(),
            limits,
        },
    ))
}

/// `utf8-literal = "UTF8" SP "(" literal8 ")"` (RFC 6855 4).
fn utf8_literal(i: &[u8]) -> PResult<'_, &[u8]> {
    let (rest, ()) = keyword("UTF8")(i)?;
    let (rest, _) = (sp, tag(&b"("[..])).parse(rest)?;
    let (rest, data) = ctx("UTF8 needs a literal8", literal8).parse(rest)?;
    let (rest, _) = ctx("expected ')' after the UTF8 literal", tag(&b")"[..])).parse(rest)?;
    Ok((rest, data))
}

/// `literal / literal8 / utf8-literal`: the data of a message or of a CATENATE TEXT part, with
/// `(binary, utf8)`.
fn append_literal(i: &[u8]) -> PResult<'_, (&[u8], bool, bool)> {
    alt((
        map(literal, |d| (d, false, false)),
        map(literal8, |d| (d, true, false)),
        map(utf8_literal, |d| (d, true, true)),
    ))
    .parse(i)
}

/// `cat-part = text-literal / url / utf8-literal` (RFC 4469 5, RFC 6855 4), where
/// `text-literal = "TEXT" SP literal` (literal8 taken too, as Dovecot does) and
/// `url = "URL" SP astring`.
fn cat_part(i: &[u8]) -> PResult<'_, CatPart> {
    if let Ok((rest, ())) = keyword("TEXT")(i) {
        let (rest, _) = sp(rest)?;
        let (rest, (data, binary, _)) = ctx(
            "TEXT needs a literal",
            alt((
                map(literal, |d| (d, false, false)),
                map(literal8, |d| (d, true, false)),
            )),
        )
        .parse(rest)?;
        return Ok((
            rest,
            CatPart::Text {
                data: data.to_vec(),
                binary,
                utf8: false,
            },
        ));
    }
    if let Ok((rest, ())) = keyword("URL")(i) {
        let (rest, _) = sp(rest)?;
        let (rest, url) = ctx("URL needs an IMAP URL", astring).parse(rest)?;
        return Ok((rest, CatPart::Url(url.into_owned())));
    }
    let (rest, data) = ctx("expected TEXT, URL or UTF8", utf8_literal).parse(i)?;
    Ok((
        rest,
        CatPart::Text {
            data: data.to_vec(),
            binary: true,
            utf8: true,
        },
    ))
}

/// `"CATENATE" SP "(" cat-part *(SP cat-part) ")"` (RFC 4469 5), at most
/// [`MAX_CATENATE_PARTS`] parts.
fn catenate(i: &[u8]) -> PResult<'_, Vec<CatPart>> {
    let (rest, ()) = keyword("CATENATE")(i)?;
    let (rest, _) = (sp, tag(&b"("[..])).parse(rest)?;
    let (rest, parts) = separated_list1(sp, cat_part).parse(rest)?;
    if parts.len() > MAX_CATENATE_PARTS {
        return Err(failure(
            rest,
            ParseErrorKind::Syntax,
            "too many CATENATE parts",
        ));
    }
    let (rest, _) = ctx("expected ')' after the CATENATE parts", tag(&b")"[..])).parse(rest)?;
    Ok((rest, parts))
}

/// One message of `append`: `[SP flag-list] [SP date-time] SP append-data`, where
/// `append-data = literal / literal8 / utf8-literal / "CATENATE" SP "(" cat-part ... ")"`
/// (RFC 3501, RFC 3516, RFC 6855 4, RFC 4469 5).
fn append_message(i: &[u8]) -> PResult<'_, AppendMessage> {
    let (rest, flags) = opt(preceded(sp, flag_list)).parse(i)?;
    let (rest, date) = opt(preceded(sp, date_time)).parse(rest)?;
    let (rest, _) = sp(rest)?;
    if let Ok((rest, parts)) = catenate(rest) {
        return Ok((
            rest,
            AppendMessage {
                flags: flags.unwrap_or_default(),
                date,
                data: Vec::new(),
                binary: false,
                utf8: false,
                catenate: Some(parts),
            },
        ));
    }
    let (rest, (data, binary, utf8)) =
        ctx("APPEND needs the message as a literal", append_literal).parse(rest)?;
    Ok((
        rest,
        AppendMessage {
            flags: flags.unwrap_or_default(),
            date,
            data: data.to_vec(),
            binary,
            utf8,
            catenate: None,
        },
    ))
}

/// Closing text tried after a probe's empty literal: a streamed literal may sit inside
/// `UTF8 (...)`, `CATENATE (...)` or both.
const PROBE_CLOSERS: [&[u8]; 3] = [b"\r\n", b")\r\n", b"))\r\n"];

/// Parses the text of an APPEND up to (not including) the header of its first streamed literal
/// as if that literal were empty and the command ended after it: `text` is `tag APPEND mailbox
/// ...`, `literal8` says the header was `~{n}`. The literal's place is then the last message's
/// data, or its last CATENATE part.
pub fn parse_append_probe(text: &[u8], literal8: bool) -> Result<Command, ParseError> {
    let mut probe = Vec::with_capacity(text.len() + 10);
    probe.extend_from_slice(text);
    if literal8 {
        probe.push(b'~');
    }
    probe.extend_from_slice(b"{0}\r\n");
    let base = probe.len();
    let mut first = None;
    for closer in PROBE_CLOSERS {
        probe.truncate(base);
        probe.extend_from_slice(closer);
        match parse_command(&probe) {
            Ok(c) => return Ok(c),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    Err(first.unwrap_or(ParseError {
        tag: None,
        kind: ParseErrorKind::Syntax,
        message: "syntax error",
        offset: 0,
    }))
}

/// Where a streamed APPEND literal sits, which decides what text may follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendAt {
    /// A message's `literal` or `literal8`.
    Message,
    /// A message's `UTF8 (literal8)`: `)` follows.
    Utf8Message,
    /// A CATENATE `TEXT` part (or a URL given as a literal): more parts or `)` follow.
    CatPart,
    /// A CATENATE `UTF8 (literal8)` part: `)` and then more parts or `)` follow.
    Utf8CatPart,
}

/// The text after a streamed APPEND literal, parsed ([`parse_append_tail`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendTail {
    /// More parts of the CATENATE message the literal belonged to (empty otherwise).
    pub more_parts: Vec<CatPart>,
    /// Whether the message the literal belonged to is complete.
    pub message_done: bool,
    /// Messages that start in the text.
    pub messages: Vec<AppendMessage>,
}

/// Parses `text`, the text between a streamed literal of an APPEND (at `at`) and either the
/// command's end (`text` ends in CRLF; `header_at` is `None`) or the header of the next streamed
/// literal (at `text[header_at..]`); that literal is parsed as empty and is the last message's
/// data or its last CATENATE part.
pub fn parse_append_tail(
    at: AppendAt,
    text: &[u8],
    header_at: Option<usize>,
) -> Result<AppendTail, ParseError> {
    let prefix: &[u8] = match at {
        AppendAt::Message => b"x APPEND x {0}\r\n",
        AppendAt::Utf8Message => b"x APPEND x UTF8 (~{0}\r\n",
        AppendAt::CatPart => b"x APPEND x CATENATE (TEXT {0}\r\n",
        AppendAt::Utf8CatPart => b"x APPEND x CATENATE (UTF8 (~{0}\r\n",
    };
    let mut synth = prefix.to_vec();
    let command = match header_at {
        None => {
            synth.extend_from_slice(text);
            parse_command(&synth)
        }
        Some(at) => {
            synth.extend_from_slice(text.get(..at).unwrap_or_default());
            parse_append_probe(&synth, text.get(at) == Some(&b'~'))
        }
    };
    let no_tag = |mut e: ParseError| {
        e.tag = None;
        e.offset = e.offset.saturating_sub(prefix.len());
        e
    };
    let Command {
        body: CommandBody::Append { messages, .. },
        ..
    } = command.map_err(no_tag)?
    else {
        return Err(ParseError {
            tag: None,
            kind: ParseErrorKind::Syntax,
            message: "syntax error",
            offset: 0,
        });
    };
    let mut messages = messages.into_iter();
    let first = messages.next();
    let messages: Vec<AppendMessage> = messages.collect();
    let more_parts = match first.and_then(|m| m.catenate) {
        Some(parts) => parts.into_iter().skip(1).collect(),
        None => Vec::new(),
    };
    // The literal's own message ends unless it is a CATENATE still open at the next literal
    // (a message started in the text would have closed it).
    let message_done = !matches!(at, AppendAt::CatPart | AppendAt::Utf8CatPart)
        || !messages.is_empty()
        || header_at.is_none();
    Ok(AppendTail {
        more_parts,
        message_done,
        messages,
    })
}

/// `append = "APPEND" SP mailbox 1*append-message` (RFC 3501; RFC 3502 MULTIAPPEND repeats the message part).
fn append(i: &[u8]) -> PResult<'_, CommandBody> {
    let (rest, (_, mbox)) = (sp, mailbox).parse(i)?;
    let (rest, messages) = nom::multi::many1(append_message).parse(rest)?;
    Ok((
        rest,
        CommandBody::Append {
            mailbox: mbox,
            messages,
        },
    ))
}

/// `search-return-opt = "MIN" / "MAX" / "ALL" / "COUNT" / "SAVE"` (RFC 4731, 5182)
/// `/ "CONTEXT" / "UPDATE" / "PARTIAL" SP partial-range` (RFC 5267) `/ "RELEVANCY"` (RFC 6203)
pub(crate) fn search_return_opt(i: &[u8]) -> PResult<'_, SearchReturn> {
    if let Ok((rest, ())) = keyword("PARTIAL")(i) {
        return partial_range(rest);
    }
    ctx_override(
        "unknown SEARCH RETURN option",
        alt((
            value(SearchReturn::Min, keyword("MIN")),
            value(SearchReturn::Max, keyword("MAX")),
            value(SearchReturn::All, keyword("ALL")),
            value(SearchReturn::Count, keyword("COUNT")),
            value(SearchReturn::Save, keyword("SAVE")),
            value(SearchReturn::Update, keyword("UPDATE")),
            value(SearchReturn::Context, keyword("CONTEXT")),
            value(SearchReturn::Relevancy, keyword("RELEVANCY")),
        )),
    )
    .parse(i)
}

/// `SP partial-range`, `partial-range = nz-number ":" nz-number` (RFC 5267 5; "A range 500:400
/// is the same as 400:500"). The negative ranges of RFC 9394 are not part of RFC 5267 and are
/// refused, as Dovecot refuses them ("PARTIAL range broken").
fn partial_range(i: &[u8]) -> PResult<'_, SearchReturn> {
    const BROKEN: &str = "PARTIAL needs a range of two positions, as 1:50";
    // Past the PARTIAL keyword no other option can match: say what is wrong with the range.
    let broken = |e: nom::Err<PErr>| match e {
        nom::Err::Error(pe) => nom::Err::Failure(PErr {
            kind: ParseErrorKind::Syntax,
            message: BROKEN,
            remaining: pe.remaining,
        }),
        other => other,
    };
    let (rest, (_, a, _, b)) = (sp, nz_number, tag(&b":"[..]), nz_number)
        .parse(i)
        .map_err(broken)?;
    let (a, b) = (a.get(), b.get());
    Ok((
        rest,
        SearchReturn::Partial(PartialRange {
            lo: a.min(b),
            hi: a.max(b),
        }),
    ))
}

/// `search = "SEARCH" [search-return-opts] SP search-program` (RFC 4466/4731),
/// `search-program = ["CHARSET" SP charset SP] search-key *(SP search-key)`
fn search(i: &[u8], uid: bool) -> PResult<'_, CommandBody> {
    let (rest, returns) = opt(preceded(
        (sp, keyword("RETURN"), sp),
        delimited(
            tag(&b"("[..]),
            separated_list0(sp, search_return_opt),
            tag(&b")"[..]),
        ),
    ))
    .parse(i)?;
    let (rest, _) = sp(rest)?;
    let (rest, charset) = opt(map(
        (
            keyword("CHARSET"),
            sp,
            ctx("expected a charset name", astring),
            sp,
        ),
        |(_, _, c, _)| c.into_owned(),
    ))
    .parse(rest)?;
    let (rest, criteria) = search_program(rest)?;
    Ok((
        rest,
        CommandBody::Search {
            uid,
            returns,
            charset,
            criteria,
        },
    ))
}

/// `thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria`,
/// `search-criteria = charset 1*(SP search-key)` (RFC 5256 section 5): unlike SEARCH the charset
/// is mandatory and has no `CHARSET` keyword. An algorithm we do not implement is a syntax error
/// (BAD), as `thread-alg` names a registered algorithm.
fn thread(i: &[u8], uid: bool) -> PResult<'_, CommandBody> {
    let (rest, _) = sp(i)?;
    let (rest, name) = ctx("expected a threading algorithm", atom).parse(rest)?;
    let algorithm = match name.as_str().to_ascii_uppercase().as_str() {
        "ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
        "REFERENCES" => ThreadAlgorithm::References,
        "REFS" => ThreadAlgorithm::Refs,
        _ => {
            return Err(failure(
                rest,
                ParseErrorKind::Syntax,
                "unknown threading algorithm",
            ));
        }
    };
    let (rest, _) = sp(rest)?;
    let (rest, charset) = ctx("expected a charset name", astring).parse(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, criteria) = search_program(rest)?;
    Ok((
        rest,
        CommandBody::Thread {
            uid,
            algorithm,
            charset: charset.into_owned(),
            criteria,
        },
    ))
}

/// `command-select =/ "CANCELUPDATE" 1*(SP quoted)` (RFC 5267 5).
fn cancelupdate(i: &[u8]) -> PResult<'_, CommandBody> {
    let (rest, tags) =
        nom::multi::many1(preceded(sp, ctx("CANCELUPDATE takes quoted tags", quoted))).parse(i)?;
    if tags.len() > MAX_CANCELUPDATE_TAGS {
        return Err(failure(
            i,
            ParseErrorKind::TooMany,
            "too many tags for CANCELUPDATE",
        ));
    }
    Ok((
        rest,
        CommandBody::CancelUpdate {
            tags: tags.into_iter().map(Cow::into_owned).collect(),
        },
    ))
}

/// `fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att / "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]`
/// with `fetch-modifier = "CHANGEDSINCE" SP mod-sequence-value / "VANISHED"` (RFC 7162). VANISHED
/// is only valid in UID FETCH and only together with CHANGEDSINCE (RFC 7162 3.2.6: BAD otherwise).
fn fetch(i: &[u8], uid: bool) -> PResult<'_, CommandBody> {
    #[derive(Clone)]
    enum Modifier {
        ChangedSince(u64),
        Vanished,
    }
    let (rest, (_, set, _, attrs)) = (sp, sequence_set, sp, fetch_atts).parse(i)?;
    let modifier = |i| -> PResult<'_, Modifier> {
        ctx_override(
            "the only FETCH modifiers supported are CHANGEDSINCE and VANISHED",
            alt((
                map(
                    preceded((keyword("CHANGEDSINCE"), sp), mod_sequence_value),
                    Modifier::ChangedSince,
                ),
                value(Modifier::Vanished, keyword("VANISHED")),
            )),
        )
        .parse(i)
    };
    let (after, modifiers) = opt(preceded(
        sp,
        delimited(
            tag(&b"("[..]),
            separated_list1(sp, modifier),
            tag(&b")"[..]),
        ),
    ))
    .parse(rest)?;
    let (mut changed_since, mut vanished) = (None, false);
    for m in modifiers.into_iter().flatten() {
        match m {
            Modifier::ChangedSince(n) if changed_since.is_none() => changed_since = Some(n),
            Modifier::Vanished if !vanished => vanished = true,
            _ => {
                return Err(failure(
                    rest,
                    ParseErrorKind::Syntax,
                    "FETCH modifier given twice",
                ));
            }
        }
    }
    if vanished && (!uid || changed_since.is_none()) {
        return Err(failure(
            rest,
            ParseErrorKind::Syntax,
            "VANISHED needs UID FETCH and CHANGEDSINCE",
        ));
    }
    Ok((
        after,
        CommandBody::Fetch {
            uid,
            set,
            attrs,
            changed_since,
            vanished,
        },
    ))
}

/// `store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags`,
/// `store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag)))`,
/// `store-modifier = "UNCHANGEDSINCE" SP mod-sequence-valzer` (RFC 7162).
fn store(i: &[u8], uid: bool) -> PResult<'_, CommandBody> {
    let (rest, (_, set)) = (sp, sequence_set).parse(i)?;
    let (rest, unchanged_since) = opt(preceded(
        sp,
        delimited(
            (tag(&b"("[..]), keyword("UNCHANGEDSINCE"), sp),
            number64,
            tag(&b")"[..]),
        ),
    ))
    .parse(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, op) = ctx_override(
        "expected FLAGS, +FLAGS or -FLAGS",
        alt((
            value(StoreOp::Add, tag(&b"+"[..])),
            value(StoreOp::Remove, tag(&b"-"[..])),
            value(StoreOp::Replace, tag(&b""[..])),
        )),
    )
    .parse(rest)?;
    let (rest, silent) = ctx_override(
        "expected FLAGS, +FLAGS or -FLAGS",
        alt((
            value(true, keyword("FLAGS.SILENT")),
            value(false, keyword("FLAGS")),
        )),
    )
    .parse(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, flags) = alt((flag_list, separated_list1(sp, super::core::flag))).parse(rest)?;
    Ok((
        rest,
        CommandBody::Store {
            uid,
            set,
            op,
            silent,
            flags,
            unchanged_since,
        },
    ))
}

/// `copy = "COPY" SP sequence-set SP mailbox`, `move = "MOVE" SP sequence-set SP mailbox` (RFC 6851)
fn copy(i: &[u8], uid: bool, is_move: bool) -> PResult<'_, CommandBody> {
    let (rest, (_, set, _, mbox)) = (sp, sequence_set, sp, mailbox).parse(i)?;
    Ok((
        rest,
        if is_move {
            CommandBody::Move {
                uid,
                set,
                mailbox: mbox,
            }
        } else {
            CommandBody::Copy {
                uid,
                set,
                mailbox: mbox,
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(line: &str) -> Result<CommandBody, ParseError> {
        parse_command(format!("t {line}\r\n").as_bytes()).map(|c| c.body)
    }

    fn qresync_of(line: &str) -> Option<QresyncParams> {
        match body(line) {
            Ok(CommandBody::Select { qresync, .. } | CommandBody::Examine { qresync, .. }) => {
                qresync.map(|q| *q)
            }
            other => panic!("{line}: {other:?}"),
        }
    }

    fn returns_of(line: &str) -> Result<Option<Vec<SearchReturn>>, ParseError> {
        match body(line)? {
            CommandBody::Search { returns, .. } => Ok(returns),
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn context_return_options_of_rfc5267() {
        use SearchReturn as R;
        // RFC 5267 4.4: "A range 500:400 is the same as 400:500."
        assert_eq!(
            returns_of("UID SEARCH RETURN (PARTIAL 23500:24000) UNDELETED"),
            Ok(Some(vec![R::Partial(PartialRange {
                lo: 23500,
                hi: 24000
            })]))
        );
        assert_eq!(
            returns_of("SEARCH RETURN (partial 500:400 update Context COUNT) ALL"),
            Ok(Some(vec![
                R::Partial(PartialRange { lo: 400, hi: 500 }),
                R::Update,
                R::Context,
                R::Count
            ]))
        );
        // partial-range = nz-number ":" nz-number: no zero, no "*", no RFC 9394 negatives.
        for bad in [
            "SEARCH RETURN (PARTIAL 0:10) ALL",
            "SEARCH RETURN (PARTIAL 1:*) ALL",
            "SEARCH RETURN (PARTIAL -1:-10) ALL",
            "SEARCH RETURN (PARTIAL 5) ALL",
            "SEARCH RETURN (PARTIAL) ALL",
            "SEARCH RETURN (PARTIAL 1:4294967296) ALL",
        ] {
            let e = returns_of(bad).expect_err(bad);
            assert_eq!(
                e.tag.as_ref().map(crate::imap::proto::types::Tag::as_str),
                Some("t"),
                "{bad}"
            );
        }
    }

    #[test]
    fn sort_return_options_of_rfc5267() {
        use SearchReturn as R;
        let returns = |line: &str| match body(line) {
            Ok(CommandBody::Sort { returns, .. }) => returns,
            other => panic!("{line}: {other:?}"),
        };
        assert_eq!(returns("SORT (DATE) UTF-8 ALL"), None);
        assert_eq!(
            returns("UID SORT RETURN () (REVERSE DATE) UTF-8 ALL"),
            Some(vec![])
        );
        assert_eq!(
            returns("SORT RETURN (PARTIAL 1:50 UPDATE MIN) (REVERSE DATE) UTF-8 ALL"),
            Some(vec![
                R::Partial(PartialRange { lo: 1, hi: 50 }),
                R::Update,
                R::Min
            ])
        );
        for bad in [
            "SORT RETURN (DATE) UTF-8 ALL",
            "SORT RETURN (MIN)(DATE) UTF-8 ALL",
            "SORT RETURN (PARTIAL -1:-50) (DATE) UTF-8 ALL",
            "SORT RETURN MIN (DATE) UTF-8 ALL",
        ] {
            assert!(body(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cancelupdate_takes_quoted_tags() {
        assert_eq!(
            body("CANCELUPDATE \"B01\" \"x\\\\y\""),
            Ok(CommandBody::CancelUpdate {
                tags: vec![b"B01".to_vec(), b"x\\y".to_vec()]
            })
        );
        for bad in [
            "CANCELUPDATE",
            "CANCELUPDATE B01",
            "CANCELUPDATE \"B01\" B02",
            "CANCELUPDATE {3}\r\nB01",
        ] {
            assert!(body(bad).is_err(), "{bad}");
        }
        let many = format!("CANCELUPDATE{}", " \"a\"".repeat(MAX_CANCELUPDATE_TAGS + 1));
        assert_eq!(
            body(&many).map_err(|e| e.kind),
            Err(ParseErrorKind::TooMany)
        );
    }

    #[test]
    fn thread_forms_of_rfc5256() {
        use crate::imap::proto::types::SearchKey;
        // RFC 5256 section 3's examples.
        match body("THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000") {
            Ok(CommandBody::Thread {
                uid: false,
                algorithm: ThreadAlgorithm::OrderedSubject,
                charset,
                criteria: SearchKey::Since(_),
            }) => assert_eq!(charset, b"UTF-8"),
            other => panic!("{other:?}"),
        }
        match body("UID thread refs \"us-ascii\" TEXT \"gewp\" ALL") {
            Ok(CommandBody::Thread {
                uid: true,
                algorithm: ThreadAlgorithm::Refs,
                charset,
                criteria: SearchKey::And(keys),
            }) => {
                assert_eq!(charset, b"us-ascii");
                assert_eq!(keys.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            body("THREAD REFERENCES UTF-8 ALL"),
            Ok(CommandBody::Thread {
                algorithm: ThreadAlgorithm::References,
                ..
            })
        ));
        for bad in [
            "THREAD",
            "THREAD REFERENCES",
            "THREAD REFERENCES UTF-8",
            "THREAD REFERENCES ALL",
            "THREAD XYZZY UTF-8 ALL",
            "THREAD (REFERENCES) UTF-8 ALL",
            "THREAD REFERENCES UTF-8 ALL ",
            "UID THREAD  REFS UTF-8 ALL",
        ] {
            assert!(body(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn select_qresync_forms_of_rfc7162() {
        // RFC 7162 3.2.5 examples.
        let q = qresync_of("SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))");
        let q = q.expect("parsed");
        assert_eq!(
            (q.uidvalidity, q.modseq),
            (67_890_007, 20_050_715_194_045_000)
        );
        let known = q.known_uids.expect("known uids").resolve(0, None);
        assert_eq!(known.ranges(), &[41..=41, 43..=211, 214..=541]);
        assert!(q.seq_match.is_none());

        let q = qresync_of(
            "EXAMINE INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500 15000,22500)))",
        )
        .expect("parsed");
        let (seqs, uids) = q.seq_match.expect("seq match");
        assert_eq!(
            seqs.resolve(0, None).iter().collect::<Vec<_>>(),
            [5000, 7500]
        );
        assert_eq!(
            uids.resolve(0, None).iter().collect::<Vec<_>>(),
            [15000, 22500]
        );

        let q = qresync_of("SELECT INBOX (QRESYNC (1 2))").expect("parsed");
        assert!(q.known_uids.is_none() && q.seq_match.is_none());
        // Seq match data without known UIDs is what the ABNF allows too.
        let q = qresync_of("SELECT INBOX (QRESYNC (1 2 (1 5)))").expect("parsed");
        assert!(q.known_uids.is_none() && q.seq_match.is_some());
        // Both parameters, in either order.
        assert!(matches!(
            body("SELECT INBOX (CONDSTORE QRESYNC (1 2 1:5))"),
            Ok(CommandBody::Select {
                condstore: true,
                qresync: Some(_),
                ..
            })
        ));
        assert!(matches!(
            body("select INBOX (qresync (1 2) condstore)"),
            Ok(CommandBody::Select {
                condstore: true,
                qresync: Some(_),
                ..
            })
        ));
    }

    #[test]
    fn bad_select_parameters_are_refused() {
        for line in [
            "SELECT INBOX (QRESYNC (0 2))",     // uidvalidity is nz-number
            "SELECT INBOX (QRESYNC (1 0))",     // mod-sequence-value is not zero
            "SELECT INBOX (QRESYNC (1 2 1:*))", // no * in known-uids
            "SELECT INBOX (QRESYNC (1 2 1:5 (1:* 1:5)))",
            "SELECT INBOX (QRESYNC (1 2 $))",
            "SELECT INBOX (QRESYNC (1))",
            "SELECT INBOX (QRESYNC 1 2)",
            "SELECT INBOX (QRESYNC (1 2 1:5 (1 2))",
            "SELECT INBOX (CONDSTORE CONDSTORE)",
            "SELECT INBOX (QRESYNC (1 2) QRESYNC (1 2))",
            "SELECT INBOX (FOO)",
            "SELECT INBOX ()",
        ] {
            assert!(body(line).is_err(), "{line} was accepted");
        }
    }

    #[test]
    fn fetch_modifiers_of_rfc7162() {
        let vanished = |line: &str| match body(line) {
            Ok(CommandBody::Fetch {
                changed_since,
                vanished,
                ..
            }) => Some((changed_since, vanished)),
            Ok(other) => panic!("{line}: {other:?}"),
            Err(_) => None,
        };
        assert_eq!(
            vanished("UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)"),
            Some((Some(12345), true))
        );
        assert_eq!(
            vanished("uid fetch 1:* FLAGS (vanished changedsince 7)"),
            Some((Some(7), true))
        );
        assert_eq!(
            vanished("FETCH 1:* FLAGS (CHANGEDSINCE 7)"),
            Some((Some(7), false))
        );
        // RFC 7162 3.2.6: VANISHED only in UID FETCH and only with CHANGEDSINCE.
        assert_eq!(vanished("FETCH 1:* FLAGS (CHANGEDSINCE 7 VANISHED)"), None);
        assert_eq!(vanished("UID FETCH 1:* FLAGS (VANISHED)"), None);
        assert_eq!(
            vanished("UID FETCH 1:* FLAGS (CHANGEDSINCE 7 CHANGEDSINCE 8)"),
            None
        );
        assert_eq!(vanished("UID FETCH 1:* FLAGS (CHANGEDSINCE 0)"), None);
        assert_eq!(vanished("UID FETCH 1:* FLAGS ()"), None);
    }
}
