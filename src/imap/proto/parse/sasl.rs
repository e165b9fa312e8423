//! Client lines during an AUTHENTICATE exchange (RFC 3501 section 6.2.2).

use super::{ParseError, ParseErrorKind};
use crate::imap::proto::types::Secret;

/// One client response line of a SASL exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslResponse {
    /// `*`: the client cancels; answer `tag BAD` (RFC 3501 section 6.2.2).
    Cancel,
    /// The decoded response (empty for an empty line).
    Data(Secret),
}

/// Decodes a continuation line (`base64` or `*`, without its CRLF) as framed by
/// [`Receiver::poll_line`](crate::imap::proto::receive::Receiver::poll_line).
/// The error has no tag: the session answers with the AUTHENTICATE command's tag.
pub fn parse_sasl_response(line: &[u8]) -> Result<SaslResponse, ParseError> {
    use base64::Engine;
    if line == b"*" {
        return Ok(SaslResponse::Cancel);
    }
    base64::engine::general_purpose::STANDARD
        .decode(line)
        .map(|v| SaslResponse::Data(Secret(v)))
        .map_err(|_| ParseError {
            tag: None,
            kind: ParseErrorKind::Syntax,
            message: "invalid base64 in the authentication response",
            offset: 0,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_lines() {
        assert_eq!(parse_sasl_response(b"*"), Ok(SaslResponse::Cancel));
        assert_eq!(
            parse_sasl_response(b"AHRlc3QAMTIzNA=="),
            Ok(SaslResponse::Data(Secret(b"\0test\x001234".to_vec())))
        );
        assert_eq!(
            parse_sasl_response(b""),
            Ok(SaslResponse::Data(Secret(Vec::new())))
        );
        assert!(parse_sasl_response(b"AHRlc3Q").is_err());
        assert!(parse_sasl_response(b"** ").is_err());
        assert!(parse_sasl_response(b"AH Rl").is_err());
    }
}
