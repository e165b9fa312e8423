//! Per-user files about mailboxes: `subscriptions` (Dovecot's format) and
//! `mailcove-special-use`.

use std::collections::HashMap;

use super::fsutil;
use super::fsutil::read_small;
use super::user::UserCtx;
use super::{SPECIAL_USE_FILE, SUBSCRIPTIONS_FILE};
use crate::limits::MAX_SMALL_FILE_BYTES;
use crate::mutf7;
use crate::storage::names::MailboxName;
use crate::storage::{Result, SpecialUse};

impl UserCtx {
    pub(super) fn special_uses(&self) -> Result<HashMap<Vec<String>, SpecialUse>> {
        let mut map: HashMap<Vec<String>, SpecialUse> = HashMap::new();
        for (name, su) in &self.shared.options.autocreate {
            if let (Some(su), Ok(n)) = (su, MailboxName::parse(name, self.sep(), true)) {
                map.insert(n.components().to_vec(), *su);
            }
        }
        map.extend(self.read_special_use()?);
        Ok(map)
    }

    pub(super) fn read_special_use(&self) -> Result<HashMap<Vec<String>, SpecialUse>> {
        let data = read_small(&self.root.join(SPECIAL_USE_FILE), MAX_SMALL_FILE_BYTES)?
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&data);
        let mut map = HashMap::new();
        for line in text.lines() {
            let mut parts = line.split('\t');
            let Some(su) = parts.next().and_then(SpecialUse::from_attribute) else {
                continue;
            };
            let comps: Vec<String> = parts.map(str::to_owned).collect();
            if !comps.is_empty() {
                map.insert(comps, su);
            }
        }
        Ok(map)
    }

    pub(super) fn write_special_use(&self, map: &HashMap<Vec<String>, SpecialUse>) -> Result<()> {
        let mut lines: Vec<String> = map
            .iter()
            .map(|(k, su)| format!("{}\t{}\n", su.attribute(), k.join("\t")))
            .collect();
        lines.sort();
        fsutil::write_atomic(
            &self.root.join(SPECIAL_USE_FILE),
            lines.concat().as_bytes(),
            self.fsync(),
        )
    }

    /// Subscribed names as levels. Reads Dovecot's version 2 format
    /// (`V\t2\n\n`, then one name per line with levels separated by TAB)
    /// and version 1 (one name per line, levels separated by `.`).
    pub(super) fn read_subscriptions(&self) -> Result<Vec<Vec<String>>> {
        let data = read_small(&self.root.join(SUBSCRIPTIONS_FILE), MAX_SMALL_FILE_BYTES)?
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&data);
        let mut out: Vec<Vec<String>> = Vec::new();
        let v2 = text.starts_with("V\t2\n");
        for line in text.lines().skip(if v2 { 1 } else { 0 }) {
            // Dovecot tab-escapes control characters with \x01; names
            // holding those are invalid here anyway.
            if line.is_empty() || line.contains('\u{1}') {
                continue;
            }
            let comps: Vec<String> = if v2 {
                line.split('\t').map(str::to_owned).collect()
            } else {
                line.split('.')
                    .map(|c| mutf7::decode(c.as_bytes()).unwrap_or_else(|_| c.to_owned()))
                    .collect()
            };
            if comps.iter().any(String::is_empty) {
                continue;
            }
            let mut comps = comps;
            if let Some(first) = comps.first_mut()
                && first.eq_ignore_ascii_case("INBOX")
            {
                "INBOX".clone_into(first);
            }
            if !out.contains(&comps) {
                out.push(comps);
            }
        }
        Ok(out)
    }

    pub(super) fn set_subscribed(&self, n: &MailboxName, on: bool) -> Result<()> {
        let _l = self.user_lock()?;
        let mut subs = self.read_subscriptions()?;
        let present = subs.iter().any(|s| s == n.components());
        if present == on {
            return Ok(());
        }
        if on {
            subs.push(n.components().to_vec());
        } else {
            subs.retain(|s| s != n.components());
        }
        let mut text = String::from("V\t2\n\n");
        for s in &subs {
            text.push_str(&s.join("\t"));
            text.push('\n');
        }
        fsutil::write_atomic(
            &self.root.join(SUBSCRIPTIONS_FILE),
            text.as_bytes(),
            self.fsync(),
        )
    }
}
