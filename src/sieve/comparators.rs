//! Comparators (RFC 4790 as Sieve uses them, RFC 5228 section 2.7.3): `i;octet`,
//! `i;ascii-casemap` (the default) and `i;ascii-numeric` (RFC 4790 section 9.1).

use std::cmp::Ordering;

/// A comparator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    /// `i;octet`: bytes as they are.
    Octet,
    /// `i;ascii-casemap`: ASCII letters folded to lower case.
    AsciiCasemap,
    /// `i;ascii-numeric`: the leading decimal digits as a number; a string that does not start
    /// with a digit is positive infinity.
    AsciiNumeric,
}

impl Comparator {
    /// The comparator named `name` (as in `:comparator "i;octet"`).
    pub fn parse(name: &str) -> Option<Comparator> {
        match name.to_ascii_lowercase().as_str() {
            "i;octet" => Some(Comparator::Octet),
            "i;ascii-casemap" => Some(Comparator::AsciiCasemap),
            "i;ascii-numeric" => Some(Comparator::AsciiNumeric),
            _ => None,
        }
    }

    /// The extension a script must require to use this comparator, if any.
    pub fn extension(self) -> Option<&'static str> {
        match self {
            Comparator::AsciiNumeric => Some("comparator-i;ascii-numeric"),
            _ => None,
        }
    }

    /// Whether the comparator supports substring operations (`:contains`, `:matches`,
    /// `:regex`); `i;ascii-numeric` does only equality and ordering (RFC 4790 section 9.1).
    pub fn substring_ok(self) -> bool {
        self != Comparator::AsciiNumeric
    }

    /// Equality.
    pub fn equals(self, a: &str, b: &str) -> bool {
        match self {
            Comparator::Octet => a == b,
            Comparator::AsciiCasemap => a.eq_ignore_ascii_case(b),
            Comparator::AsciiNumeric => self.compare(a, b) == Ordering::Equal,
        }
    }

    /// Ordering (`:value`, `:count`).
    pub fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            Comparator::Octet => a.as_bytes().cmp(b.as_bytes()),
            Comparator::AsciiCasemap => a
                .bytes()
                .map(|c| c.to_ascii_lowercase())
                .cmp(b.bytes().map(|c| c.to_ascii_lowercase())),
            Comparator::AsciiNumeric => match (numeric(a), numeric(b)) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(x), Some(y)) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
            },
        }
    }

    /// `a` contains `b`.
    pub fn contains(self, a: &str, b: &str) -> bool {
        match self {
            Comparator::AsciiCasemap => {
                let (a, b) = (a.as_bytes(), b.as_bytes());
                b.is_empty() || a.windows(b.len()).any(|w| w.eq_ignore_ascii_case(b))
            }
            _ => a.contains(b),
        }
    }

    /// Whether two characters are equal under the comparator (wildcard matching).
    pub fn char_eq(self, a: char, b: char) -> bool {
        match self {
            Comparator::AsciiCasemap => a.eq_ignore_ascii_case(&b),
            _ => a == b,
        }
    }
}

/// The leading digits of `s` without leading zeros (`Some("")` for zero); `None` when `s` does
/// not start with a digit.
fn numeric(s: &str) -> Option<&str> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let d = s.get(..digits).unwrap_or("");
    Some(d.trim_start_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_numeric_as_rfc4790() {
        let c = Comparator::AsciiNumeric;
        assert!(c.equals("0010", "10"));
        assert!(c.equals("10abc", "10"));
        assert_eq!(c.compare("9", "10"), Ordering::Less);
        assert_eq!(
            c.compare("abc", "99999999999999999999999"),
            Ordering::Greater
        );
        assert!(c.equals("abc", "x"));
        assert_eq!(c.compare("0", "00"), Ordering::Equal);
    }

    #[test]
    fn casemap_folds_ascii_only() {
        let c = Comparator::AsciiCasemap;
        assert!(c.equals("FooBar", "foobar"));
        assert!(!c.equals("Ä", "ä"));
        assert!(c.contains("Hello World", "O w"));
        assert!(!Comparator::Octet.contains("Hello", "hello"));
    }
}
