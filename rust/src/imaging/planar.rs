//! Packed RGB (HWC uint8) to three planes (CHW), the layout of a batch row:
//! raw uint8, or float32 normalised as ToTensor + Normalize compute it,
//! `(v / 255 - mean) / std` in f32, operation by operation.
//!
//! The AVX2 path splits 16 pixels at a time with byte shuffles and computes
//! the float levels with the same three IEEE operations per value (correctly
//! rounded in any width, no FMA); the portable path looks them up in a table
//! of the 256 levels computed with those operations. Both give the same bits.

use super::CHANNELS;

/// Pixels split per step of the float path (stack scratch).
const CHUNK: usize = 64;

/// Split `hwc` (`n * 3` bytes) into the planes `r`, `g`, `b` (`n` each).
pub fn hwc_to_planes_u8(hwc: &[u8], r: &mut [u8], g: &mut [u8], b: &mut [u8]) {
    let n = hwc.len() / CHANNELS;
    assert!(hwc.len() == n * CHANNELS && r.len() == n && g.len() == n && b.len() == n);
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if super::simd::use_avx2() {
        // SAFETY: AVX2 (and so SSSE3) is available; lengths checked above.
        done = unsafe { avx2::split(hwc, r, g, b) };
    }
    split_portable(&hwc[done * CHANNELS..], &mut r[done..], &mut g[done..], &mut b[done..]);
}

/// ToTensor + Normalize of one channel level: `(v / 255 - mean) / std` in f32.
#[inline(always)]
fn normalised(v: u8, mean: f32, std: f32) -> f32 {
    (v as f32 / 255.0 - mean) / std
}

/// The per-channel normalisation of float output, with its table of levels.
#[derive(Clone, Debug)]
pub struct Normalize {
    mean: [f32; 3],
    std: [f32; 3],
    lut: Box<[[f32; 256]; 3]>,
}

impl Normalize {
    pub fn new(mean: [f32; 3], std: [f32; 3]) -> Self {
        let mut lut = Box::new([[0f32; 256]; 3]);
        for c in 0..3 {
            for v in 0..256 {
                lut[c][v] = normalised(v as u8, mean[c], std[c]);
            }
        }
        Normalize { mean, std, lut }
    }

    /// Whether every level normalises to a finite value (an extreme mean/std could overflow).
    pub fn is_finite(&self) -> bool {
        self.lut.iter().flatten().all(|v| v.is_finite())
    }
}

/// Split `hwc` into normalised float planes.
pub fn hwc_to_planes_f32(hwc: &[u8], norm: &Normalize, r: &mut [f32], g: &mut [f32], b: &mut [f32]) {
    let n = hwc.len() / CHANNELS;
    assert!(hwc.len() == n * CHANNELS && r.len() == n && g.len() == n && b.len() == n);
    let mut planes = [[0u8; CHUNK]; 3];
    for (k, px) in hwc.chunks(CHUNK * CHANNELS).enumerate() {
        let m = px.len() / CHANNELS;
        let [pr, pg, pb] = &mut planes;
        hwc_to_planes_u8(px, &mut pr[..m], &mut pg[..m], &mut pb[..m]);
        let o = k * CHUNK;
        for (c, out) in [&mut r[o..o + m], &mut g[o..o + m], &mut b[o..o + m]].into_iter().enumerate() {
            let mut done = 0;
            #[cfg(target_arch = "x86_64")]
            if super::simd::use_avx2() {
                // SAFETY: AVX2 is available (checked at run time).
                done = unsafe { avx2::normalise(&planes[c][..m], norm.mean[c], norm.std[c], out) };
            }
            let t = &norm.lut[c];
            for (d, &v) in out[done..].iter_mut().zip(&planes[c][done..m]) {
                *d = t[v as usize];
            }
        }
    }
}

