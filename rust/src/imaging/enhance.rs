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

/// One byte of `ImagingBlend(im1, im2, alpha)`: float arithmetic, then the C
/// cast to UINT8. On the interpolation branch (0 <= alpha <= 1) the value is
/// always within 0..=255; on the extrapolation branch Pillow clips, which is
/// what Rust's saturating float -> u8 cast does, so one expression serves both.
#[inline(always)]
fn blend_px(in1: u8, in2: u8, alpha: f32) -> u8 {
    (in1 as i32 as f32 + alpha * ((in2 as i32 - in1 as i32) as f32)) as u8
}

multiversion! {
    /// `img = blend(degenerate, img, alpha)` byte by byte.
    fn blend_buffer(degenerate: &[u8], img: &mut [u8], alpha: f32) {
        for (v, &d) in img.iter_mut().zip(degenerate) {
            *v = blend_px(d, *v, alpha);
        }
    }
}

multiversion! {
    /// `img = blend(constant image, img, alpha)`.
    fn blend_const(degenerate: u8, img: &mut [u8], alpha: f32) {
        for v in img.iter_mut() {
            *v = blend_px(degenerate, *v, alpha);
        }
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

multiversion! {
    /// `img.convert("L").convert("RGB")` into `dst`.
    fn gray_rgb(img: &[u8], dst: &mut [u8]) {
        for (p, d) in img.chunks_exact(CHANNELS).zip(dst.chunks_exact_mut(CHANNELS)) {
            let l = luma(p[0], p[1], p[2]);
            d[0] = l;
            d[1] = l;
            d[2] = l;
        }
    }
}

/// `ImageEnhance.Color(img).enhance(factor)`; `gray` is scratch.
pub fn color(img: &mut [u8], factor: f64, gray: &mut Vec<u8>) {
    if gray.len() < img.len() {
        gray.resize(img.len(), 0);
    }
    let g = &mut gray[..img.len()];
    gray_rgb(img, g);
    blend_with_buffer(g, img, factor);
}

multiversion! {
    /// Sum of Pillow's L over all pixels (what ImageStat derives from the histogram).
    fn luma_sum(img: &[u8]) -> u64 {
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

multiversion! {
    /// Rows 1..h-1, pixels 1..w-1 of the 3x3 smoothing (border left as copied).
    fn smooth_interior(src: &[u8], w: usize, h: usize, dst: &mut [u8]) {
        // _imaging.c divides the float kernel by the float divisor 13.
        let k1 = 1.0f32 / 13.0f32;
        let k5 = 5.0f32 / 13.0f32;
        let offset = 0.0f32 + 0.5; // ImagingFilter3x3 adds 0.5 for rounding
        let stride = w * CHANNELS;
        let n = stride - 2 * CHANNELS; // interior bytes of a row
        for y in 1..h - 1 {
            let above = &src[(y - 1) * stride..y * stride];
            let mid = &src[y * stride..(y + 1) * stride];
            let below = &src[(y + 1) * stride..(y + 2) * stride];
            let out = &mut dst[y * stride + CHANNELS..y * stride + CHANNELS + n];
            // Left, centre and right neighbours of each interior byte, per row.
            let (bl, bc, br) = (&below[..n], &below[CHANNELS..CHANNELS + n], &below[2 * CHANNELS..]);
            let (ml, mc, mr) = (&mid[..n], &mid[CHANNELS..CHANNELS + n], &mid[2 * CHANNELS..]);
            let (al, ac, ar) = (&above[..n], &above[CHANNELS..CHANNELS + n], &above[2 * CHANNELS..]);
            for i in 0..n {
                // Filter.c order: offset, then the row below (kernel[0..3]),
                // this row (kernel[3..6]), the row above (kernel[6..9]); each
                // row term is (left*k0 + centre*k1) + right*k2.
                let mut ss = offset;
                ss += bl[i] as f32 * k1 + bc[i] as f32 * k1 + br[i] as f32 * k1;
                ss += ml[i] as f32 * k1 + mc[i] as f32 * k5 + mr[i] as f32 * k1;
                ss += al[i] as f32 * k1 + ac[i] as f32 * k1 + ar[i] as f32 * k1;
                // clip8: clamp to [0, 255] then truncate (the saturating cast).
                out[i] = ss as u8;
            }
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

    #[test]
    fn luma_is_pillows_integer_formula() {
        assert_eq!(luma(255, 255, 255), 255);
        assert_eq!(luma(0, 0, 0), 0);
        assert_eq!(luma(255, 0, 0), 76);
    }
}
