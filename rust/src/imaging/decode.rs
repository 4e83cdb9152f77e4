//! Bytes -> packed RGB, as `Image.open(f).convert("RGB")` (Pillow 13.0.0):
//! format sniffing, the decompression-bomb guard, dispatch to the JPEG / PNG
//! decoders. Other formats (WebP, GIF, ...) are refused with a clear error.

use super::jpeg_decode::JpegDecoder;
use super::png_decode;
use crate::error::{Error, Result};

/// Pillow refuses images above `2 * Image.MAX_IMAGE_PIXELS`
/// (`DecompressionBombError`); same default here.
pub const DEFAULT_MAX_PIXELS: u64 = 2 * (1024 * 1024 * 1024 / 4 / 3);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg,
    Png,
}

impl ImageFormat {
    /// The prefixes Pillow's plugins accept.
    pub fn sniff(data: &[u8]) -> Option<Self> {
        if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(ImageFormat::Jpeg)
        } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(ImageFormat::Png)
        } else {
            None
        }
    }
}

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

/// Reusable decoder: owns the TurboJPEG handle and scratch buffers.
pub struct Decoder {
    jpeg: Option<JpegDecoder>,
    png_raw: Vec<u8>,
    /// Largest accepted `width * height`.
    pub max_pixels: u64,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder { jpeg: None, png_raw: Vec::new(), max_pixels: DEFAULT_MAX_PIXELS }
    }
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder").field("max_pixels", &self.max_pixels).finish_non_exhaustive()
    }
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decode `data` into `out` (grown on demand, never shrunk; the first
    /// `w * h * 3` bytes hold the image). `key` names the sample in errors.
    pub fn decode_rgb(&mut self, key: &str, data: &[u8], out: &mut Vec<u8>) -> Result<(usize, usize)> {
        match ImageFormat::sniff(data) {
            Some(ImageFormat::Jpeg) => {
                if self.jpeg.is_none() {
                    self.jpeg = Some(JpegDecoder::new()?);
                }
                let jpeg = self.jpeg.as_mut().expect("initialised above");
                jpeg.decode_rgb(key, data, self.max_pixels, out)
            }
            Some(ImageFormat::Png) => {
                png_decode::decode_rgb(key, data, self.max_pixels, &mut self.png_raw, out)
            }
            None => Err(Error::decode(
                key,
                format!(
                    "unsupported image format (not JPEG or PNG; first bytes {:02x?})",
                    &data[..data.len().min(8)]
                ),
            )),
        }
    }
}
