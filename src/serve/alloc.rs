//! The allocator's thresholds, held fixed for a long-running service.
//!
//! glibc's malloc serves blocks of 128 KiB and more with `mmap`, and when such a block is
//! freed it raises that threshold to the block's size (up to 32 MiB). A compiled schema
//! holds blocks of tens of MiB (its NFA, its lazy DFA's cache), so after the first one is
//! dropped every later block under 32 MiB comes from the heap, and the heap, fragmented by
//! the small blocks around them, keeps its pages: resident memory grows by about 18 MB with
//! each large schema the compiled-schema cache drops, although the cache holds no more than
//! its cap. Fixing the threshold at glibc's own default (which also fixes the trim
//! threshold) gives those pages back when the schema is dropped. An operator's
//! `MALLOC_MMAP_THRESHOLD_` is left as it is.

/// glibc's default `mmap` threshold, 128 KiB.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 << 10;

/// Fixes the allocator's `mmap` threshold once per process (glibc on Linux; elsewhere
/// nothing to do).
pub(super) fn hold_thresholds() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() {
                return;
            }
            // SAFETY: `mallopt` only sets a malloc parameter; it is thread-safe in glibc.
            if unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) } != 1 {
                tracing::warn!("the allocator's mmap threshold could not be fixed; resident memory may grow with large schemas");
            }
        });
    }
}
