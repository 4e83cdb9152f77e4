//! Pillow 13.0.0's 8-bit convolution resize, `ImagingResample` in
//! `src/libImaging/Resample.c`, fused with the crop that precedes it.
//!
//! What is replicated, bit for bit:
//! - `precompute_coeffs`: filter windows and weights in `double`, the box
//!   edges as C `float`, truncating `(int)` casts, normalisation by the sum;
//! - `normalize_coeffs_8bpc`: weights to fixed point with
//!   `PRECISION_BITS = 32 - 8 - 2 = 22`, rounding half away from zero;
//! - each pass accumulates `int` sums starting at `1 << 21` and clips
//!   `sum >> 22` to 0..=255, so the intermediate image is rounded to 8 bits;
//! - which passes run and in which order. Pillow 13 (PR #9549) runs the
//!   *vertical* pass first when both passes are needed and
//!   `in_h - out_h > 0 && in_h - out_h > 2 * (in_w - out_w)` (read from the
//!   compiled `ImagingResample` of the 13.0.0 wheel); otherwise horizontal
//!   first as before. A pass is skipped when its axis keeps its size.
//!
//! The crop's black padding is never materialised: a tap on a padded pixel
//! adds exactly 0 to the integer sum, so taps outside the source are dropped
//! after the weights have been computed over the full padded extent.

use super::crop::CropBox;
use super::transpose::transpose_rgb;
use super::{grown, CHANNELS};

/// Resampling filter used by the crop+resize (torchvision `InterpolationMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Interpolation {
    Bilinear,
    Bicubic,
}

impl Interpolation {
    /// `struct filter.support`.
    fn support(self) -> f64 {
        match self {
            Interpolation::Bilinear => 1.0,
            Interpolation::Bicubic => 2.0,
        }
    }

