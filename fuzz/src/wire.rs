//! A checker for the IMAP data mailcove writes (ENVELOPE, BODY, BODYSTRUCTURE):
//! parentheses balance outside strings, quoted strings hold no CR, LF or NUL,
//! and every literal's announced length is present.

/// Panics unless `out` is one well-formed parenthesised IMAP list.
pub fn check_list(out: &[u8]) {
    assert_eq!(out.first(), Some(&b'('), "list does not start with (");
    let mut depth = 0usize;
    let mut i = 0usize;
    while let Some(&b) = out.get(i) {
        match b {
            b'(' => depth += 1,
            b')' => {
                assert!(depth > 0, "unbalanced ) at {i}");
                depth -= 1;
                if depth == 0 {
                    assert_eq!(i + 1, out.len(), "data after the closing )");
                }
            }
            b'"' => {
                i += 1;
                loop {
                    match out.get(i) {
                        Some(b'\\') => {
                            let next = out.get(i + 1);
                            assert!(
                                matches!(next, Some(b'"' | b'\\')),
                                "bad escape in quoted string at {i}"
                            );
                            i += 2;
                        }
                        Some(b'"') => break,
                        Some(b'\r' | b'\n' | 0) => {
                            panic!("CR, LF or NUL in a quoted string at {i}")
                        }
                        Some(_) => i += 1,
                        None => panic!("unterminated quoted string"),
                    }
                }
            }
            b'{' => {
                let close = out[i..]
                    .iter()
                    .position(|&c| c == b'}')
                    .expect("literal header without }");
                let digits = &out[i + 1..i + close];
                assert!(
                    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit),
                    "bad literal header"
                );
                let n: usize = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .expect("literal size");
                let data_start = i + close + 1;
                assert_eq!(
                    out.get(data_start..data_start + 2),
                    Some(&b"\r\n"[..]),
                    "literal header without CRLF"
                );
                assert!(
                    data_start + 2 + n <= out.len(),
                    "literal shorter than announced"
                );
                i = data_start + 2 + n - 1;
            }
            b'\r' | b'\n' | 0 => panic!("CR, LF or NUL outside a string at {i}"),
            _ => {}
        }
        i += 1;
    }
    assert_eq!(depth, 0, "unbalanced (");
}
