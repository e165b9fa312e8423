//! RFC 5229 `variables`: `${name}` and `${N}` references in strings, `set` with its modifiers,
//! and (RFC 6609 section 3.5) the `global.` namespace when `include` is present.

use super::super::ast::{Modifier, Str, StrPart};
use super::super::compile::variable_name_ok;
use super::super::match_types::{quote_regex, quote_wildcard};

/// Splits `s` into literal text and references. A `${...}` that is not a valid reference
/// stays literal text (RFC 5229 section 3).
pub fn template(s: &str, global_ns: bool) -> Str {
    let mut parts: Vec<StrPart> = Vec::new();
    let mut lit = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        lit.push_str(rest.get(..i).unwrap_or(""));
        let after = rest.get(i + 2..).unwrap_or("");
        let reference = after.find('}').and_then(|close| {
            let name = after.get(..close)?;
            reference(name, global_ns).map(|p| (p, close + 1))
        });
        match reference {
            Some((part, used)) => {
                if !lit.is_empty() {
                    parts.push(StrPart::Lit(std::mem::take(&mut lit)));
                }
                parts.push(part);
                rest = after.get(used..).unwrap_or("");
            }
            None => {
                lit.push_str("${");
                rest = after;
            }
        }
    }
    lit.push_str(rest);
    if !lit.is_empty() || parts.is_empty() {
        parts.push(StrPart::Lit(lit));
    }
    Str { parts }
}

fn reference(name: &str, global_ns: bool) -> Option<StrPart> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        return name.parse::<usize>().ok().map(StrPart::Match);
    }
    if variable_name_ok(name) {
        return Some(StrPart::Var(name.to_ascii_lowercase()));
    }
    let (ns, var) = name.split_once('.')?;
    if global_ns && ns.eq_ignore_ascii_case("global") && variable_name_ok(var) {
        return Some(StrPart::Var(format!("global.{}", var.to_ascii_lowercase())));
    }
    None
}

/// A name `set` (or a flag command) may assign: an identifier, or `global.identifier` when
/// `include` is required.
pub fn check_name(name: &str, global_ns: bool) -> Result<(), String> {
    match reference(name, global_ns) {
        Some(StrPart::Var(_)) => Ok(()),
        _ => Err(format!("invalid variable name \"{name}\"")),
    }
}

/// Applies `set`'s modifiers (already sorted, highest precedence first).
pub fn apply_modifiers(mut v: String, mods: &[Modifier]) -> String {
    for m in mods {
        v = match m {
            Modifier::Lower => v.to_lowercase(),
            Modifier::Upper => v.to_uppercase(),
            Modifier::LowerFirst => first_char(&v, |c| c.to_lowercase().collect()),
            Modifier::UpperFirst => first_char(&v, |c| c.to_uppercase().collect()),
            Modifier::QuoteWildcard => quote_wildcard(&v),
            Modifier::QuoteRegex => quote_regex(&v),
            Modifier::Length => v.chars().count().to_string(),
        };
    }
    v
}

fn first_char(v: &str, f: impl Fn(char) -> String) -> String {
    let mut it = v.chars();
    match it.next() {
        Some(c) => f(c) + it.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_literals() {
        let t = template("a${Foo}b${1}${bad-name}${global.X}", true);
        assert_eq!(
            t.parts,
            vec![
                StrPart::Lit("a".into()),
                StrPart::Var("foo".into()),
                StrPart::Lit("b".into()),
                StrPart::Match(1),
                StrPart::Lit("${bad-name}".into()),
                StrPart::Var("global.x".into()),
            ]
        );
        assert_eq!(
            template("${global.x}", false).constant().as_deref(),
            Some("${global.x}")
        );
        assert_eq!(template("", false).constant().as_deref(), Some(""));
    }

    #[test]
    fn rfc5229_modifier_examples() {
        // RFC 5229 section 4.1.
        let m = |v: &str, mods: &[Modifier]| apply_modifiers(v.to_string(), mods);
        assert_eq!(m("juMBlEd lETteRS", &[Modifier::Lower]), "jumbled letters");
        assert_eq!(
            m("juMBlEd lETteRS", &[Modifier::Upper, Modifier::Length]),
            "15"
        );
        assert_eq!(
            m("juMBlEd lETteRS", &[Modifier::Lower, Modifier::UpperFirst]),
            "Jumbled letters"
        );
        assert_eq!(
            m("j?MBlEd*lETte\\S", &[Modifier::QuoteWildcard]),
            "j\\?MBlEd\\*lETte\\\\S"
        );
    }
}