    /// `bilinear_filter` / `bicubic_filter` (a = -0.5), same operation order.
    #[inline]
    fn weight(self, x: f64) -> f64 {
        let x = if x < 0.0 { -x } else { x };
        match self {
            Interpolation::Bilinear => {
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Interpolation::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
        }
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;
/// Rounding bias every accumulator starts from.
const HALF: i32 = 1 << (PRECISION_BITS - 1);

#[inline(always)]
fn clip8(ss: i32) -> u8 {
    (ss >> PRECISION_BITS).clamp(0, 255) as u8
}

/// One output pixel's taps: source index of the first tap, tap count, offset into `taps`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Window {
    start: usize,
    len: usize,
    off: usize,
}

/// One axis of the resize: for every output pixel, its fixed-point taps on the
/// source axis (taps on padding removed).
#[derive(Debug, Default)]
pub struct AxisCoeffs {
    windows: Vec<Window>,
    taps: Vec<i32>,
}

impl AxisCoeffs {
    /// `precompute_coeffs(in_size, 0.0f, (float)in_size, out_size)` +
    /// `normalize_coeffs_8bpc`, then crop coordinate `c` is mapped to source
    /// coordinate `c + shift` and taps outside `0..src_len` are dropped.
    /// `weights` is scratch for one window's double weights.
    pub fn build(
        &mut self,
        filter: Interpolation,
        in_size: usize,
        out_size: usize,
        shift: i64,
        src_len: usize,
        weights: &mut Vec<f64>,
    ) {
        self.windows.clear();
        self.taps.clear();
        // The box edges are C floats: in0 = 0.0f, in1 = (float)in_size.
        let in0: f32 = 0.0;
        let in1: f32 = in_size as f32;
        let scale = (in1 - in0) as f64 / out_size as f64;
        let filterscale = if scale < 1.0 { 1.0 } else { scale };
        let support = filter.support() * filterscale;
        let ss = 1.0 / filterscale;
        for xx in 0..out_size {
            let center = in0 as f64 + (xx as f64 + 0.5) * scale;
            // C `(int)` truncates toward zero; clamping makes the sign irrelevant.
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
            let n = (xmax - xmin).max(0) as usize;
            weights.clear();
            let mut ww = 0.0f64;
            for x in 0..n {
                let w = filter.weight((((x as i64 + xmin) as f64) - center + 0.5) * ss);
                weights.push(w);
                ww += w;
            }
            if ww != 0.0 {
                for w in weights.iter_mut() {
                    *w /= ww;
                }
            }
            // Keep only taps whose source pixel exists.
            let first_src = xmin + shift;
            let lo = (-first_src).clamp(0, n as i64) as usize;
            let hi = (src_len as i64 - first_src).clamp(lo as i64, n as i64) as usize;
            let off = self.taps.len();
            for &w in &weights[lo..hi] {
                self.taps.push(to_fixed(w));
            }
            let start = if hi > lo { (first_src + lo as i64) as usize } else { 0 };
            self.windows.push(Window { start, len: hi - lo, off });
        }
    }

    /// The source range `[lo, hi)` any window touches (empty if none).
    fn source_span(&self) -> (usize, usize) {
        let mut lo = usize::MAX;
        let mut hi = 0;
        for w in self.windows.iter().filter(|w| w.len > 0) {
            lo = lo.min(w.start);
            hi = hi.max(w.start + w.len);
        }
        if lo >= hi {
            (0, 0)
        } else {
            (lo, hi)
        }
    }

    /// Fixed-point taps of output pixel `i` and the source index of the first.
    #[inline]
    fn taps_of(&self, i: usize) -> (usize, &[i32]) {
        let w = self.windows[i];
        (w.start, &self.taps[w.off..w.off + w.len])
    }

    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// Taps of output pixel `i` as (first source index, fixed-point weights); for tests.
    pub fn window(&self, i: usize) -> (usize, Vec<i32>) {
        let (s, t) = self.taps_of(i);
        (s, t.to_vec())
    }
}

/// `normalize_coeffs_8bpc`: `(int)(±0.5 + k * (1 << 22))`, truncating.
#[inline]
fn to_fixed(k: f64) -> i32 {
    let scaled = k * (1i32 << PRECISION_BITS) as f64;
    if k < 0.0 {
        (-0.5 + scaled) as i32
    } else {
        (0.5 + scaled) as i32
    }
}

/// Horizontal pass over `rows` rows of a packed RGB source whose row `r`
/// starts at `src[r * src_stride]` (window indices are pixel columns);
/// output row `r` goes to `dst[r * dst_stride]`.
///
/// Done as transpose -> vertical kernel -> transpose: integer sums are exact
/// in any order, and the vertical kernel runs over contiguous bytes with one
/// coefficient per source row, which vectorises far better than per-pixel
/// dot products of 3-byte pixels.
#[allow(clippy::too_many_arguments)]
fn horizontal_pass(
    src: &[u8],
    src_stride: usize,
    rows: usize,
    coeffs: &mut AxisCoeffs,
    scratch: &mut PassScratch,
    dst: &mut [u8],
    dst_stride: usize,
) {
    let out_w = coeffs.len();
    if rows == 0 || out_w == 0 {
        return;
    }
    let (c0, c1) = coeffs.source_span();
    let cols = c1 - c0;
    let col_bytes = rows * CHANNELS;
    let t = grown(&mut scratch.t, cols * col_bytes);
    let u = grown(&mut scratch.u, out_w * col_bytes);
    transpose_rgb(&src[c0 * CHANNELS..], src_stride, rows, cols, t, col_bytes);
    shift_windows(coeffs, c0);
    vertical_pass(t, col_bytes, col_bytes, coeffs, u, col_bytes, &mut scratch.acc);
    transpose_rgb(u, col_bytes, out_w, rows, dst, dst_stride);
}

/// Buffers of the horizontal pass (transposed input and output) and the
/// vertical accumulator row.
#[derive(Debug, Default)]
struct PassScratch {
    t: Vec<u8>,
    u: Vec<u8>,
    acc: Vec<i32>,
}

/// The direct per-pixel horizontal pass, as Pillow writes it; the transposed
/// pass must agree with it.
#[cfg(test)]
fn horizontal_direct(src: &[u8], src_stride: usize, rows: usize, coeffs: &AxisCoeffs, dst: &mut [u8]) {
    let out_w = coeffs.len();
    for r in 0..rows {
        let row = &src[r * src_stride..];
        let out = &mut dst[r * out_w * CHANNELS..(r + 1) * out_w * CHANNELS];
        for (xx, px) in out.chunks_exact_mut(CHANNELS).enumerate() {
            let (start, k) = coeffs.taps_of(xx);
            let mut s = [HALF; CHANNELS];
            for (i, &kv) in k.iter().enumerate() {
                for c in 0..CHANNELS {
                    s[c] += row[(start + i) * CHANNELS + c] as i32 * kv;
                }
            }
            for c in 0..CHANNELS {
                px[c] = clip8(s[c]);
            }
        }
    }
}

/// Vertical pass: `row_bytes` bytes of each source row (channel-agnostic),
/// source row `y` starting at `src[y * src_stride]`; output row `yy` at
/// `dst[yy * dst_stride]`.
fn vertical_pass(
    src: &[u8],
    src_stride: usize,
    row_bytes: usize,
    coeffs: &AxisCoeffs,
    dst: &mut [u8],
    dst_stride: usize,
    acc: &mut Vec<i32>,
) {
    #[cfg(target_arch = "x86_64")]
    if super::simd::use_avx2() {
        // SAFETY: AVX2 is available (checked at run time); the kernel checks
        // every row's bounds before reading or writing it.
        unsafe { avx2::vertical_kernel(src, src_stride, row_bytes, coeffs, dst, dst_stride) };
        return;
    }
    vertical_kernel(src, src_stride, row_bytes, coeffs, dst, dst_stride, grown(acc, row_bytes));
}

/// The portable vertical kernel (plain loops the compiler vectorises for the baseline target).
#[allow(clippy::too_many_arguments)]
fn vertical_kernel(
    src: &[u8],
    src_stride: usize,
    row_bytes: usize,
    coeffs: &AxisCoeffs,
    dst: &mut [u8],
    dst_stride: usize,
    acc: &mut [i32],
) {
    // Blocks of BLOCK bytes stay in registers across all taps; the tail
    // goes through the accumulator row.
    const BLOCK: usize = 32;
    let full = row_bytes / BLOCK * BLOCK;
    for yy in 0..coeffs.len() {
        let (start, k) = coeffs.taps_of(yy);
        let out = &mut dst[yy * dst_stride..yy * dst_stride + row_bytes];
        for x0 in (0..full).step_by(BLOCK) {
            let mut a = [HALF; BLOCK];
            for (i, &kv) in k.iter().enumerate() {
                let o = (start + i) * src_stride + x0;
                let row: &[u8; BLOCK] = src[o..o + BLOCK].try_into().expect("block");
                for j in 0..BLOCK {
                    a[j] += row[j] as i32 * kv;
                }
            }
            for j in 0..BLOCK {
                out[x0 + j] = clip8(a[j]);
            }
        }
        let tail = &mut acc[..row_bytes - full];
        tail.fill(HALF);
        for (i, &kv) in k.iter().enumerate() {
            let o = (start + i) * src_stride;
            for (a, &p) in tail.iter_mut().zip(&src[o + full..o + row_bytes]) {
                *a += p as i32 * kv;
            }
        }
        for (o, &a) in out[full..].iter_mut().zip(tail.iter()) {
            *o = clip8(a);
        }
    }
}

/// The vertical kernel with AVX2 intrinsics: 32 bytes per step in four
/// 8-lane i32 accumulators (`vpmulld`, the same exact 32-bit products and
/// sums as Pillow's C loop), then `>> 22` and saturating packs, which equal
/// `clip8` because `sum >> 22` always fits 16 bits.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{clip8, AxisCoeffs, HALF, PRECISION_BITS};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn vertical_kernel(
        src: &[u8],
        src_stride: usize,
        row_bytes: usize,
        coeffs: &AxisCoeffs,
        dst: &mut [u8],
        dst_stride: usize,
    ) {
        let half = _mm256_set1_epi32(HALF);
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        let sp = src.as_ptr();
        let dp = dst.as_mut_ptr();
        for yy in 0..coeffs.len() {
            let (start, k) = coeffs.taps_of(yy);
            assert!(yy * dst_stride + row_bytes <= dst.len(), "vertical pass output row out of bounds");
            if !k.is_empty() {
                assert!(
                    (start + k.len() - 1) * src_stride + row_bytes <= src.len(),
                    "vertical pass source rows out of bounds"
                );
            }
            let out = dp.add(yy * dst_stride);
            let mut x0 = 0;
            while x0 + 32 <= row_bytes {
                let (mut a0, mut a1, mut a2, mut a3) = (half, half, half, half);
                for (i, &kv) in k.iter().enumerate() {
                    let p = sp.add((start + i) * src_stride + x0);
                    let kk = _mm256_set1_epi32(kv);
                    let widen = |o: usize| _mm256_cvtepu8_epi32(_mm_loadl_epi64(p.add(o) as *const __m128i));
                    a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(widen(0), kk));
                    a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(widen(8), kk));
                    a2 = _mm256_add_epi32(a2, _mm256_mullo_epi32(widen(16), kk));
                    a3 = _mm256_add_epi32(a3, _mm256_mullo_epi32(widen(24), kk));
                }
                let s = |a| _mm256_srai_epi32::<{ PRECISION_BITS as i32 }>(a);
                let lo = _mm256_packs_epi32(s(a0), s(a1));
                let hi = _mm256_packs_epi32(s(a2), s(a3));
                let bytes = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(lo, hi), order);
                _mm256_storeu_si256(out.add(x0) as *mut __m256i, bytes);
                x0 += 32;
            }
            while x0 + 8 <= row_bytes {
                let mut a = half;
                for (i, &kv) in k.iter().enumerate() {
                    let p = sp.add((start + i) * src_stride + x0);
                    let v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(p as *const __m128i));
                    a = _mm256_add_epi32(a, _mm256_mullo_epi32(v, _mm256_set1_epi32(kv)));
                }
                let a = _mm256_srai_epi32::<{ PRECISION_BITS as i32 }>(a);
                let w = _mm_packs_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256::<1>(a));
                _mm_storel_epi64(out.add(x0) as *mut __m128i, _mm_packus_epi16(w, w));
                x0 += 8;
            }
            for x in x0..row_bytes {
                let mut a = HALF;
                for (i, &kv) in k.iter().enumerate() {
                    a += *sp.add((start + i) * src_stride + x) as i32 * kv;
                }
                *out.add(x) = clip8(a);
            }
        }
    }
}

