//! `PIL.ImageEnhance` (Pillow 13.0.0) as torchvision's adjust_brightness /
//! adjust_saturation / adjust_contrast / adjust_sharpness call it:
//! `Image.blend(degenerate, image, factor)`, i.e. `ImagingBlend` (Blend.c)
//! with a C `float` alpha and float arithmetic, truncation to 8 bits, and
//! clipping only on the extrapolation branch (alpha outside [0, 1]).
//!
//! Degenerate images:
//! - Brightness: black;
//! - Color: `convert("L").convert("RGB")`, L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16;
//! - Contrast: constant `int(mean(L) + 0.5)` with the mean from the L histogram;
//! - Sharpness: `filter(ImageFilter.SMOOTH)`, Filter.c's 3x3 float kernel
//!   (1 1 1 / 1 5 1 / 1 1 1) / 13 with +0.5 rounding; the 1-pixel border is copied.

use super::{grown, CHANNELS};

/// One byte of `ImagingBlend(im1, im2, alpha)`: float arithmetic, then the C
/// cast to UINT8. On the interpolation branch (0 <= alpha <= 1) the value is
/// always within 0..=255; on the extrapolation branch Pillow clips, which is
/// what Rust's saturating float -> u8 cast does, so one expression serves both.
#[inline(always)]
fn blend_px(in1: u8, in2: u8, alpha: f32) -> u8 {
    (in1 as i32 as f32 + alpha * ((in2 as i32 - in1 as i32) as f32)) as u8
}

/// `img = blend(degenerate, img, alpha)` byte by byte.
fn blend_buffer(degenerate: &[u8], img: &mut [u8], alpha: f32) {
    let n = img.len().min(degenerate.len());
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if super::simd::use_avx2() {
        // SAFETY: AVX2 is available (checked at run time).
        done = unsafe { avx2::blend(Some(&degenerate[..n]), 0, &mut img[..n], alpha) };
    }
    for (v, &d) in img[done..n].iter_mut().zip(&degenerate[done..n]) {
        *v = blend_px(d, *v, alpha);
    }
}

/// `img = blend(constant image, img, alpha)`.
fn blend_const(degenerate: u8, img: &mut [u8], alpha: f32) {
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if super::simd::use_avx2() {
        // SAFETY: AVX2 is available (checked at run time).
        done = unsafe { avx2::blend(None, degenerate, img, alpha) };
    }
    for v in img[done..].iter_mut() {
        *v = blend_px(degenerate, *v, alpha);
    }
}

