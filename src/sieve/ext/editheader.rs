//! RFC 5293 `editheader`: `addheader` and `deleteheader` on the message's header. The edited
//! header is what later tests see and what is delivered (`Outcome::edited_message`).
//! Received and Auto-Submitted fields cannot be deleted (section 4: "MUST NOT permit"), and
//! the attempt is silently ignored as the RFC says; adding them is refused the same way, as
//! Pigeonhole does, so a script cannot forge trace or auto-reply markers.

/// Header fields a script may not delete or add.
pub const PROTECTED: &[&str] = &["received", "auto-submitted"];

/// Whether editheader may touch the field `name`.
pub fn editable(name: &str) -> bool {
    !PROTECTED.contains(&name.to_ascii_lowercase().as_str())
}

/// RFC 5322 field-name: printable ASCII except `:`.
pub fn field_name_ok(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

/// The raw value for a new field: a leading space, RFC 2047 encoded when not ASCII, line
/// ends folded, CRLF at the end.
pub fn encode_value(value: &str) -> Vec<u8> {
    let clean: String = value
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    let mut out = Vec::with_capacity(clean.len() + 3);
    out.push(b' ');
    if clean.is_ascii() {
        out.extend_from_slice(clean.as_bytes());
    } else {
        use base64::Engine as _;
        // One encoded word per 45 bytes of UTF-8 (60 base64 characters), split on character
        // boundaries, joined by folding whitespace (RFC 2047 section 2's 75-character words).
        let mut first = true;
        let mut chunk = String::new();
        let flush = |chunk: &mut String, out: &mut Vec<u8>, first: &mut bool| {
            if chunk.is_empty() {
                return;
            }
            if !*first {
                out.extend_from_slice(b"\r\n ");
            }
            *first = false;
            out.extend_from_slice(b"=?UTF-8?B?");
            out.extend_from_slice(
                base64::engine::general_purpose::STANDARD
                    .encode(chunk.as_bytes())
                    .as_bytes(),
            );
            out.extend_from_slice(b"?=");
            chunk.clear();
        };
        for c in clean.chars() {
            if chunk.len() + c.len_utf8() > 45 {
                flush(&mut chunk, &mut out, &mut first);
            }
            chunk.push(c);
        }
        flush(&mut chunk, &mut out, &mut first);
    }
    out.extend_from_slice(b"\r\n");
    out
}