/// Reusable crop+resize state (coefficient tables and pass buffers).
#[derive(Debug, Default)]
pub struct Resampler {
    h: AxisCoeffs,
    v: AxisCoeffs,
    tmp: Vec<u8>,
    pass: PassScratch,
    weights: Vec<f64>,
}

impl Resampler {
    pub fn new() -> Self {
        Self::default()
    }

    /// `img.crop(box).resize((out_w, out_h), filter)` of a packed RGB image
    /// into `dst` (`out_w * out_h * 3` bytes). The box must be non-empty.
    /// (Never inlined: instruction counts attribute the stage by this symbol.)
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    pub fn crop_resize(
        &mut self,
        src: &[u8],
        src_w: usize,
        src_h: usize,
        b: CropBox,
        out_w: usize,
        out_h: usize,
        filter: Interpolation,
        dst: &mut [u8],
    ) {
        assert_eq!(src.len(), src_w * src_h * CHANNELS);
        assert_eq!(dst.len(), out_w * out_h * CHANNELS);
        assert!(b.width > 0 && b.height > 0);
        let (in_w, in_h) = (b.width, b.height);
        let need_h = out_w != in_w;
        let need_v = out_h != in_h;
        let src_stride = src_w * CHANNELS;
        let out_stride = out_w * CHANNELS;
        if !need_h && !need_v {
            // Image.resize returns a copy of the crop.
            super::crop::crop_pad(src, src_w, src_h, b, dst);
            return;
        }
        if need_h {
            self.h.build(filter, in_w, out_w, b.left, src_w, &mut self.weights);
        }
        if need_v {
            self.v.build(filter, in_h, out_h, b.top, src_h, &mut self.weights);
        }
        if !need_v {
            // Horizontal pass only: output row r is crop row r (black outside the image).
            dst.fill(0);
            let (r0, r1) = clip_range(b.top, out_h, src_h);
            if r0 == r1 {
                return; // the box misses the image vertically
            }
            let d0 = (r0 as i64 - b.top) as usize;
            horizontal_pass(
                &src[r0 * src_stride..],
                src_stride,
                r1 - r0,
                &mut self.h,
                &mut self.pass,
                &mut dst[d0 * out_stride..],
                out_stride,
            );
            return;
        }
        if !need_h {
            // Vertical pass only, on the crop columns that exist (black elsewhere).
            dst.fill(0);
            let (c0, c1) = clip_range(b.left, out_w, src_w);
            if c0 == c1 {
                return; // the box misses the image horizontally
            }
            let d0 = (c0 as i64 - b.left) as usize;
            vertical_pass(
                &src[c0 * CHANNELS..],
                src_stride,
                (c1 - c0) * CHANNELS,
                &self.v,
                &mut dst[d0 * CHANNELS..],
                out_stride,
                &mut self.pass.acc,
            );
            return;
        }
        let (dy, dx) = (in_h as i64 - out_h as i64, in_w as i64 - out_w as i64);
        let vertical_first = dy > 0 && dy > 2 * dx;
        if !vertical_first {
            // Horizontal pass over the source rows the vertical windows use.
            let (r0, r1) = self.v.source_span();
            let n = (r1 - r0) * out_stride;
            let tmp = grown(&mut self.tmp, n);
            horizontal_pass(&src[r0 * src_stride..], src_stride, r1 - r0, &mut self.h, &mut self.pass, tmp, out_stride);
            shift_windows(&mut self.v, r0);
            vertical_pass(tmp, out_stride, out_stride, &self.v, dst, out_stride, &mut self.pass.acc);
        } else {
            // Vertical pass over the source columns the horizontal windows use.
            let (c0, c1) = self.h.source_span();
            let row_bytes = (c1 - c0) * CHANNELS;
            let n = out_h * row_bytes;
            let tmp = grown(&mut self.tmp, n);
            vertical_pass(&src[c0 * CHANNELS..], src_stride, row_bytes, &self.v, tmp, row_bytes, &mut self.pass.acc);
            shift_windows(&mut self.h, c0);
            horizontal_pass(tmp, row_bytes, out_h, &mut self.h, &mut self.pass, dst, out_stride);
        }
    }
}

