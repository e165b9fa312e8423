//! CPU prefetch hints for the first SELECT of a big Maildir.

/// How many names ahead [`prefetch`] runs.
pub(super) const PREFETCH_AHEAD: usize = 8;

/// Asks the CPU to start loading `s`: the files of a first SELECT are read
/// in UID order, which is not the order the directory listed them in, and
/// waiting for each one's cache misses in turn was a sixth of the time.
#[inline]
pub(super) fn prefetch<T: ?Sized>(s: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        // Its first and last byte: a value may straddle two cache lines.
        let first = std::ptr::from_ref(s).cast::<i8>();
        let last = first.wrapping_add(std::mem::size_of_val(s).saturating_sub(1));
        // SAFETY: SSE is part of x86_64; a prefetch is a hint that never
        // faults, and both addresses lie inside `s`.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(first);
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(last);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = s;
}
