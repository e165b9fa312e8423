//! nom 8 parsers for IMAP commands, one function per ABNF rule.
//!
//! Input is one whole command as framed by the [`Receiver`](super::receive::Receiver):
//! the command line(s) including the final CRLF, with every literal's data inline
//! after its `{n}\r\n` header. Parsing therefore uses nom's *complete* parsers:
//! running out of input is a syntax error here, never "need more data" (that
//! question is the receiver's).
//!
//! Errors: every parser fails with `PErr`, which records how far it got and,
//! through `ctx`, a fixed English sentence for the tagged BAD. The sentences
//! are `&'static str`, so no client byte can ever be echoed into a response.
//! Limits (search depth, set size, numbers) fail with `nom::Err::Failure` so
//! that no alternative is tried after a limit was hit.

mod command;
mod core;
mod fetch;
mod metadata;
mod notify;
mod sasl;
mod search;
mod sort;

pub use command::parse_command;
pub use command::{AppendAt, AppendTail, parse_append_probe, parse_append_tail};
pub use metadata::{EntryUse, entry_name};
pub use sasl::{SaslResponse, parse_sasl_response};

use super::date::{Date, DateTime};
use super::sequence::SequenceSet;

use nom::IResult;
use nom::error::{ErrorKind, ParseError as NomParseError};

use super::types::Tag;

/// What kind of problem a command had; the session maps all of them to BAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The command does not follow the grammar.
    Syntax,
    /// The command name is not one mailcove knows.
    UnknownCommand,
    /// SEARCH keys nest deeper than `MAX_SEARCH_DEPTH`.
    TooDeep,
    /// A sequence set has more than `MAX_SEQUENCE_SET_RANGES` items, or an
    /// argument list exceeds its limit (ID fields).
    TooMany,
    /// A number does not fit its type (32-bit, or 63-bit for mod-sequences).
    NumberTooLarge,
    /// The line has no valid tag; the answer must be untagged (`* BAD`).
    NoTag,
}

/// A command that could not be parsed, with the tag when it was readable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// The tag, to answer `tag BAD ...`; `None` means answer `* BAD ...`.
    pub tag: Option<Tag>,
    /// The kind of problem.
    pub kind: ParseErrorKind,
    /// A human sentence for the BAD response text (fixed text, never client bytes).
    pub message: &'static str,
    /// Byte offset in the command where parsing stopped, for logs.
    pub offset: usize,
}

/// Runs one value parser on the whole of `input` (nothing may follow it), for
/// callers outside a command: the fuzz targets and tests of single rules.
fn whole<'a, O>(
    input: &'a [u8],
    mut parser: impl FnMut(&'a [u8]) -> PResult<'a, O>,
) -> Result<O, ParseError> {
    let to_error = |pe: PErr| ParseError {
        tag: None,
        kind: pe.kind,
        message: if pe.message.is_empty() {
            "syntax error"
        } else {
            pe.message
        },
        offset: input.len().saturating_sub(pe.remaining),
    };
    match parser(input) {
        Ok(([], value)) => Ok(value),
        Ok((rest, _)) => Err(to_error(PErr {
            kind: ParseErrorKind::Syntax,
            message: "unexpected text after the value",
            remaining: rest.len(),
        })),
        Err(nom::Err::Error(pe) | nom::Err::Failure(pe)) => Err(to_error(pe)),
        Err(nom::Err::Incomplete(_)) => Err(to_error(PErr {
            kind: ParseErrorKind::Syntax,
            message: "",
            remaining: 0,
        })),
    }
}

/// Parses exactly one `sequence-set` (RFC 3501, with RFC 5182 `$`), e.g. `1:4,7,*`.
pub fn parse_sequence_set(input: &[u8]) -> Result<SequenceSet, ParseError> {
    whole(input, core::sequence_set)
}

/// Parses exactly one SEARCH `date` (`1-Feb-1994`, optionally quoted).
pub fn parse_date(input: &[u8]) -> Result<Date, ParseError> {
    whole(input, core::date)
}

/// Parses exactly one quoted `date-time` (`"17-Jul-1996 02:44:25 -0700"`).
pub fn parse_date_time(input: &[u8]) -> Result<DateTime, ParseError> {
    whole(input, core::date_time)
}

/// Parses exactly one `search-program` (the keys of SEARCH after any CHARSET, ANDed), e.g.
/// `SEEN BEFORE 1-Jan-2026`: what `mailcove expunge` takes from its command line, by the same
/// rules (and limits) as the SEARCH command.
pub fn parse_search_program(input: &[u8]) -> Result<super::types::SearchKey, ParseError> {
    whole(input, search::search_program)
}

/// The nom error type of every parser here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PErr {
    pub(crate) kind: ParseErrorKind,
    pub(crate) message: &'static str,
    /// Length of the input left where the error happened: smaller means further.
    pub(crate) remaining: usize,
}

impl<'a> NomParseError<&'a [u8]> for PErr {
    fn from_error_kind(input: &'a [u8], _kind: ErrorKind) -> Self {
        PErr {
            kind: ParseErrorKind::Syntax,
            message: "",
            remaining: input.len(),
        }
    }

    fn append(_input: &'a [u8], _kind: ErrorKind, other: Self) -> Self {
        other
    }

    fn or(self, other: Self) -> Self {
        // Of two failed alternatives, report the one that got further: its
        // message names what was wrong more precisely.
        if self.remaining < other.remaining {
            self
        } else {
            other
        }
    }
}

/// Result of every parser in this module.
pub(crate) type PResult<'a, O> = IResult<&'a [u8], O, PErr>;

/// A recoverable syntax error at `input` with `message`.
pub(crate) fn error(input: &[u8], message: &'static str) -> nom::Err<PErr> {
    nom::Err::Error(PErr {
        kind: ParseErrorKind::Syntax,
        message,
        remaining: input.len(),
    })
}

/// An unrecoverable error (a limit was hit): alternatives are not tried.
pub(crate) fn failure(input: &[u8], kind: ParseErrorKind, message: &'static str) -> nom::Err<PErr> {
    nom::Err::Failure(PErr {
        kind,
        message,
        remaining: input.len(),
    })
}

/// Gives errors of `parser` the sentence `message` unless a deeper parser already set one.
pub(crate) fn ctx<'a, O>(
    message: &'static str,
    mut parser: impl nom::Parser<&'a [u8], Output = O, Error = PErr>,
) -> impl FnMut(&'a [u8]) -> PResult<'a, O> {
    move |i| {
        parser.parse(i).map_err(|e| {
            e.map(|mut pe| {
                if pe.message.is_empty() {
                    pe.message = message;
                }
                pe
            })
        })
    }
}

/// Gives errors of `parser` the sentence `message`, replacing deeper ones: for
/// places where the deeper sentence would be too generic (a keyword list).
pub(crate) fn ctx_override<'a, O>(
    message: &'static str,
    mut parser: impl nom::Parser<&'a [u8], Output = O, Error = PErr>,
) -> impl FnMut(&'a [u8]) -> PResult<'a, O> {
    move |i| {
        parser.parse(i).map_err(|e| match e {
            nom::Err::Error(mut pe) => {
                pe.message = message;
                nom::Err::Error(pe)
            }
            other => other,
        })
    }
}
