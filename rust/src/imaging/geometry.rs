//! Pillow's exact pixel permutations (`Image.transpose`, Geometry.c) on a
//! square or rectangular packed RGB image.

use super::CHANNELS;

/// `Transpose.FLIP_LEFT_RIGHT` in place (torchvision `hflip`).
pub fn flip_left_right(img: &mut [u8], w: usize, h: usize) {
    assert_eq!(img.len(), w * h * CHANNELS);
    for row in img.chunks_exact_mut(w * CHANNELS) {
        let (mut a, mut b) = (0, w.saturating_sub(1));
        while a < b {
            for c in 0..CHANNELS {
                row.swap(a * CHANNELS + c, b * CHANNELS + c);
            }
            a += 1;
            b -= 1;
        }
    }
}

/// `Transpose.ROTATE_180`: out(h-1-y, w-1-x) = in(y, x). In place.
pub fn rotate_180(img: &mut [u8], w: usize, h: usize) {
    assert_eq!(img.len(), w * h * CHANNELS);
    let n = w * h;
    for i in 0..n / 2 {
        let j = n - 1 - i;
        for c in 0..CHANNELS {
            img.swap(i * CHANNELS + c, j * CHANNELS + c);
        }
    }
}

/// `Transpose.ROTATE_90` (counter-clockwise): out(w-1-x, y) = in(y, x); the
/// output is `h` wide and `w` high.
pub fn rotate_90(src: &[u8], w: usize, h: usize, dst: &mut [u8]) {
    assert_eq!(src.len(), w * h * CHANNELS);
    assert_eq!(dst.len(), src.len());
    for y in 0..h {
        for x in 0..w {
            let s = (y * w + x) * CHANNELS;
            let d = ((w - 1 - x) * h + y) * CHANNELS;
            dst[d..d + CHANNELS].copy_from_slice(&src[s..s + CHANNELS]);
        }
    }
}

/// `Transpose.ROTATE_270` (clockwise): out(x, h-1-y) = in(y, x).
pub fn rotate_270(src: &[u8], w: usize, h: usize, dst: &mut [u8]) {
    assert_eq!(src.len(), w * h * CHANNELS);
    assert_eq!(dst.len(), src.len());
    for y in 0..h {
        for x in 0..w {
            let s = (y * w + x) * CHANNELS;
            let d = (x * h + (h - 1 - y)) * CHANNELS;
            dst[d..d + CHANNELS].copy_from_slice(&src[s..s + CHANNELS]);
        }
    }
}
