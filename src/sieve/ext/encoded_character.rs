//! RFC 5228 section 2.4.2.4 `encoded-character`: `${hex:40 41}` and `${unicode:263a}` in
//! strings, decoded when the script is compiled.

/// Decodes the encoded-character sequences of `s`. A sequence whose syntax does not match is
/// left as written (RFC 5228: "it is not an error"); a `unicode` value outside the Unicode
/// scalar range is an error.
pub fn decode(s: &str) -> Result<String, String> {
    if !s.contains("${") {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(rest.get(..i).unwrap_or(""));
        let after = rest.get(i + 2..).unwrap_or("");
        match decode_one(after)? {
            Some((text, used)) => {
                out.push_str(&text);
                rest = after.get(used..).unwrap_or("");
            }
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// One sequence after `${`: the decoded text and the bytes used (through `}`).
fn decode_one(s: &str) -> Result<Option<(String, usize)>, String> {
    let Some(close) = s.find('}') else {
        return Ok(None);
    };
    let inner = s.get(..close).unwrap_or("");
    let Some((kind, body)) = inner.split_once(':') else {
        return Ok(None);
    };
    let units: Vec<&str> = body
        .split([' ', '\t', '\r', '\n'])
        .filter(|u| !u.is_empty())
        .collect();
    let all_hex = units
        .iter()
        .all(|u| u.bytes().all(|b| b.is_ascii_hexdigit()));
    if !all_hex {
        return Ok(None);
    }
    match kind.to_ascii_lowercase().as_str() {
        "hex" => {
            if units.iter().any(|u| u.len() != 2) {
                return Ok(None);
            }
            let bytes: Vec<u8> = units
                .iter()
                .filter_map(|u| u8::from_str_radix(u, 16).ok())
                .collect();
            Ok(Some((
                String::from_utf8_lossy(&bytes).into_owned(),
                close + 1,
            )))
        }
        "unicode" => {
            let mut text = String::new();
            for u in units {
                let v = u32::from_str_radix(u.get(u.len().saturating_sub(8)..).unwrap_or(u), 16)
                    .ok()
                    .filter(|_| u.trim_start_matches('0').len() <= 6);
                match v.and_then(char::from_u32) {
                    Some(c) => text.push(c),
                    None => return Err(format!("invalid unicode character ${{unicode:{u}}}")),
                }
            }
            Ok(Some((text, close + 1)))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5228_examples() {
        // RFC 5228 section 2.4.2.4: all of these are "$" or the text unchanged.
        assert_eq!(decode("${hex:24 24}").as_deref(), Ok("$$"));
        assert_eq!(decode("${HEX: 24}").as_deref(), Ok("$"));
        assert_eq!(decode("${hex:40}").as_deref(), Ok("@"));
        assert_eq!(decode("${unicode:40}").as_deref(), Ok("@"));
        assert_eq!(decode("${Unicode:0000000000000040}").as_deref(), Ok("@"));
        assert_eq!(decode("${hex:40").as_deref(), Ok("${hex:40"));
        assert_eq!(decode("${hex:400}").as_deref(), Ok("${hex:400}"));
        assert_eq!(decode("${hex:4${hex:30}}").as_deref(), Ok("${hex:40}"));
        assert_eq!(
            decode("${unicode:40}${unicode:263a}").as_deref(),
            Ok("@\u{263a}")
        );
        assert!(decode("${unicode:D800}").is_err());
        assert!(decode("${unicode:110000}").is_err());
    }
}
