//! The grammar of RFC 5228 section 8 as nom 8 parsers over the script text, into an untyped
//! tree of commands, arguments and tests; [`super::compile`] checks it against each command's
//! signature and builds the typed AST.
//!
//! - [`lexical`]: the tokens of section 8.1 (white space and comments, identifiers, tags,
//!   numbers, quoted and multi-line strings);
//! - [`grammar`]: the rules of section 8.2 (commands, blocks, arguments, tests, test lists,
//!   string lists), one function per ABNF rule, white space skipped before each token.
//!
//! The script is complete in memory, so the parsers are nom's *complete* ones: running out of
//! input is a syntax error. The grammar is LL(1): once a rule has seen its first token it is
//! committed, and every error after that is a `nom::Err::Failure` carrying its final sentence,
//! so nothing is re-parsed and the first error in the script is the one reported.
//!
//! Errors become a [`CompileError`] with a 1-based line and column (in bytes) here, in
//! [`parse`] and nowhere else. Nesting is bounded by [`SIEVE_MAX_NESTING`] and bracketed string
//! lists by [`SIEVE_MAX_STRING_LIST`], so neither this parser nor the interpreter can be driven
//! into deep recursion; the script size is bounded by the caller ([`super::compile`]).
//!
//! [`SIEVE_MAX_NESTING`]: crate::limits::SIEVE_MAX_NESTING
//! [`SIEVE_MAX_STRING_LIST`]: crate::limits::SIEVE_MAX_STRING_LIST

mod grammar;
mod lexical;
#[cfg(test)]
mod tests;

use nom::error::{ErrorKind, ParseError as NomParseError};

use super::CompileError;

/// Where a token starts: 1-based line and column (in bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// Line.
    pub line: u32,
    /// Column.
    pub column: u32,
}

impl Pos {
    /// An error at this position.
    pub fn error(self, message: impl Into<String>) -> CompileError {
        CompileError {
            line: self.line,
            column: self.column,
            message: message.into(),
        }
    }
}

/// One argument as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// `string-list`: one string (`list == false`) or a bracketed list.
    Strings {
        /// The strings.
        values: Vec<String>,
        /// Written as `[ ... ]`.
        list: bool,
    },
    /// `number`.
    Number(u64),
    /// `tag` (lowercased, without the colon).
    Tag(String),
}

/// `test = identifier arguments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTest {
    /// The lowercased identifier.
    pub name: String,
    /// Where it starts.
    pub pos: Pos,
    /// Its arguments.
    pub args: Vec<(Arg, Pos)>,
    /// A test or test list after the arguments.
    pub tests: Vec<RawTest>,
}

/// `command = identifier arguments (";" / block)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawCommand {
    /// The lowercased identifier.
    pub name: String,
    /// Where it starts.
    pub pos: Pos,
    /// Its arguments.
    pub args: Vec<(Arg, Pos)>,
    /// A test or test list after the arguments (`if`, `elsif`).
    pub tests: Vec<RawTest>,
    /// The block, if the command ends with one.
    pub block: Option<Vec<RawCommand>>,
}

/// Parses a whole script into its commands.
pub fn parse(src: &str) -> Result<Vec<RawCommand>, CompileError> {
    let cx = Cx::new(src);
    match grammar::start(&cx, src) {
        Ok((_, commands)) => Ok(commands),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(cx.error(e)),
        // Complete parsers never ask for more input; answer as for a truncated script.
        Err(nom::Err::Incomplete(_)) => Err(cx.error(SErr {
            message: "unexpected end of the script".to_string(),
            remaining: 0,
        })),
    }
}

/// The nom error of every parser here. A recoverable miss (`nom::Err::Error`, an alternative
/// that did not match) has an empty message and costs no allocation; the sentence is set once
/// the grammar knows the script is wrong (`nom::Err::Failure`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SErr {
    /// What is wrong, for the user (may quote the script: it goes back to its author).
    pub(super) message: String,
    /// Length of the input left where the error is: the position is `len - remaining`.
    pub(super) remaining: usize,
}

impl<'a> NomParseError<&'a str> for SErr {
    fn from_error_kind(input: &'a str, _kind: ErrorKind) -> Self {
        SErr {
            message: String::new(),
            remaining: input.len(),
        }
    }

    fn append(_input: &'a str, _kind: ErrorKind, other: Self) -> Self {
        other
    }

    fn or(self, other: Self) -> Self {
        // Of two failed alternatives, keep the one that got further.
        if self.remaining < other.remaining {
            self
        } else {
            other
        }
    }
}

/// Result of every parser here.
pub(super) type SResult<'a, O> = nom::IResult<&'a str, O, SErr>;

/// A recoverable miss at `at`: the caller may try another alternative.
pub(super) fn miss(at: &str) -> nom::Err<SErr> {
    nom::Err::Error(SErr {
        message: String::new(),
        remaining: at.len(),
    })
}

/// The script is wrong at `at`: no alternative is tried after this.
pub(super) fn fail(at: &str, message: impl Into<String>) -> nom::Err<SErr> {
    nom::Err::Failure(SErr {
        message: message.into(),
        remaining: at.len(),
    })
}

/// What turns an input position (the text left) into a line and column: the offsets at which
/// lines start, found once per script.
pub(super) struct Cx {
    /// Length of the whole script.
    len: usize,
    /// Offset of the first byte of each line (the first is 0).
    line_starts: Vec<usize>,
}

impl Cx {
    fn new(src: &str) -> Cx {
        let line_starts = std::iter::once(0)
            .chain(memchr::memchr_iter(b'\n', src.as_bytes()).map(|k| k + 1))
            .collect();
        Cx {
            len: src.len(),
            line_starts,
        }
    }

    /// The position of `rest`, a suffix of the script.
    pub(super) fn pos(&self, rest: &str) -> Pos {
        self.pos_at(self.len.saturating_sub(rest.len()))
    }

    fn pos_at(&self, offset: usize) -> Pos {
        // Lines counted by LF, so CRLF and bare-LF scripts number their lines alike.
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        Pos {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(offset - start + 1).unwrap_or(u32::MAX),
        }
    }

    fn error(&self, e: SErr) -> CompileError {
        let message = if e.message.is_empty() {
            "syntax error".to_string()
        } else {
            e.message
        };
        self.pos_at(self.len.saturating_sub(e.remaining))
            .error(message)
    }
}
