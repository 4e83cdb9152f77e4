//! `Image.crop((left, top, left + width, top + height))`: the box may extend
//! past the image; Pillow fills the outside with zeros (black).
//!
//! The replay never materialises the padded crop: the resampler reads the
//! source through the box and treats outside pixels as zero (they add exactly
//! 0 to Pillow's integer sums). [`crop_pad`] exists for tests and callers that
//! want the padded crop itself.

use super::CHANNELS;
use crate::error::{Error, Result};

/// A crop box in source-image pixels; `left`/`top` may be negative and the box
/// may end past the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CropBox {
    pub left: i64,
    pub top: i64,
    pub width: usize,
    pub height: usize,
}

impl CropBox {
    pub fn full(width: usize, height: usize) -> Self {
        CropBox { left: 0, top: 0, width, height }
    }

    /// Pillow refuses a crop whose size exceeds its decompression-bomb limit
    /// (`Image._crop` -> `_decompression_bomb_check`); so do we, before any
    /// work proportional to the box size.
    pub fn check(&self, max_pixels: u64) -> Result<()> {
        if self.width == 0 || self.height == 0 {
            return Err(Error::InvalidArgument(format!("crop box {}x{} is empty", self.width, self.height)));
        }
        let pixels = (self.width as u128) * (self.height as u128);
        if pixels > max_pixels as u128 {
            return Err(Error::InvalidArgument(format!(
                "crop box {}x{} ({} pixels) exceeds the limit of {} pixels",
                self.width, self.height, pixels, max_pixels
            )));
        }
        Ok(())
    }
}

/// Copy the box out of a packed RGB image, zero outside. `dst` is
/// `box.width * box.height * 3` bytes.
pub fn crop_pad(src: &[u8], src_w: usize, src_h: usize, b: CropBox, dst: &mut [u8]) {
    assert_eq!(src.len(), src_w * src_h * CHANNELS);
    assert_eq!(dst.len(), b.width * b.height * CHANNELS);
    dst.fill(0);
    let x0 = b.left.max(0);
    let x1 = (b.left + b.width as i64).min(src_w as i64);
    let y0 = b.top.max(0);
    let y1 = (b.top + b.height as i64).min(src_h as i64);
    if x0 >= x1 || y0 >= y1 {
        return;
    }
    let n = (x1 - x0) as usize * CHANNELS;
    for y in y0..y1 {
        let s = (y as usize * src_w + x0 as usize) * CHANNELS;
        let d = ((y - b.top) as usize * b.width + (x0 - b.left) as usize) * CHANNELS;
        dst[d..d + n].copy_from_slice(&src[s..s + n]);
    }
}
