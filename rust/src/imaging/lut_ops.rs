//! `PIL.ImageOps` point operations (Pillow 13.0.0) on RGB: each builds one
//! 256-entry table per band in Python and applies it with `Image.point`,
//! which clips table values to 0..=255.

use super::CHANNELS;

/// A lookup table per band.
pub type Luts = [[u8; 256]; CHANNELS];

/// `Image.point(lut)` with one table per band.
pub fn apply_luts(img: &mut [u8], luts: &Luts) {
    for px in img.chunks_exact_mut(CHANNELS) {
        for c in 0..CHANNELS {
            px[c] = luts[c][px[c] as usize];
        }
    }
}

/// The same table on every band.
pub fn apply_lut(img: &mut [u8], lut: &[u8; 256]) {
    for v in img.iter_mut() {
        *v = lut[*v as usize];
    }
}

/// `Image.histogram()` of an RGB image, per band.
pub fn histograms(img: &[u8]) -> [[u64; 256]; CHANNELS] {
    let mut h = [[0u64; 256]; CHANNELS];
    for px in img.chunks_exact(CHANNELS) {
        for c in 0..CHANNELS {
            h[c][px[c] as usize] += 1;
        }
    }
    h
}

/// `ImageOps.posterize(img, bits)`: keep the top `bits` bits (1..=8).
pub fn posterize(img: &mut [u8], bits: u32) {
    debug_assert!((1..=8).contains(&bits));
    let mask = !((1u32 << (8 - bits)) - 1) as u8;
    let mut lut = [0u8; 256];
    for (i, v) in lut.iter_mut().enumerate() {
        *v = i as u8 & mask;
    }
    apply_lut(img, &lut);
}

/// `ImageOps.solarize(img, threshold)`: invert values `>= threshold`
/// (Python compares the int with the float exactly).
pub fn solarize(img: &mut [u8], threshold: f64) {
    let mut lut = [0u8; 256];
    for (i, v) in lut.iter_mut().enumerate() {
        *v = if (i as f64) < threshold { i as u8 } else { 255 - i as u8 };
    }
    apply_lut(img, &lut);
}

/// `ImageOps.autocontrast(img)` (cutoff 0, no ignore, no mask).
pub fn autocontrast(img: &mut [u8]) {
    let hist = histograms(img);
    let mut luts = [[0u8; 256]; CHANNELS];
    for (h, lut) in hist.iter().zip(luts.iter_mut()) {
        let lo = h.iter().position(|&n| n != 0);
        let hi = h.iter().rposition(|&n| n != 0);
        match (lo, hi) {
            (Some(lo), Some(hi)) if hi > lo => {
                let scale = 255.0 / (hi - lo) as f64;
                let offset = -(lo as f64) * scale;
                for (ix, v) in lut.iter_mut().enumerate() {
                    // Python int() truncates toward zero, then clamps.
                    let x = (ix as f64 * scale + offset) as i64;
                    *v = x.clamp(0, 255) as u8;
                }
            }
            _ => {
                for (ix, v) in lut.iter_mut().enumerate() {
                    *v = ix as u8;
                }
            }
        }
    }
    apply_luts(img, &luts);
}

/// `ImageOps.equalize(img)` (no mask), integer arithmetic as in Python.
pub fn equalize(img: &mut [u8]) {
    let hist = histograms(img);
    let mut luts = [[0u8; 256]; CHANNELS];
    for (h, lut) in hist.iter().zip(luts.iter_mut()) {
        let count_nonzero = h.iter().filter(|&&n| n != 0).count();
        let last_nonzero = h.iter().rev().find(|&&n| n != 0).copied().unwrap_or(0);
        let total: u64 = h.iter().sum();
        let step = if count_nonzero <= 1 { 0 } else { (total - last_nonzero) / 255 };
        if step == 0 {
            for (ix, v) in lut.iter_mut().enumerate() {
                *v = ix as u8;
            }
        } else {
            let mut n = step / 2;
            for (i, v) in lut.iter_mut().enumerate() {
                // Image.point clips the table values to 255.
                *v = (n / step).min(255) as u8;
                n += h[i];
            }
        }
    }
    apply_luts(img, &luts);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posterize_masks_low_bits() {
        let mut img = vec![255u8, 128, 127, 3, 0, 200];
        posterize(&mut img, 1);
        assert_eq!(img, [128, 128, 0, 0, 0, 128]);
    }

    #[test]
    fn solarize_threshold_is_inclusive() {
        let mut img = vec![10u8, 178, 179, 255, 0, 128];
        solarize(&mut img, 178.5);
        assert_eq!(img, [10, 178, 76, 0, 0, 128]);
    }

    #[test]
    fn autocontrast_stretches_each_band() {
        let mut img = vec![50u8, 0, 7, 100, 255, 7];
        autocontrast(&mut img);
        // 100 * 5.1 - 50 * 5.1 = 254.99999999999997 in doubles, truncated: Pillow gives 254 too.
        assert_eq!(img, [0, 0, 7, 254, 255, 7]);
    }
}
