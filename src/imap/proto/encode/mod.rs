//! Response encoding (RFC 3501 sections 4, 7 and 9 and the extensions' response syntax).
//!
//! Every writer appends to a `Vec<u8>` the session then flushes, so a
//! response can be built in pieces and streamed (a FETCH body section is a
//! prefix written here, then `n` octets copied from the message file, then
//! the rest of the FETCH). Strings always go through [`write_string`] /
//! [`write_astring`] / [`write_nstring`], which pick atom, quoted or literal
//! form by content, so no byte a client or a message supplied can end a
//! response line early. Human-readable text goes through [`write_text`],
//! which replaces CR, LF, NUL and 8-bit bytes.
//!
//! One file per kind of response: `string` and `number` hold the
//! lexical pieces; `condition` the status responses and their codes;
//! `capability`, `mailbox` and `search` the untagged data; `fetch`
//! the FETCH response.

mod capability;
mod condition;
mod fetch;
mod mailbox;
mod metadata;
mod number;
mod search;
mod sort;
mod string;
mod thread;

pub use capability::{IdField, capability, enabled, id};
pub use condition::{
    Code, Status, continue_base64, continue_req, tagged, tagged_or_untagged, untagged,
};
pub use fetch::{FetchResponse, write_section};
pub use mailbox::status_with_mailbox_id;
pub use mailbox::{
    ListKind, Namespace, exists, expunge, flags, list, namespace, quota, quotaroot, recent, status,
    vanished,
};
pub use metadata::metadata;
pub use number::{write_decimal, write_sequence_set, write_uid_list};
pub use search::{EsearchData, esearch, search};
pub use sort::sort;
pub use string::{
    write_astring, write_literal, write_mailbox, write_nstring, write_string, write_text,
};
pub use thread::{ThreadNode, ThreadTree, thread};