/// The AVX2 kernels, called only where [`super::simd::use_avx2`] holds.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// The portable loop compiled with AVX2 enabled, which LLVM vectorises
    /// wider (integer arithmetic: the same result in any width).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn gray_rgb(img: &[u8], dst: &mut [u8]) {
        super::gray_rgb_portable(img, dst)
    }

    /// Like [`gray_rgb`]: the portable loop, compiled with AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn luma_sum(img: &[u8]) -> u64 {
        super::luma_sum_portable(img)
    }

    /// Blend whole 32-byte blocks of `img` with `degenerate` (or the constant
    /// `constant` when `None`); returns how many bytes were done.
    ///
    /// [`super::blend_px`] on 32 bytes at a time: the same f32 operations per
    /// element (exact i32 difference, one rounded multiply, one rounded add, no
    /// FMA), then clamp to 0..=255 and truncate, which is Rust's saturating
    /// `as u8` (the compiler scalarises that cast, hence the intrinsics).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn blend(degenerate: Option<&[u8]>, constant: u8, img: &mut [u8], alpha: f32) -> usize {
        let n = img.len() / 32 * 32;
        if let Some(d) = degenerate {
            assert!(d.len() >= n);
        }
        let a = _mm256_set1_ps(alpha);
        let (zero, top) = (_mm256_setzero_ps(), _mm256_set1_ps(255.0));
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        let cst = _mm256_set1_epi32(constant as i32);
        let ip = img.as_mut_ptr();
        for x in (0..n).step_by(32) {
            let mut q = [_mm256_setzero_si256(); 4];
            for (k, qk) in q.iter_mut().enumerate() {
                let load = |p: *const u8| _mm256_cvtepu8_epi32(_mm_loadl_epi64(p.add(x + 8 * k) as *const __m128i));
                let in2 = load(ip);
                let in1 = match degenerate {
                    Some(d) => load(d.as_ptr()),
                    None => cst,
                };
                let diff = _mm256_cvtepi32_ps(_mm256_sub_epi32(in2, in1));
                let v = _mm256_add_ps(_mm256_cvtepi32_ps(in1), _mm256_mul_ps(a, diff));
                // max(v, 0) returns 0 for NaN, as the saturating cast does.
                *qk = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(v, zero), top));
            }
            let lo = _mm256_packs_epi32(q[0], q[1]);
            let hi = _mm256_packs_epi32(q[2], q[3]);
            let bytes = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(lo, hi), order);
            _mm256_storeu_si256(ip.add(x) as *mut __m256i, bytes);
        }
        n
    }

    /// [`super::smooth_px`] for whole blocks of 8 interior bytes of one row,
    /// same operation order; returns how many bytes were done.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn smooth_row(rows: [&[u8]; 3], out: &mut [u8]) -> usize {
        use super::{CHANNELS, SMOOTH_K1, SMOOTH_K5, SMOOTH_OFFSET};
        let n = out.len() / 8 * 8;
        for r in rows {
            assert!(r.len() >= out.len() + 2 * CHANNELS);
        }
        let (k1, k5) = (_mm256_set1_ps(SMOOTH_K1), _mm256_set1_ps(SMOOTH_K5));
        let (zero, top) = (_mm256_setzero_ps(), _mm256_set1_ps(255.0));
        for x in (0..n).step_by(8) {
            let mut ss = _mm256_set1_ps(SMOOTH_OFFSET);
            for (r, row) in rows.iter().enumerate() {
                let px = |o: usize| {
                    let v = _mm_loadl_epi64(row.as_ptr().add(x + o) as *const __m128i);
                    _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v))
                };
                let kc = if r == 1 { k5 } else { k1 };
                let left_centre = _mm256_add_ps(_mm256_mul_ps(px(0), k1), _mm256_mul_ps(px(CHANNELS), kc));
                ss = _mm256_add_ps(ss, _mm256_add_ps(left_centre, _mm256_mul_ps(px(2 * CHANNELS), k1)));
            }
            let q = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(ss, zero), top));
            let w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256::<1>(q));
            _mm_storel_epi64(out.as_mut_ptr().add(x) as *mut __m128i, _mm_packus_epi16(w, w));
        }
        n
    }
}

/// ImagingBlend's shortcuts: alpha 0 copies im1, alpha 1 copies im2.
enum Shortcut {
    Degenerate,
    Image,
    Blend(f32),
}

fn shortcut(factor: f64) -> Shortcut {
    let alpha = factor as f32; // the C function takes a float
    if alpha == 0.0 {
        Shortcut::Degenerate
    } else if alpha == 1.0 {
        Shortcut::Image
    } else {
        Shortcut::Blend(alpha)
    }
}

fn blend_with_buffer(degenerate: &[u8], img: &mut [u8], factor: f64) {
    match shortcut(factor) {
        Shortcut::Degenerate => img.copy_from_slice(degenerate),
        Shortcut::Image => {}
        Shortcut::Blend(alpha) => blend_buffer(degenerate, img, alpha),
    }
}

fn blend_with_const(degenerate: u8, img: &mut [u8], factor: f64) {
    match shortcut(factor) {
        Shortcut::Degenerate => img.fill(degenerate),
        Shortcut::Image => {}
        Shortcut::Blend(alpha) => blend_const(degenerate, img, alpha),
    }
}

/// Pillow's RGB -> L (Convert.c `rgb2l`).
#[inline(always)]
pub fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * 19595 + g as u32 * 38470 + b as u32 * 7471 + 0x8000) >> 16) as u8
}

/// `ImageEnhance.Brightness(img).enhance(factor)`.
pub fn brightness(img: &mut [u8], factor: f64) {
    blend_with_const(0, img, factor);
}

/// `img.convert("L").convert("RGB")` into `dst`.
fn gray_rgb(img: &[u8], dst: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if super::simd::use_avx2() {
        // SAFETY: AVX2 is available (checked at run time).
        return unsafe { avx2::gray_rgb(img, dst) };
    }
    gray_rgb_portable(img, dst)
}

