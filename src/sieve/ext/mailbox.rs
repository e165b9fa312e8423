//! RFC 5490 `mailbox`: `fileinto :create` is passed to delivery (`Action::FileInto::create`);
//! `mailboxexists` asks `Environment::mailbox_exists`. The name check is shared with
//! `fileinto`.

/// A mailbox name a script may file into: not empty, no control characters.
pub fn name_ok(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_control)
}
