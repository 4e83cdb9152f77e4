//! Run-time CPU dispatch for the pixel kernels. Most kernels are plain Rust
//! loops written so that LLVM vectorises them; [`multiversion!`] compiles each
//! one twice (baseline x86-64 and AVX2) and picks at run time. A few kernels
//! are hand-written with AVX2 intrinsics next to their portable version.
//! Results are identical on every path: integer kernels are exact in any
//! width, and float kernels keep the same per-element operation order (no FMA
//! is enabled, no reassociation); tests run both paths against Pillow.
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

/// Define `fn name(args) { body }` plus an AVX2-compiled copy of the body,
/// selected when [`use_avx2`] says so.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        multiversion! { $(#[$meta])* $vis fn $name($($arg: $ty),*) -> () $body }
    };
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments, clippy::unused_unit)]
        $vis fn $name($($arg: $ty),*) -> $ret {
            #[inline(always)]
            #[allow(clippy::too_many_arguments, clippy::unused_unit)]
            fn kernel($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                #[allow(clippy::too_many_arguments, clippy::unused_unit)]
                unsafe fn kernel_avx2($($arg: $ty),*) -> $ret {
                    kernel($($arg),*)
                }
                if $crate::imaging::simd::use_avx2() {
                    // SAFETY: the CPU supports AVX2 (checked at run time).
                    return unsafe { kernel_avx2($($arg),*) };
                }
            }
            kernel($($arg),*)
        }
    };
}
