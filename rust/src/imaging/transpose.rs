//! Transpose of packed RGB pixels (3 bytes each), the data movement around
//! the resampler's horizontal pass: `rows x cols` pixels in, `cols` rows of
//! `rows` pixels out. A pure copy, so every path gives the same bytes.
//!
//! The AVX2 path moves 8x8-pixel blocks: each source row's 24 bytes are
//! widened to eight 4-byte pixels, the block is transposed as 32-bit lanes
//! and narrowed back to 24-byte rows. Blocks at the edges, or whose 32-byte
//! loads would pass the end of the source, go through the portable path.

use super::CHANNELS;

/// Transpose `rows x cols` RGB pixels (source row stride `src_stride` bytes)
/// into `cols` rows of `rows` pixels (row stride `dst_stride`).
pub fn transpose_rgb(src: &[u8], src_stride: usize, rows: usize, cols: usize, dst: &mut [u8], dst_stride: usize) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(src.len() >= (rows - 1) * src_stride + cols * CHANNELS, "transpose source too short");
    assert!(dst.len() >= (cols - 1) * dst_stride + rows * CHANNELS, "transpose destination too short");
    #[cfg(target_arch = "x86_64")]
    if super::simd::use_avx2() {
        // SAFETY: AVX2 is available (checked at run time); bounds checked above
        // and per block inside.
        unsafe { avx2::transpose_rgb(src, src_stride, rows, cols, dst, dst_stride) };
        return;
    }
    transpose_rgb_portable(src, src_stride, 0..rows, 0..cols, dst, dst_stride);
}

