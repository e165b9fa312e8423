//! Allocator tuning for a long-lived daemon.
//!
//! glibc serves an allocation above its mmap threshold with its own `mmap` and unmaps it on free,
//! but it raises that threshold (up to 32 MiB) each time such a block is freed. After the first
//! few logins, every Argon2id verification (19 MiB at the default cost) was therefore carved out
//! of a malloc arena instead, and each hashing thread's arena kept its 19 MiB after the login:
//! about 200 MB of RSS stayed behind a burst of logins that needed none of it. Fixing the
//! threshold turns off that adjustment, so large transient buffers (password hashes, message
//! bodies being parsed, big responses) go back to the kernel when they are freed.

use crate::limits::MALLOC_MMAP_THRESHOLD_BYTES;

/// Applies the allocator settings; call once at start-up, before the runtime's threads exist.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let threshold = i32::try_from(MALLOC_MMAP_THRESHOLD_BYTES).unwrap_or(i32::MAX);
        // SAFETY: mallopt only changes allocator parameters; it is called before any other
        // thread of this process exists, and a failure (return 0) leaves glibc's defaults.
        let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, threshold) };
        if ok == 0 {
            tracing::warn!("cannot set the malloc mmap threshold; large buffers may stay resident");
        }
    }
}
