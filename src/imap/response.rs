//! Every IMAP command failure as one enum, mapped to its tagged `NO`/`BAD` with an RFC 5530 /
//! RFC 3501 response code in one place: handler errors, state errors, parse and framing errors
//! (which may be untagged when no tag could be read) all go through [`ImapError::write`]. Internal errors reach the client as one fixed sentence;
//! their details go to the log.

use tracing::error;

use super::proto::encode::{self, Code, Status};
use super::proto::parse::ParseError;
use super::proto::receive::FrameError;
use super::proto::types::Tag;
use super::search::SearchError;
use crate::storage::{MetadataLimit, StorageError};

/// The charsets `[BADCHARSET (...)]` names: those
/// [`charset_supported`](crate::imap::search::charset_supported) accepts.
const SEARCH_CHARSETS: [&str; 2] = ["UTF-8", "US-ASCII"];

/// Why a command failed.
#[derive(Debug)]
pub enum ImapError {
    /// Syntax error or unknown command (`BAD`); the text is fixed, never client bytes.
    Parse(&'static str),
    /// A literal over the size limit (RFC 7888 section 5): `{n}` is refused before the `+` with
    /// `NO [TOOBIG]` (the client sends no data); `{n+}` is discarded and answered `BAD [TOOBIG]`.
    LiteralTooBig {
        /// `{n}` rather than `{n+}`.
        synchronizing: bool,
    },
    /// The command text was longer than the line limit (`BAD`).
    LineTooLong,
    /// Command not valid in the current state (`BAD`).
    WrongState(&'static str),
    /// STARTTLS not possible here.
    TlsUnavailable(&'static str),
    /// Plaintext login on a connection that is neither TLS nor loopback.
    PrivacyRequired,
    /// Wrong user name or password (deliberately indistinguishable).
    AuthFailed,
    /// The client cancelled AUTHENTICATE with `*` (RFC 3501 6.2.2: tagged BAD).
    AuthCancelled,
    /// Malformed SASL data.
    BadSasl,
    /// SASL mechanism not offered.
    UnknownMechanism,
    /// Password check unavailable for now.
    AuthTemp,
    /// The command or option is not implemented by this server.
    NotSupported(&'static str),
    /// An extension's syntax used before the client enabled it (RFC 7162 3.2.3: QRESYNC needs
    /// `ENABLE QRESYNC` first; `BAD`).
    NotEnabled(&'static str),
    /// A mailbox name that is not valid modified UTF-7 or not acceptable.
    BadMailboxName(&'static str),
    /// A message sequence number beyond the mailbox (RFC 3501 9: `BAD`).
    BadSequence,
    /// A flag the client may not set (`\Recent`, unknown `\Flag`).
    BadFlag(&'static str),
    /// The operation is not allowed; the text says why.
    Cannot(&'static str),
    /// DELETE of a name whose children keep it (`NO [HASCHILDREN]`, RFC 9051 7.1); sent to
    /// IMAP4rev2 sessions, which know the code.
    HasChildren(&'static str),
    /// SEARCH with a CHARSET this server does not search in (RFC 3501 6.4.4: `NO [BADCHARSET]`
    /// listing the charsets it does support).
    BadCharset,
    /// The global in-flight message budget is spent (`NO [LIMIT]`): try again later.
    InFlightLimit,
    /// The user may not do this (`NO [NOPERM]`, RFC 5530); the text says what.
    NoPerm(&'static str),
    /// GETQUOTA of a quota root that does not exist (RFC 9208 4.1.1: `NO`, with `[NONEXISTENT]`).
    NoQuotaRoot,
    /// COMPRESS while DEFLATE is already on (`NO [COMPRESSIONACTIVE]`, RFC 4978 section 3).
    CompressionActive,
    /// COMPRESS with an algorithm other than DEFLATE (`NO`, as Dovecot answers).
    UnknownCompression,
    /// FETCH BINARY of a part whose Content-Transfer-Encoding is unknown (RFC 3516 4.3:
    /// `NO [UNKNOWN-CTE]`).
    UnknownCte,
    /// FETCH BINARY of a part whose encoded data is invalid (Dovecot: `NO [PARSE]`).
    InvalidContent,
    /// A per-command limit was reached (`NO [LIMIT]`, RFC 5530); the text says which.
    Limit(&'static str),
    /// A CATENATE URL that names nothing this user may copy (`NO [BADURL "url"]`, RFC 4469
    /// 4.1). Missing, foreign and malformed read the same, so nothing about others leaks.
    BadUrl(String),
    /// NOTIFY SET with an event this server does not know (RFC 5465 3.1: `NO [BADEVENT (...)]`
    /// listing every supported event).
    BadEvent,
    /// NOTIFY SET asking for more than the server will watch (`NO [NOTIFICATIONOVERFLOW]`).
    NotificationOverflow(&'static str),
    /// A storage failure; `trycreate` asks for `[TRYCREATE]` on a missing destination.
    Storage {
        /// The failure.
        error: StorageError,
        /// COPY/MOVE/APPEND destination: a missing mailbox answers `[TRYCREATE]`.
        trycreate: bool,
    },
}

impl From<StorageError> for ImapError {
    fn from(error: StorageError) -> Self {
        ImapError::Storage {
            error,
            trycreate: false,
        }
    }
}

/// A failed SEARCH, SORT or THREAD (RFC 3501 6.4.4, RFC 5256): an unsupported charset is
/// `NO [BADCHARSET]`, a bad search string or key tree is BAD, storage failures as any other.
impl From<SearchError> for ImapError {
    fn from(e: SearchError) -> Self {
        match e {
            SearchError::BadCharset => ImapError::BadCharset,
            SearchError::InvalidString => {
                ImapError::Parse("Invalid search string for the given charset.")
            }
            SearchError::TooDeep => ImapError::Parse("Search keys are nested too deeply."),
            SearchError::Storage(e) => e.into(),
        }
    }
}

impl From<&ParseError> for ImapError {
    fn from(e: &ParseError) -> Self {
        ImapError::Parse(e.message)
    }
}

impl From<&FrameError> for ImapError {
    fn from(e: &FrameError) -> Self {
        match e {
            FrameError::LiteralTooBig { synchronizing, .. } => ImapError::LiteralTooBig {
                synchronizing: *synchronizing,
            },
            FrameError::LineTooLong { .. } => ImapError::LineTooLong,
        }
    }
}

impl ImapError {
    /// A storage failure on a COPY/MOVE/APPEND destination.
    pub fn destination(error: StorageError) -> Self {
        ImapError::Storage {
            error,
            trycreate: true,
        }
    }

    /// Status, response code and text of the tagged answer.
    pub fn answer(&self) -> (Status, Option<Code>, String) {
        use ImapError as E;
        match self {
            E::Parse(m) => (Status::Bad, None, (*m).to_string()),
            E::LiteralTooBig { synchronizing } => (
                if *synchronizing {
                    Status::No
                } else {
                    Status::Bad
                },
                Some(Code::TooBig),
                "Literal too big".into(),
            ),
            E::LineTooLong => (Status::Bad, None, "Command line too long".into()),
            E::WrongState(m) => (
                Status::Bad,
                None,
                format!("Command not valid in this state: {m}."),
            ),
            E::TlsUnavailable(m) => (Status::Bad, None, format!("STARTTLS not available: {m}.")),
            E::PrivacyRequired => (
                Status::No,
                Some(Code::PrivacyRequired),
                "Plaintext authentication disallowed on non-secure (SSL/TLS) connections.".into(),
            ),
            E::AuthFailed => (
                Status::No,
                Some(Code::AuthenticationFailed),
                "Authentication failed.".into(),
            ),
            E::AuthCancelled => (Status::Bad, None, "Authentication cancelled.".into()),
            E::BadSasl => (
                Status::Bad,
                None,
                "Invalid base64 or malformed SASL response.".into(),
            ),
            E::UnknownMechanism => (
                Status::No,
                None,
                "Unsupported authentication mechanism.".into(),
            ),
            E::AuthTemp => (
                Status::No,
                Some(Code::Unavailable),
                "Temporary authentication failure, try again later.".into(),
            ),
            E::NotSupported(what) => (Status::Bad, None, format!("{what} is not supported.")),
            E::NotEnabled(what) => (Status::Bad, None, format!("{what} is not enabled.")),
            E::BadMailboxName(why) => (
                Status::No,
                Some(Code::Cannot),
                format!("Invalid mailbox name: {why}."),
            ),
            E::BadSequence => (
                Status::Bad,
                None,
                "Invalid messageset: message number out of range.".into(),
            ),
            E::BadFlag(why) => (Status::Bad, None, format!("Invalid flag: {why}.")),
            E::Cannot(why) => (Status::No, Some(Code::Cannot), format!("{why}.")),
            E::HasChildren(why) => (Status::No, Some(Code::HasChildren), format!("{why}.")),
            E::BadCharset => (
                Status::No,
                Some(Code::BadCharset(
                    SEARCH_CHARSETS.iter().map(|c| (*c).to_string()).collect(),
                )),
                "Unsupported charset.".into(),
            ),
            E::InFlightLimit => (
                Status::No,
                Some(Code::Limit),
                "Too many messages being received, try again later.".into(),
            ),
            E::NoPerm(why) => (Status::No, Some(Code::NoPerm), format!("{why}.")),
            E::NoQuotaRoot => (
                Status::No,
                Some(Code::NonExistent),
                "Quota root doesn't exist.".into(),
            ),
            // RFC 4978 section 3 lists BAD for "COMPRESS already active" and NO with
            // COMPRESSIONACTIVE for compression by another layer; Dovecot answers NO
            // [COMPRESSIONACTIVE] to a second COMPRESS, and so does mailcove (issue 16).
            E::CompressionActive => (
                Status::No,
                Some(Code::CompressionActive),
                "DEFLATE active via COMPRESS.".into(),
            ),
            // RFC 4978 section 3 says BAD for an unknown argument; Dovecot answers NO. Either
            // way the client must not compress; NO keeps clients written against Dovecot happy.
            E::UnknownCompression => (Status::No, None, "Unknown compression mechanism.".into()),
            E::UnknownCte => (
                Status::No,
                Some(Code::UnknownCte),
                "Unknown Content-Transfer-Encoding.".into(),
            ),
            E::InvalidContent => (
                Status::No,
                Some(Code::Parse),
                "Invalid data in MIME part.".into(),
            ),
            E::Limit(what) => (Status::No, Some(Code::Limit), format!("{what}.")),
            E::BadUrl(url) => (
                Status::No,
                Some(Code::BadUrl(url.clone())),
                "CATENATE URL could not be used.".into(),
            ),
            E::BadEvent => (
                Status::No,
                Some(Code::BadEvent(
                    &crate::imap::proto::types::NotifyEvent::SUPPORTED,
                )),
                "Unsupported NOTIFY event.".into(),
            ),
            E::NotificationOverflow(why) => (
                Status::No,
                Some(Code::NotificationOverflow),
                format!("{why}."),
            ),
            E::Storage { error, trycreate } => storage_answer(error, *trycreate),
        }
    }

    /// Queues the answer: tagged, or untagged when the command's tag could not be read.
    pub fn write(&self, out: &mut Vec<u8>, tag: Option<&Tag>) {
        let (status, code, text) = self.answer();
        encode::tagged_or_untagged(out, tag, status, code.as_ref(), &text);
    }

    /// Client mistakes count towards the bad-command limit.
    pub fn counts_as_bad(&self) -> bool {
        matches!(
            self,
            ImapError::Parse(_)
                | ImapError::LiteralTooBig { .. }
                | ImapError::LineTooLong
                | ImapError::WrongState(_)
                | ImapError::NotEnabled(_)
                | ImapError::BadSequence
                | ImapError::BadFlag(_)
        )
    }
}

/// The one mapping of storage failures to IMAP answers (Dovecot's wording where it has one).
/// "Does not exist" never reveals more than that, and internal details go to the log only.
fn storage_answer(e: &StorageError, trycreate: bool) -> (Status, Option<Code>, String) {
    use StorageError as S;
    match e {
        S::NonExistent if trycreate => (
            Status::No,
            Some(Code::TryCreate),
            "Mailbox doesn't exist.".into(),
        ),
        S::NonExistent => (
            Status::No,
            Some(Code::NonExistent),
            "Mailbox doesn't exist.".into(),
        ),
        S::AlreadyExists => (
            Status::No,
            Some(Code::AlreadyExists),
            "Mailbox already exists.".into(),
        ),
        S::InvalidName(why) => (
            Status::No,
            Some(Code::Cannot),
            format!("Invalid mailbox name: {why}."),
        ),
        S::OverQuota => (
            Status::No,
            Some(Code::OverQuota),
            "Quota exceeded (mailbox for user is full).".into(),
        ),
        S::NoSpace => (
            Status::No,
            Some(Code::OverQuota),
            "Not enough disk space.".into(),
        ),
        S::InUse => (
            Status::No,
            Some(Code::InUse),
            "Mailbox is in use, try again later.".into(),
        ),
        S::Expunged => (
            Status::No,
            Some(Code::ExpungeIssued),
            "Some of the requested messages no longer exist.".into(),
        ),
        S::ReadOnly => (
            Status::No,
            Some(Code::Cannot),
            "Mailbox is read-only.".into(),
        ),
        S::Cannot(why) => (Status::No, Some(Code::Cannot), format!("{why}.")),
        S::Invalid(why) => (Status::No, Some(Code::Cannot), format!("{why}.")),
        S::Temporary(detail) => {
            error!(error = %detail, "storage failure");
            (
                Status::No,
                Some(Code::Unavailable),
                "Internal error occurred. Refer to server log for more information.".into(),
            )
        }
        S::Permission(detail) => {
            error!(error = %detail, "storage failure: permission denied");
            (
                Status::No,
                Some(Code::Unavailable),
                "Internal error occurred. Refer to server log for more information.".into(),
            )
        }
        S::Corrupt(detail) => {
            error!(error = %detail, "corrupt mailbox data");
            (
                Status::No,
                Some(Code::Corruption),
                "Internal error occurred. Refer to server log for more information.".into(),
            )
        }
        S::Metadata(MetadataLimit::MaxSize(max)) => (
            Status::No,
            Some(Code::MetadataMaxSize(*max)),
            "Metadata entry value is too large.".into(),
        ),
        S::Metadata(MetadataLimit::TooMany) => (
            Status::No,
            Some(Code::MetadataTooMany),
            "Too many metadata entries.".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_search_charset_is_a_no_naming_the_supported_ones() {
        let (status, code, _) = ImapError::BadCharset.answer();
        assert_eq!(status, Status::No);
        let Some(Code::BadCharset(list)) = code else {
            panic!("no BADCHARSET code: {code:?}");
        };
        assert_eq!(list, ["UTF-8", "US-ASCII"]);
        for c in &list {
            assert!(
                crate::imap::search::charset_supported(Some(c.as_bytes())),
                "{c}"
            );
        }
        assert!(!ImapError::BadCharset.counts_as_bad());
    }

    #[test]
    fn framing_errors_keep_rfc_7888_answers_and_fall_back_to_untagged() {
        let sync = ImapError::LiteralTooBig {
            synchronizing: true,
        };
        let plus = ImapError::LiteralTooBig {
            synchronizing: false,
        };
        let mut out = Vec::new();
        sync.write(&mut out, None);
        plus.write(&mut out, None);
        ImapError::LineTooLong.write(&mut out, None);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "* NO [TOOBIG] Literal too big\r\n* BAD [TOOBIG] Literal too big\r\n\
             * BAD Command line too long\r\n"
        );
        assert!(sync.counts_as_bad() && plus.counts_as_bad());
    }

    #[test]
    fn parse_errors_are_tagged_when_the_tag_was_read() {
        use crate::imap::proto::parse::parse_command;
        let mut out = Vec::new();
        for line in [&b"c FOO\r\n"[..], b"\r\n"] {
            let Err(e) = parse_command(line) else {
                panic!("{line:?} parsed");
            };
            ImapError::from(&e).write(&mut out, e.tag.as_ref());
        }
        assert_eq!(
            String::from_utf8_lossy(&out),
            "c BAD unknown command\r\n* BAD a command must start with a tag and a space\r\n"
        );
    }
}
