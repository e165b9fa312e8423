//! RFC 8579 `special-use`: `fileinto :specialuse` is passed to delivery in
//! `Action::FileInto::special_use` (delivery prefers the mailbox with that attribute and falls
//! back to the named one); `specialuse_exists` is decided here.

/// `specialuse_exists [mailbox] uses`: every attribute is held by some mailbox (by `mailbox`
/// when given). `lookup` answers which mailbox holds an attribute.
pub fn exists(
    mailbox: Option<&str>,
    uses: &[String],
    mut lookup: impl FnMut(&str) -> Option<String>,
) -> bool {
    uses.iter().all(|u| match (mailbox, lookup(u)) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(want), Some(have)) => want == have,
    })
}
