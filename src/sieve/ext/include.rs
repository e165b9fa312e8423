//! RFC 6609 `include`: script names, and the run-time bookkeeping lives in the interpreter
//! (`super::super::interp`): `:once`, recursion, the depth limit and global variables.

/// A valid script name for `include`: not empty, no `/` (RFC 6609 section 3.2 forbids
/// path separators), no control characters, at most 255 bytes.
pub fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.contains('/')
        && !name.chars().any(char::is_control)
        && name != "."
        && name != ".."
}
