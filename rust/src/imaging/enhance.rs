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

use super::CHANNELS;

/// One byte of `ImagingBlend(im1, im2, alpha)`.
#[inline(always)]
fn blend_px(in1: u8, in2: u8, alpha: f32, extrapolate: bool) -> u8 {
    let v = in1 as i32 as f32 + alpha * ((in2 as i32 - in1 as i32) as f32);
    if extrapolate {
        if v <= 0.0 {
            0
        } else if v >= 255.0 {
            255
        } else {
            v as u8
        }
    } else {
        v as u8
    }
}

/// In-place `img = blend(degenerate, img, alpha)` where `degenerate(i, v)`
/// gives the degenerate byte at index `i` (current value `v`).
#[inline(always)]
fn blend_with(img: &mut [u8], factor: f64, mut degenerate: impl FnMut(usize) -> u8) {
    let alpha = factor as f32;
    if alpha == 1.0 {
        return; // ImagingCopy(im2)
    }
    if alpha == 0.0 {
        for (i, v) in img.iter_mut().enumerate() {
            *v = degenerate(i); // ImagingCopy(im1)
        }
        return;
    }
    let extrapolate = !(0.0..=1.0).contains(&alpha);
    for (i, v) in img.iter_mut().enumerate() {
        *v = blend_px(degenerate(i), *v, alpha, extrapolate);
    }
}

/// Pillow's RGB -> L (Convert.c `rgb2l`).
#[inline(always)]
pub fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * 19595 + g as u32 * 38470 + b as u32 * 7471 + 0x8000) >> 16) as u8
}

/// `ImageEnhance.Brightness(img).enhance(factor)`.
pub fn brightness(img: &mut [u8], factor: f64) {
    blend_with(img, factor, |_| 0);
}

/// `ImageEnhance.Color(img).enhance(factor)`; `gray` is scratch.
pub fn color(img: &mut [u8], factor: f64, gray: &mut Vec<u8>) {
    gray.clear();
    gray.extend(img.chunks_exact(CHANNELS).map(|p| luma(p[0], p[1], p[2])));
    let g = &gray[..];
    blend_with(img, factor, |i| g[i / CHANNELS]);
}

/// `int(ImageStat.Stat(img.convert("L")).mean[0] + 0.5)`.
pub fn contrast_mean(img: &[u8]) -> u8 {
    let mut hist = [0u64; 256];
    for p in img.chunks_exact(CHANNELS) {
        hist[luma(p[0], p[1], p[2]) as usize] += 1;
    }
    let count: u64 = hist.iter().sum();
    if count == 0 {
        return 0;
    }
    let sum: u64 = hist.iter().enumerate().map(|(i, &n)| i as u64 * n).sum();
    // Python int / int is correctly rounded; both fit f64 exactly here.
    let mean = sum as f64 / count as f64;
    (mean + 0.5) as u8
}

/// `ImageEnhance.Contrast(img).enhance(factor)`.
pub fn contrast(img: &mut [u8], factor: f64) {
    let mean = contrast_mean(img);
    blend_with(img, factor, |_| mean);
}

/// `img.filter(ImageFilter.SMOOTH)` into `dst` (`ImagingFilter3x3`).
pub fn smooth(src: &[u8], w: usize, h: usize, dst: &mut [u8]) {
    assert_eq!(src.len(), w * h * CHANNELS);
    assert_eq!(dst.len(), src.len());
    dst.copy_from_slice(src);
    if w < 3 || h < 3 {
        return; // ImagingFilter returns a copy of images smaller than the kernel.
    }
    // _imaging.c divides the float kernel by the float divisor.
    let k1 = 1.0f32 / 13.0f32;
    let k5 = 5.0f32 / 13.0f32;
    let kernel = [k1, k1, k1, k1, k5, k1, k1, k1, k1];
    let offset = 0.0f32 + 0.5;
    let stride = w * CHANNELS;
    #[inline(always)]
    fn row3(r: &[u8], i: usize, k: &[f32]) -> f32 {
        r[i - CHANNELS] as f32 * k[0] + r[i] as f32 * k[1] + r[i + CHANNELS] as f32 * k[2]
    }
    for y in 1..h - 1 {
        let above = &src[(y - 1) * stride..y * stride];
        let mid = &src[y * stride..(y + 1) * stride];
        let below = &src[(y + 1) * stride..(y + 2) * stride];
        let out = &mut dst[y * stride..(y + 1) * stride];
        // Interior bytes only: the first and last pixel of the row stay copied.
        for (i, o) in out.iter_mut().enumerate().take(stride - CHANNELS).skip(CHANNELS) {
            // Filter.c order: the row below with kernel[0..3] first.
            let mut ss = offset;
            ss += row3(below, i, &kernel[0..3]);
            ss += row3(mid, i, &kernel[3..6]);
            ss += row3(above, i, &kernel[6..9]);
            *o = ss.clamp(0.0, 255.0) as u8;
        }
    }
}

/// `ImageEnhance.Sharpness(img).enhance(factor)`; `smoothed` is scratch.
pub fn sharpness(img: &mut [u8], w: usize, h: usize, factor: f64, smoothed: &mut Vec<u8>) {
    if smoothed.len() < img.len() {
        smoothed.resize(img.len(), 0);
    }
    let s = &mut smoothed[..img.len()];
    smooth(img, w, h, s);
    let s = &*s;
    blend_with(img, factor, |i| s[i]);
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

    #[test]
    fn luma_is_pillows_integer_formula() {
        assert_eq!(luma(255, 255, 255), 255);
        assert_eq!(luma(0, 0, 0), 0);
        assert_eq!(luma(255, 0, 0), 76);
    }
}