/// The part `[lo, hi)` of source indices `start .. start + len` inside `0..src_len`.
fn clip_range(start: i64, len: usize, src_len: usize) -> (usize, usize) {
    let lo = start.clamp(0, src_len as i64) as usize;
    let hi = (start + len as i64).clamp(lo as i64, src_len as i64) as usize;
    (lo, hi)
}

/// Re-base windows onto a buffer that starts at source index `origin`.
fn shift_windows(c: &mut AxisCoeffs, origin: usize) {
    for w in c.windows.iter_mut().filter(|w| w.len > 0) {
        w.start -= origin;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10 -> 4 bilinear (scale 2.5, support 2.5): Pillow 13.0.0's taps, obtained outside this
    /// crate. Resizing a 10x1 mode "F" image (float32, `precompute_coeffs`'s double weights
    /// used directly) holding 2^22 at pixel x and 0 elsewhere with `Image.resize((4, 1),
    /// BILINEAR)` gives `weight * 2^22` of every window for tap x:
    ///   window 0: x 0..3 -> 1334551.25, 1715851.625, 953250.9375, 190650.1875
    ///   window 1: x 1..5 -> 167772.156, 838860.812, 1509949.5, 1174405.125, 503316.469
    ///   windows 2, 3 mirror 1, 0 (x 4..8 and 6..9).
    /// `normalize_coeffs_8bpc` rounds these half away from zero; the same numbers in double
    /// (7/22, 9/22, 5/22, 1/22 and 0.04, 0.2, 0.36, 0.28, 0.12 times 2^22) are nowhere near .5.
    #[test]
    fn bilinear_downscale_coefficients() {
        let mut c = AxisCoeffs::default();
        let mut w = Vec::new();
        c.build(Interpolation::Bilinear, 10, 4, 0, 10, &mut w);
        let expected: [(usize, &[i32]); 4] = [
            (0, &[1334551, 1715852, 953251, 190650]),
            (1, &[167772, 838861, 1509949, 1174405, 503316]),
            (4, &[503316, 1174405, 1509949, 838861, 167772]),
            (6, &[190650, 953251, 1715852, 1334551]),
        ];
        assert_eq!(c.len(), 4);
        for (i, (start, taps)) in expected.iter().enumerate() {
            assert_eq!(c.window(i), (*start, taps.to_vec()), "window {i}");
        }
    }

    #[test]
    fn bicubic_upscale_has_negative_lobes() {
        let mut c = AxisCoeffs::default();
        let mut w = Vec::new();
        c.build(Interpolation::Bicubic, 4, 9, 0, 4, &mut w);
        assert!((0..9).any(|i| c.window(i).1.iter().any(|&k| k < 0)));
    }

    #[test]
    fn padding_taps_are_dropped() {
        // A box starting 5 pixels left of a 3-pixel source: crop columns 0..5 are padding.
        let mut c = AxisCoeffs::default();
        let mut w = Vec::new();
        c.build(Interpolation::Bilinear, 8, 8, -5, 3, &mut w);
        for i in 0..8 {
            let (s, t) = c.window(i);
            assert!(t.is_empty() || s + t.len() <= 3);
        }
    }

    /// The transposed horizontal pass equals Pillow's direct per-pixel loop.
    #[test]
    fn transposed_horizontal_pass_matches_direct_loop() {
        let mut seed = 12345u64;
        let mut rnd = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for _ in 0..200 {
            let (w, rows) = (1 + rnd() % 40, 1 + rnd() % 7);
            let src: Vec<u8> = (0..w * rows * CHANNELS).map(|_| rnd() as u8).collect();
            let in_w = 1 + rnd() % 60;
            let out_w = 1 + rnd() % 50;
            let shift = (rnd() % 50) as i64 - 25;
            let filter = if rnd() % 2 == 0 { Interpolation::Bilinear } else { Interpolation::Bicubic };
            let mut c = AxisCoeffs::default();
            let mut wts = Vec::new();
            c.build(filter, in_w, out_w, shift, w, &mut wts);
            let mut expected = vec![0u8; rows * out_w * CHANNELS];
            horizontal_direct(&src, w * CHANNELS, rows, &c, &mut expected);
            let mut got = vec![7u8; rows * out_w * CHANNELS];
            let mut scratch = PassScratch::default();
            horizontal_pass(&src, w * CHANNELS, rows, &mut c, &mut scratch, &mut got, out_w * CHANNELS);
            assert_eq!(got, expected, "w={w} in={in_w} out={out_w} shift={shift} {filter:?}");
        }
    }

    /// Boxes that miss the image on the axis that keeps its size are black.
    #[test]
    fn single_pass_boxes_outside_the_image() {
        let src = vec![200u8; 5 * 4 * 3];
        let mut r = Resampler::new();
        for (b, ow, oh) in [
            (CropBox { left: 0, top: -21, width: 7, height: 1 }, 3, 1),
            (CropBox { left: 0, top: 9, width: 7, height: 2 }, 3, 2),
            (CropBox { left: -30, top: 0, width: 2, height: 7 }, 2, 3),
            (CropBox { left: 6, top: 0, width: 2, height: 7 }, 2, 3),
        ] {
            let mut out = vec![1u8; ow * oh * 3];
            r.crop_resize(&src, 5, 4, b, ow, oh, Interpolation::Bicubic, &mut out);
            assert!(out.iter().all(|&v| v == 0), "{b:?}");
        }
    }

    /// Forced-portable and dispatched (AVX2 where available) kernels give the
    /// same bytes for both pass orders, up- and downscales, padded boxes.
    #[test]
    fn portable_and_dispatched_kernels_agree() {
        let mut seed = 4242u64;
        let mut rnd = move |n: usize| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        let (w, h) = (150, 110);
        let src: Vec<u8> = (0..w * h * CHANNELS).map(|_| rnd(256) as u8).collect();
        let mut r = Resampler::new();
        for _ in 0..60 {
            let b = CropBox {
                left: rnd(w) as i64 - 20,
                top: rnd(h) as i64 - 20,
                width: 1 + rnd(2 * w),
                height: 1 + rnd(2 * h),
            };
            let (ow, oh) = (1 + rnd(90), 1 + rnd(90));
            let filter = if rnd(2) == 0 { Interpolation::Bilinear } else { Interpolation::Bicubic };
            let mut native = vec![0u8; ow * oh * CHANNELS];
            let mut portable = native.clone();
            crate::imaging::simd::set_force_portable(true);
            r.crop_resize(&src, w, h, b, ow, oh, filter, &mut portable);
            crate::imaging::simd::set_force_portable(false);
            r.crop_resize(&src, w, h, b, ow, oh, filter, &mut native);
            assert_eq!(native, portable, "{b:?} -> {ow}x{oh} {filter:?}");
        }
    }

    #[test]
    fn fixed_point_rounds_half_away_from_zero() {
        assert_eq!(to_fixed(0.5), 1 << 21);
        assert_eq!(to_fixed(-0.5), -(1 << 21));
        assert_eq!(to_fixed(1.0), 1 << 22);
        assert_eq!(to_fixed(0.0), 0);
    }

    #[test]
    fn same_size_is_a_copy_and_padding_is_black() {
        let src: Vec<u8> = (0..4 * 3 * 3).map(|i| i as u8 * 7).collect();
        let mut r = Resampler::new();
        let mut out = vec![0u8; 4 * 3 * 3];
        r.crop_resize(&src, 4, 3, CropBox::full(4, 3), 4, 3, Interpolation::Bicubic, &mut out);
        assert_eq!(out, src);
        // Shifted box: the first column is padding.
        let b = CropBox { left: -1, top: 0, width: 4, height: 3 };
        r.crop_resize(&src, 4, 3, b, 4, 3, Interpolation::Bilinear, &mut out);
        let mut expected = vec![0u8; 4 * 3 * 3];
        super::super::crop::crop_pad(&src, 4, 3, b, &mut expected);
        assert_eq!(out, expected);
    }
}
