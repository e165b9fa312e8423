//! Dovecot `quota_rule` extra fields of the users file (`userdb_quota_rule=*:storage=1G`,
//! `quota_rule2=*:messages=10000`), read strictly: a value mailcove cannot apply exactly is an
//! error at load (the whole file is refused with the line number, as any other bad line), never
//! a silent fall-back to the configured default.
//!
//! Accepted, as Dovecot reads them: `*:storage=N[unit]` (no unit: kilobytes), `*:bytes=N[unit]`
//! (no unit: bytes), `*:messages=N[unit]` (no unit: a count), several joined by `:`
//! (`*:storage=1G:messages=1000`), and `*:ignore` / `*:none` for no limit. Units are `B`, `K`,
//! `M`, `G`, `T` (powers of 1024, any case). 0 means unlimited, as Dovecot.
//!
//! Refused: relative limits (`+100M`, `-10%`, `50%`), which Dovecot applies only to per-mailbox
//! rules on top of the `*` rule, and unknown parts. Per-mailbox rules (`Trash:storage=+100M`)
//! are syntactically checked, then ignored with a warning when the user's quota is computed:
//! mailcove has one quota per user, and a file shared with Dovecot may carry them.

/// Limits set by one rule; `None` leaves that limit as it was, `Some(0)` makes it unlimited.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RuleLimits {
    /// Byte limit.
    pub bytes: Option<u64>,
    /// Message-count limit.
    pub messages: Option<u64>,
}

/// True for the extra-field keys read as quota rules: `quota_rule`, `quota_rule2`, ... with or
/// without Dovecot's `userdb_` prefix.
pub fn is_quota_rule_key(key: &str) -> bool {
    let k = key.strip_prefix("userdb_").unwrap_or(key);
    k.strip_prefix("quota_rule")
        .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
}

/// Parses one rule. `Ok(None)` for a valid rule of a single mailbox, which mailcove does not
/// apply; `Err` says what is wrong.
pub fn parse(rule: &str) -> Result<Option<RuleLimits>, String> {
    let (mailbox, parts) = rule
        .split_once(':')
        .ok_or_else(|| format!("quota rule {rule:?} needs a mailbox and limits (*:storage=1G)"))?;
    if mailbox.is_empty() {
        return Err(format!("quota rule {rule:?} has an empty mailbox name"));
    }
    let mut limits = RuleLimits::default();
    for part in parts.split(':') {
        if part.eq_ignore_ascii_case("ignore") || part.eq_ignore_ascii_case("none") {
            limits.bytes = Some(0);
            limits.messages = Some(0);
            continue;
        }
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("quota rule {rule:?}: unknown part {part:?}"))?;
        let value = value.trim();
        if mailbox != "*" {
            // Checked for syntax only: relative values are what per-mailbox rules are made of.
            let v = value.trim_start_matches(['+', '-']).trim_end_matches('%');
            if !matches!(key, "storage" | "bytes" | "messages") || v.is_empty() {
                return Err(format!("quota rule {rule:?}: invalid part {part:?}"));
            }
            continue;
        }
        if value.starts_with(['+', '-']) || value.ends_with('%') {
            return Err(format!(
                "quota rule {rule:?}: relative limits (+, -, %) are not supported for `*`"
            ));
        }
        match key {
            "storage" => limits.bytes = Some(size(rule, value, 1024)?),
            "bytes" => limits.bytes = Some(size(rule, value, 1)?),
            "messages" => limits.messages = Some(size(rule, value, 1)?),
            _ => return Err(format!("quota rule {rule:?}: unknown limit {key:?}")),
        }
    }
    Ok((mailbox == "*").then_some(limits))
}

/// `N[unit]` with Dovecot's units; `default` multiplies a number without one.
fn size(rule: &str, value: &str, default: u64) -> Result<u64, String> {
    let bad = || format!("quota rule {rule:?}: invalid size {value:?}");
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let mult = match unit.to_ascii_uppercase().as_str() {
        "" => default,
        "B" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(bad()),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(bad)
}

/// Checks every quota rule among a user's extra fields.
pub fn validate_fields(extra: &[(String, Option<String>)]) -> Result<(), String> {
    for (key, value) in extra {
        if is_quota_rule_key(key) {
            parse(value.as_deref().unwrap_or(""))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(bytes: Option<u64>, messages: Option<u64>) -> Option<RuleLimits> {
        Some(RuleLimits { bytes, messages })
    }

    #[test]
    fn rules_as_dovecot_reads_them() {
        assert_eq!(parse("*:storage=1G"), Ok(limits(Some(1 << 30), None)));
        assert_eq!(parse("*:storage=2048"), Ok(limits(Some(2048 << 10), None)));
        assert_eq!(parse("*:storage=512b"), Ok(limits(Some(512), None)));
        assert_eq!(parse("*:bytes=512"), Ok(limits(Some(512), None)));
        assert_eq!(parse("*:messages=1000"), Ok(limits(None, Some(1000))));
        assert_eq!(parse("*:messages=2k"), Ok(limits(None, Some(2048))));
        assert_eq!(
            parse("*:storage=1T:messages=5"),
            Ok(limits(Some(1 << 40), Some(5)))
        );
        assert_eq!(parse("*:storage=0"), Ok(limits(Some(0), None)));
        assert_eq!(parse("*:ignore"), Ok(limits(Some(0), Some(0))));
        assert_eq!(parse("Trash:storage=+100M"), Ok(None));
        assert_eq!(parse("Junk:ignore"), Ok(None));
    }

    #[test]
    fn bad_rules_are_errors_not_defaults() {
        for bad in [
            "",
            "*",
            ":storage=1G",
            "*:storage=",
            "*:storage=1X",
            "*:storage=1.5G",
            "*:storage=+10M",
            "*:storage=-10M",
            "*:storage=50%",
            "*:messages=abc",
            "*:messages=99999999999999999999",
            "*:storage=16777216T",
            "*:backend=foo",
            "*:storage",
            "Trash:frobs=1",
            "Trash:storage=",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn quota_rule_keys() {
        for k in [
            "quota_rule",
            "quota_rule2",
            "userdb_quota_rule",
            "userdb_quota_rule3",
        ] {
            assert!(is_quota_rule_key(k), "{k}");
        }
        for k in ["quota", "quota_rules", "userdb_quota_rule_x", "mail"] {
            assert!(!is_quota_rule_key(k), "{k}");
        }
        let bad = vec![("userdb_quota_rule".to_string(), Some("*:storage=1Q".into()))];
        assert!(validate_fields(&bad).is_err());
        let good = vec![
            ("userdb_quota_rule".to_string(), Some("*:storage=1G".into())),
            ("mail".to_string(), Some("maildir:~/x".into())),
        ];
        assert!(validate_fields(&good).is_ok());
    }
}
