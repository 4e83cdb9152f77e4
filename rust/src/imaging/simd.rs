//! Run-time CPU dispatch for the pixel kernels. The kernels are plain Rust
//! loops written so that LLVM vectorises them; this compiles each one twice
//! (baseline x86-64 and AVX2) and picks at run time. Results are identical:
//! integer kernels are exact in any width, and float kernels keep the same
//! per-element operation order (no FMA is enabled, no reassociation).

/// Define `fn name(args) { body }` plus an AVX2-compiled copy of the body,
/// selected when the CPU supports AVX2.
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
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2 (checked at run time).
                    return unsafe { kernel_avx2($($arg),*) };
                }
            }
            kernel($($arg),*)
        }
    };
}
