//! Bytes -> packed RGB, as `Image.open(f).convert("RGB")` (Pillow 13.0.0):
//! format sniffing and dispatch to the JPEG / PNG decoders (each checks the
//! decompression-bomb limit first). Other formats (WebP, GIF, ...) are refused
//! with a clear error.

use super::crop::CropBox;
use super::decoded::{Decoded, Region, DECODE_MAX_PIXELS};
use super::jpeg_decode::JpegDecoder;
use super::png_decode;
use crate::error::{Error, Result};

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

/// Reusable decoder: owns the TurboJPEG handle and scratch buffers.
pub struct Decoder {
    jpeg: Option<JpegDecoder>,
    png_raw: Vec<u8>,
    /// Largest accepted `width * height`.
    pub max_pixels: u64,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder { jpeg: None, png_raw: Vec::new(), max_pixels: DECODE_MAX_PIXELS }
    }
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder").field("max_pixels", &self.max_pixels).finish_non_exhaustive()
    }
}

impl Decoder {
    /// Decode `data` into `out` (grown on demand, never shrunk; the first
    /// `w * h * 3` bytes hold the decoded region). `key` names the sample in
    /// errors. With `want`, a JPEG may be decoded only around the part of crop
    /// box `want` inside the image (pixel-identical to the same region of a
    /// full decode), and at 1/`scale_denom` resolution (DCT-domain scaling, not
    /// exact; `want` is then in scaled pixels). PNGs are always decoded whole
    /// at full resolution.
    pub fn decode_region(
        &mut self,
        key: &str,
        data: &[u8],
        want: Option<CropBox>,
        scale_denom: usize,
        out: &mut Vec<u8>,
    ) -> Result<Decoded> {
        match ImageFormat::sniff(data) {
            Some(ImageFormat::Jpeg) => {
                if self.jpeg.is_none() {
                    self.jpeg = Some(JpegDecoder::new()?);
                }
                let jpeg = self.jpeg.as_mut().expect("initialised above");
                jpeg.decode_rgb(key, data, self.max_pixels, want, scale_denom, out)
            }
            Some(ImageFormat::Png) => {
                let (w, h) = png_decode::decode_rgb(key, data, self.max_pixels, &mut self.png_raw, out)?;
                Ok(Decoded { width: w, height: h, region: Region { x: 0, y: 0, w, h }, scale_denom: 1 })
            }
            None => Err(Error::decode(
                key,
                format!("unsupported image format (not JPEG or PNG; first bytes {:02x?})", &data[..data.len().min(8)]),
            )),
        }
    }
}