#[inline(always)]
fn gray_rgb_portable(img: &[u8], dst: &mut [u8]) {
    for (p, d) in img.chunks_exact(CHANNELS).zip(dst.chunks_exact_mut(CHANNELS)) {
        let l = luma(p[0], p[1], p[2]);
        d[0] = l;
        d[1] = l;
        d[2] = l;
    }
}

/// `ImageEnhance.Color(img).enhance(factor)`; `gray` is scratch.
pub fn color(img: &mut [u8], factor: f64, gray: &mut Vec<u8>) {
    let g = grown(gray, img.len());
    gray_rgb(img, g);
    blend_with_buffer(g, img, factor);
}

/// Sum of Pillow's L over all pixels (what ImageStat derives from the histogram).
fn luma_sum(img: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if super::simd::use_avx2() {
        // SAFETY: AVX2 is available (checked at run time).
        return unsafe { avx2::luma_sum(img) };
    }
    luma_sum_portable(img)
}

#[inline(always)]
fn luma_sum_portable(img: &[u8]) -> u64 {
    let mut sum = 0u64;
    for row in img.chunks(CHANNELS * 4096) {
        // A u32 cannot overflow on 4096 pixels of at most 255.
        let mut s = 0u32;
        for p in row.chunks_exact(CHANNELS) {
            s += luma(p[0], p[1], p[2]) as u32;
        }
        sum += s as u64;
    }
    sum
}

/// `int(ImageStat.Stat(img.convert("L")).mean[0] + 0.5)`: sum(i * h[i]) /
/// count as a correctly rounded division (exact integers, as in Python).
pub fn contrast_mean(img: &[u8]) -> u8 {
    let count = (img.len() / CHANNELS) as u64;
    if count == 0 {
        return 0;
    }
    let mean = luma_sum(img) as f64 / count as f64;
    (mean + 0.5) as u8
}

/// `ImageEnhance.Contrast(img).enhance(factor)`.
pub fn contrast(img: &mut [u8], factor: f64) {
    let mean = contrast_mean(img);
    blend_with_const(mean, img, factor);
}

/// `img.filter(ImageFilter.SMOOTH)` into `dst` (`ImagingFilter3x3`).
pub fn smooth(src: &[u8], w: usize, h: usize, dst: &mut [u8]) {
    assert_eq!(src.len(), w * h * CHANNELS);
    assert_eq!(dst.len(), src.len());
    dst.copy_from_slice(src);
    if w < 3 || h < 3 {
        return; // ImagingFilter returns a copy of images smaller than the kernel.
    }
    smooth_interior(src, w, h, dst);
}

/// Rows 1..h-1, pixels 1..w-1 of the 3x3 smoothing (border left as copied).
fn smooth_interior(src: &[u8], w: usize, h: usize, dst: &mut [u8]) {
    let stride = w * CHANNELS;
    let n = stride - 2 * CHANNELS; // interior bytes of a row
    for y in 1..h - 1 {
        let rows = [
            &src[(y + 1) * stride..(y + 2) * stride], // Filter.c starts with the row below
            &src[y * stride..(y + 1) * stride],
            &src[(y - 1) * stride..y * stride],
        ];
        let out = &mut dst[y * stride + CHANNELS..y * stride + CHANNELS + n];
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if super::simd::use_avx2() {
            // SAFETY: AVX2 is available (checked at run time).
            done = unsafe { avx2::smooth_row(rows, out) };
        }
        for (i, o) in out.iter_mut().enumerate().skip(done) {
            *o = smooth_px(rows, i);
        }
    }
}

/// `_imaging.c` divides the float kernel by the float divisor 13.
const SMOOTH_K1: f32 = 1.0f32 / 13.0f32;
const SMOOTH_K5: f32 = 5.0f32 / 13.0f32;
/// ImagingFilter3x3 starts each sum from the offset plus 0.5 (rounding).
const SMOOTH_OFFSET: f32 = 0.0f32 + 0.5;

/// One interior byte `i` (the byte at `i + 3` of each row) of the smoothing.
#[inline(always)]
fn smooth_px(rows: [&[u8]; 3], i: usize) -> u8 {
    let mut ss = SMOOTH_OFFSET;
    for (r, row) in rows.iter().enumerate() {
        // Each row term is (left*k0 + centre*k1) + right*k2.
        let kc = if r == 1 { SMOOTH_K5 } else { SMOOTH_K1 };
        ss += row[i] as f32 * SMOOTH_K1 + row[i + CHANNELS] as f32 * kc + row[i + 2 * CHANNELS] as f32 * SMOOTH_K1;
    }
    // clip8: clamp to [0, 255] then truncate (the saturating cast).
    ss as u8
}