/// The portable path over a sub-rectangle (also the AVX2 path's edges), in 16x16 tiles.
pub(crate) fn transpose_rgb_portable(
    src: &[u8],
    src_stride: usize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    dst: &mut [u8],
    dst_stride: usize,
) {
    const TILE: usize = 16;
    const TB: usize = TILE * CHANNELS;
    for r0 in rows.clone().step_by(TILE) {
        let r1 = (r0 + TILE).min(rows.end);
        for c0 in cols.clone().step_by(TILE) {
            let c1 = (c0 + TILE).min(cols.end);
            if r1 - r0 == TILE && c1 - c0 == TILE {
                // Full tile: fixed sizes let the compiler drop every bounds check.
                let mut tile = [[0u8; TB]; TILE];
                for (i, t) in tile.iter_mut().enumerate() {
                    let o = (r0 + i) * src_stride + c0 * CHANNELS;
                    t.copy_from_slice(&src[o..o + TB]);
                }
                for j in 0..TILE {
                    let o = (c0 + j) * dst_stride + r0 * CHANNELS;
                    let d: &mut [u8; TB] = (&mut dst[o..o + TB]).try_into().expect("tile row");
                    for (i, t) in tile.iter().enumerate() {
                        d[i * CHANNELS..i * CHANNELS + CHANNELS]
                            .copy_from_slice(&t[j * CHANNELS..j * CHANNELS + CHANNELS]);
                    }
                }
                continue;
            }
            for r in r0..r1 {
                let srow = &src[r * src_stride + c0 * CHANNELS..r * src_stride + c1 * CHANNELS];
                for (i, p) in srow.chunks_exact(CHANNELS).enumerate() {
                    let d = (c0 + i) * dst_stride + r * CHANNELS;
                    dst[d..d + CHANNELS].copy_from_slice(p);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{transpose_rgb_portable, CHANNELS};
    use std::arch::x86_64::*;

    const B: usize = 8;

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn transpose_rgb(
        src: &[u8],
        src_stride: usize,
        rows: usize,
        cols: usize,
        dst: &mut [u8],
        dst_stride: usize,
    ) {
        // Widen 12 bytes per 128-bit lane into four 4-byte pixels (4th byte 0).
        let widen = _mm256_setr_epi8(
            0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1, 0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1,
        );
        let spread = _mm256_setr_epi32(0, 1, 2, 2, 3, 4, 5, 5);
        // Narrow back: 12 bytes to the bottom of each lane, then the lanes together.
        let narrow = _mm256_setr_epi8(
            0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1, 0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1,
            -1,
        );
        let gather = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 3, 7);
        let full_rows = rows / B * B;
        let full_cols = cols / B * B;
        let sp = src.as_ptr();
        let dp = dst.as_mut_ptr();
        let mut tail_from = usize::MAX; // first row block whose loads would pass the end
        'blocks: for r0 in (0..full_rows).step_by(B) {
            for c0 in (0..full_cols).step_by(B) {
                // Each row loads 32 bytes (24 used): stay inside `src`.
                if (r0 + B - 1) * src_stride + c0 * CHANNELS + 32 > src.len() {
                    tail_from = r0;
                    break 'blocks;
                }
                let mut v = [_mm256_setzero_si256(); B];
                for (i, vi) in v.iter_mut().enumerate() {
                    let p = sp.add((r0 + i) * src_stride + c0 * CHANNELS) as *const __m256i;
                    let x = _mm256_permutevar8x32_epi32(_mm256_loadu_si256(p), spread);
                    *vi = _mm256_shuffle_epi8(x, widen);
                }
                // 8x8 transpose of 32-bit lanes: v[j] becomes column j.
                let t0 = _mm256_unpacklo_epi32(v[0], v[1]);
                let t1 = _mm256_unpackhi_epi32(v[0], v[1]);
                let t2 = _mm256_unpacklo_epi32(v[2], v[3]);
                let t3 = _mm256_unpackhi_epi32(v[2], v[3]);
                let t4 = _mm256_unpacklo_epi32(v[4], v[5]);
                let t5 = _mm256_unpackhi_epi32(v[4], v[5]);
                let t6 = _mm256_unpacklo_epi32(v[6], v[7]);
                let t7 = _mm256_unpackhi_epi32(v[6], v[7]);
                let u0 = _mm256_unpacklo_epi64(t0, t2);
                let u1 = _mm256_unpackhi_epi64(t0, t2);
                let u2 = _mm256_unpacklo_epi64(t1, t3);
                let u3 = _mm256_unpackhi_epi64(t1, t3);
                let u4 = _mm256_unpacklo_epi64(t4, t6);
                let u5 = _mm256_unpackhi_epi64(t4, t6);
                let u6 = _mm256_unpacklo_epi64(t5, t7);
                let u7 = _mm256_unpackhi_epi64(t5, t7);
                let cols_out = [
                    _mm256_permute2x128_si256(u0, u4, 0x20),
                    _mm256_permute2x128_si256(u1, u5, 0x20),
                    _mm256_permute2x128_si256(u2, u6, 0x20),
                    _mm256_permute2x128_si256(u3, u7, 0x20),
                    _mm256_permute2x128_si256(u0, u4, 0x31),
                    _mm256_permute2x128_si256(u1, u5, 0x31),
                    _mm256_permute2x128_si256(u2, u6, 0x31),
                    _mm256_permute2x128_si256(u3, u7, 0x31),
                ];
                for (j, c) in cols_out.iter().enumerate() {
                    let packed = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(*c, narrow), gather);
                    let q = dp.add((c0 + j) * dst_stride + r0 * CHANNELS);
                    // 24 bytes: 16 + 8 (never past the block's own bytes).
                    _mm_storeu_si128(q as *mut __m128i, _mm256_castsi256_si128(packed));
                    _mm_storel_epi64(q.add(16) as *mut __m128i, _mm256_extracti128_si256(packed, 1));
                }
            }
        }
        let done_rows = full_rows.min(tail_from);
        // Right edge of the full row blocks, then every remaining row.
        transpose_rgb_portable(src, src_stride, 0..done_rows, full_cols..cols, dst, dst_stride);
        transpose_rgb_portable(src, src_stride, done_rows..rows, 0..cols, dst, dst_stride);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dispatched transpose (AVX2 where available) equals the portable
    /// one, including edges, strides with slack and sources that end exactly
    /// at the last pixel.
    #[test]
    fn dispatched_transpose_matches_portable() {
        let mut seed = 7u64;
        let mut rnd = move |n: usize| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        for _ in 0..300 {
            let (rows, cols) = (1 + rnd(40), 1 + rnd(40));
            let src_stride = cols * CHANNELS + rnd(3) * CHANNELS;
            let dst_stride = rows * CHANNELS + rnd(3) * CHANNELS;
            let src_len = (rows - 1) * src_stride + cols * CHANNELS;
            let src: Vec<u8> = (0..src_len).map(|_| rnd(256) as u8).collect();
            let mut want = vec![0xAB; (cols - 1) * dst_stride + rows * CHANNELS];
            let mut got = want.clone();
            transpose_rgb_portable(&src, src_stride, 0..rows, 0..cols, &mut want, dst_stride);
            transpose_rgb(&src, src_stride, rows, cols, &mut got, dst_stride);
            assert_eq!(got, want, "{rows}x{cols} strides {src_stride}/{dst_stride}");
            for r in 0..rows {
                for c in 0..cols {
                    let s = &src[r * src_stride + c * 3..][..3];
                    assert_eq!(&want[c * dst_stride + r * 3..][..3], s);
                }
            }
        }
    }
}