fn split_portable(hwc: &[u8], r: &mut [u8], g: &mut [u8], b: &mut [u8]) {
    for (((px, r), g), b) in hwc.chunks_exact(CHANNELS).zip(r).zip(g).zip(b) {
        *r = px[0];
        *g = px[1];
        *b = px[2];
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// [`super::normalised`] for whole groups of 8 levels; returns how many were done.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn normalise(levels: &[u8], mean: f32, std: f32, out: &mut [f32]) -> usize {
        let n = levels.len().min(out.len()) / 8 * 8;
        let (k255, m, s) = (_mm256_set1_ps(255.0), _mm256_set1_ps(mean), _mm256_set1_ps(std));
        for i in (0..n).step_by(8) {
            let v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(levels.as_ptr().add(i) as *const __m128i));
            let x = _mm256_div_ps(_mm256_sub_ps(_mm256_div_ps(_mm256_cvtepi32_ps(v), k255), m), s);
            _mm256_storeu_ps(out.as_mut_ptr().add(i), x);
        }
        n
    }

    /// Split whole groups of 16 pixels; returns how many pixels were done.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn split(hwc: &[u8], r: &mut [u8], g: &mut [u8], b: &mut [u8]) -> usize {
        // Byte k of plane c is input byte 3k + c, found in one of the three
        // 16-byte loads; each mask picks that load's share (-1 zeroes).
        const fn mask(c: usize, part: usize) -> [i8; 16] {
            let mut m = [-1i8; 16];
            let mut k = 0;
            while k < 16 {
                let i = 3 * k + c;
                if i / 16 == part {
                    m[k] = (i % 16) as i8;
                }
                k += 1;
            }
            m
        }
        let masks: [[__m128i; 3]; 3] = std::array::from_fn(|c| {
            std::array::from_fn(|part| {
                let m = match (c, part) {
                    (0, 0) => mask(0, 0),
                    (0, 1) => mask(0, 1),
                    (0, _) => mask(0, 2),
                    (1, 0) => mask(1, 0),
                    (1, 1) => mask(1, 1),
                    (1, _) => mask(1, 2),
                    (_, 0) => mask(2, 0),
                    (_, 1) => mask(2, 1),
                    _ => mask(2, 2),
                };
                _mm_loadu_si128(m.as_ptr() as *const __m128i)
            })
        });
        let groups = hwc.len() / 48;
        let src = hwc.as_ptr();
        let dst = [r.as_mut_ptr(), g.as_mut_ptr(), b.as_mut_ptr()];
        for k in 0..groups {
            let p = src.add(48 * k) as *const __m128i;
            let x = [_mm_loadu_si128(p), _mm_loadu_si128(p.add(1)), _mm_loadu_si128(p.add(2))];
            for c in 0..3 {
                let v = _mm_or_si128(
                    _mm_or_si128(_mm_shuffle_epi8(x[0], masks[c][0]), _mm_shuffle_epi8(x[1], masks[c][1])),
                    _mm_shuffle_epi8(x[2], masks[c][2]),
                );
                _mm_storeu_si128(dst[c].add(16 * k) as *mut __m128i, v);
            }
        }
        groups * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every level of every channel, for identity, CLIP and ImageNet statistics:
    /// the dispatched path (AVX2 arithmetic where available) equals the table.
    #[test]
    #[allow(clippy::excessive_precision)] // the published CLIP statistics, as written upstream
    fn simd_normalisation_equals_the_table_on_every_level() {
        let stats = [
            ([0.0f32; 3], [1.0f32; 3]),
            ([0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]),
            ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
            ([0.5; 3], [0.5; 3]),
        ];
        let hwc: Vec<u8> = (0..256 * 3).map(|i| (i / 3) as u8).collect();
        for (mean, std) in stats {
            let norm = Normalize::new(mean, std);
            let (mut r, mut g, mut b) = (vec![0f32; 256], vec![0f32; 256], vec![0f32; 256]);
            hwc_to_planes_f32(&hwc, &norm, &mut r, &mut g, &mut b);
            for (c, plane) in [&r, &g, &b].into_iter().enumerate() {
                for (v, got) in plane.iter().enumerate() {
                    assert_eq!(got.to_bits(), norm.lut[c][v].to_bits(), "mean {mean:?} std {std:?} c={c} v={v}");
                    assert_eq!(got.to_bits(), ((v as f32 / 255.0 - mean[c]) / std[c]).to_bits());
                }
            }
        }
    }

    #[test]
    fn planes_match_the_plain_loop_on_every_length() {
        let norm = Normalize::new([0.4; 3], [0.2, 1.2, 2.2]);
        let lut = &norm.lut;
        for n in [0usize, 1, 15, 16, 17, 47, 64, 65, 200, 256 * 3 + 5] {
            let hwc: Vec<u8> = (0..n * 3).map(|i| (i * 37 % 251) as u8).collect();
            let (mut r, mut g, mut b) = (vec![0u8; n], vec![0u8; n], vec![0u8; n]);
            hwc_to_planes_u8(&hwc, &mut r, &mut g, &mut b);
            let (mut fr, mut fg, mut fb) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
            hwc_to_planes_f32(&hwc, &norm, &mut fr, &mut fg, &mut fb);
            for p in 0..n {
                assert_eq!([r[p], g[p], b[p]], [hwc[3 * p], hwc[3 * p + 1], hwc[3 * p + 2]], "n={n} p={p}");
                for (c, f) in [&fr, &fg, &fb].into_iter().enumerate() {
                    assert_eq!(f[p].to_bits(), lut[c][hwc[3 * p + c] as usize].to_bits());
                }
            }
        }
    }
}
