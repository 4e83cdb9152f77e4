//! What a decode produces ([`Decoded`], [`Region`]) and the decompression-bomb
//! limit every decoder checks: shared by the format dispatch (`decode.rs`) and
//! the JPEG / PNG decoders it calls, so those do not depend back on it.

use crate::error::{Error, Result};

/// Pillow refuses images above `2 * Image.MAX_IMAGE_PIXELS`
/// (`DecompressionBombError`); same default here.
pub const DECODE_MAX_PIXELS: u64 = 2 * (1024 * 1024 * 1024 / 4 / 3);

/// Refuse a header whose pixel count exceeds the limit, before allocating.
pub(crate) fn check_pixels(key: &str, w: usize, h: usize, max_pixels: u64) -> Result<()> {
    let pixels = (w as u128) * (h as u128);
    if pixels > max_pixels as u128 {
        return Err(Error::decode(
            key,
            format!(
                "image size {w}x{h} ({pixels} pixels) exceeds the limit of {max_pixels} pixels \
                 (possible decompression bomb)"
            ),
        ));
    }
    Ok(())
}

/// A rectangle of an image, in image pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
}

/// What a decode produced: the (decoded) image size, the region actually
/// decoded (the whole image unless a partial JPEG decode was asked for) and
/// the DCT scaling used (1 = full resolution, the only exact one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub width: usize,
    pub height: usize,
    pub region: Region,
    pub scale_denom: usize,
}

impl Decoded {
    /// The whole image at full resolution.
    pub fn is_full(&self) -> bool {
        self.scale_denom == 1 && self.region == (Region { x: 0, y: 0, w: self.width, h: self.height })
    }
}
