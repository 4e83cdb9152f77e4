//! Run-time CPU dispatch for the pixel kernels, with `std::arch` as the crate
//! ecosystem does it: each kernel with an AVX2 version has a
//! `#[target_feature(enable = "avx2")] unsafe fn` (hand-written intrinsics, or
//! the portable loop compiled again with AVX2 so that LLVM vectorises it
//! wider) and calls it when [`use_avx2`] holds, else runs the portable code.
//! Results are identical on every path: integer kernels are exact in any
//! width, and float kernels keep the same per-element operation order (no FMA
//! is enabled, no reassociation); tests run both paths against Pillow.
//!
//! The `multiversion` crate would write the AVX2 copies for us, but its
//! dispatchers choose by CPU features alone (the default one caches its choice
//! at the first call), so they cannot honour the portable switch below, which
//! tests turn on and off at run time.
//!
//! The portable path can be forced, for tests and for comparison, with
//! [`set_force_portable`] or the environment variable
//! `MOBILECLIP_FASTLOAD_PORTABLE=1` (read once, at the first dispatch).

use std::sync::atomic::{AtomicU8, Ordering};

/// 0: not decided yet; 1: AVX2 kernels; 2: portable kernels.
static LEVEL: AtomicU8 = AtomicU8::new(0);
const AVX2: u8 = 1;
const PORTABLE: u8 = 2;

/// Whether the AVX2 kernels run (CPU support, not forced off).
#[inline]
pub fn use_avx2() -> bool {
    match LEVEL.load(Ordering::Relaxed) {
        AVX2 => true,
        PORTABLE => false,
        _ => {
            let forced = std::env::var_os("MOBILECLIP_FASTLOAD_PORTABLE").is_some_and(|v| !v.is_empty() && v != "0");
            let level = if !forced && cpu_has_avx2() { AVX2 } else { PORTABLE };
            LEVEL.store(level, Ordering::Relaxed);
            level == AVX2
        }
    }
}

fn cpu_has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Force the portable kernels (`true`) or go back to the default (`false`:
/// the best the CPU supports unless `MOBILECLIP_FASTLOAD_PORTABLE` is set).
/// Process-wide; meant for tests and benchmarks.
pub fn set_force_portable(on: bool) {
    LEVEL.store(if on { PORTABLE } else { 0 }, Ordering::Relaxed);
}

/// Name of the kernel set in use: "avx2" or "portable".
pub fn kernel_level() -> &'static str {
    if use_avx2() {
        "avx2"
    } else {
        "portable"
    }
}