/// `ImageEnhance.Sharpness(img).enhance(factor)`; `smoothed` is scratch.
pub fn sharpness(img: &mut [u8], w: usize, h: usize, factor: f64, smoothed: &mut Vec<u8>) {
    let s = grown(smoothed, img.len());
    smooth(img, w, h, s);
    blend_with_buffer(s, img, factor);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blend_endpoints() {
        let mut img = vec![10u8, 200, 255];
        brightness(&mut img, 1.0);
        assert_eq!(img, [10, 200, 255]);
        brightness(&mut img, 0.0);
        assert_eq!(img, [0, 0, 0]);
    }

    #[test]
    fn extrapolation_clips() {
        let mut img = vec![200u8, 100, 0];
        brightness(&mut img, 1.9);
        assert_eq!(img, [255, 190, 0]);
    }

    /// The dispatched (AVX2 where available) blends equal the scalar formula on
    /// every pair of bytes, for interpolating, extrapolating and huge alphas.
    #[test]
    fn blend_kernels_match_the_scalar_formula_on_every_byte_pair() {
        let img: Vec<u8> = (0..65536u32).map(|i| (i & 255) as u8).collect();
        let degenerate: Vec<u8> = (0..65536u32).map(|i| (i >> 8) as u8).collect();
        for alpha in [0.27f32, 0.73, 1.27, 1.9, -0.9, 0.1 + 1e-7, 37.5, -1e9, 3e38] {
            let mut got = img.clone();
            blend_buffer(&degenerate, &mut got, alpha);
            let want: Vec<u8> = img.iter().zip(&degenerate).map(|(&v, &d)| blend_px(d, v, alpha)).collect();
            assert_eq!(got, want, "buffer alpha {alpha}");
            for c in [0u8, 1, 128, 254, 255] {
                let mut got = img.clone();
                blend_const(c, &mut got, alpha);
                let want: Vec<u8> = img.iter().map(|&v| blend_px(c, v, alpha)).collect();
                assert_eq!(got, want, "const {c} alpha {alpha}");
            }
        }
    }

    /// The dispatched smoothing equals the per-byte formula everywhere (block
    /// and tail bytes, several widths).
    #[test]
    fn smooth_kernel_matches_the_scalar_formula() {
        for (w, h) in [(3, 3), (4, 5), (11, 4), (37, 23), (64, 9)] {
            let img: Vec<u8> = (0..w * h * 3).map(|i| (i * 97 % 256) as u8).collect();
            let mut out = vec![0u8; img.len()];
            smooth(&img, w, h, &mut out);
            let stride = w * 3;
            for y in 1..h - 1 {
                let rows = [
                    &img[(y + 1) * stride..(y + 2) * stride],
                    &img[y * stride..(y + 1) * stride],
                    &img[(y - 1) * stride..y * stride],
                ];
                for i in 0..stride - 6 {
                    assert_eq!(out[y * stride + 3 + i], smooth_px(rows, i), "{w}x{h} y={y} i={i}");
                }
            }
        }
    }

    /// The dispatched luma kernels (AVX2 where available) equal the portable loops,
    /// on lengths with and without a partial 4096-pixel block.
    #[test]
    fn luma_kernels_match_the_portable_loops() {
        for pixels in [0, 1, 33, 4096, 4097, 10_001] {
            let img: Vec<u8> = (0..pixels * CHANNELS).map(|i| (i * 131 % 256) as u8).collect();
            assert_eq!(luma_sum(&img), luma_sum_portable(&img), "{pixels} px");
            let (mut got, mut want) = (vec![0u8; img.len()], vec![0u8; img.len()]);
            gray_rgb(&img, &mut got);
            gray_rgb_portable(&img, &mut want);
            assert_eq!(got, want, "{pixels} px");
        }
    }

    #[test]
    fn luma_is_pillows_integer_formula() {
        assert_eq!(luma(255, 255, 255), 255);
        assert_eq!(luma(0, 0, 0), 0);
        assert_eq!(luma(255, 0, 0), 76);
    }
}
