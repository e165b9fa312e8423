//! RFC 5429 `reject` and `ereject`: which other actions they exclude.

/// Why `reject` cannot run now: it was already used, or `vacation` ran (section 2.2: "MUST be
/// incompatible"), or the message is already being delivered (keep, fileinto, redirect: the
/// RFC does not recommend the mix and Pigeonhole refuses it).
pub fn conflict(rejected: bool, vacation: bool, delivering: bool) -> Option<&'static str> {
    if rejected {
        Some("reject may be used only once")
    } else if vacation {
        Some("reject cannot be combined with vacation (RFC 5429)")
    } else if delivering {
        Some("reject cannot be combined with keep, fileinto or redirect")
    } else {
        None
    }
}
