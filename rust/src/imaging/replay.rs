//! The per-thread replay engine: decode, crop+resize, flip, RandAugment ops,
//! with every buffer owned and reused, so that steady-state replay of JPEG
//! input allocates nothing.

use super::crop::CropBox;
use super::decode::Decoder;
use super::randaugment::{apply_op, OpScratch};
use super::resample::{Interpolation, Resampler};
use super::{geometry, CHANNELS};
use crate::aug::AugParams;
use crate::error::{Error, Result};

/// Reusable replay state; create one per worker thread (it is `Send`).
#[derive(Debug, Default)]
pub struct Replayer {
    decoder: Decoder,
    /// Last decoded image, packed RGB; only the first `w * h * 3` bytes are valid.
    image: Vec<u8>,
    image_w: usize,
    image_h: usize,
    resampler: Resampler,
    ops: OpScratch,
}

impl Replayer {
    pub fn new() -> Result<Self> {
        Ok(Self::default())
    }

    /// Largest image (and crop box) accepted, in pixels; default
    /// [`super::DEFAULT_MAX_PIXELS`] (Pillow's bomb limit).
    pub fn set_max_pixels(&mut self, max_pixels: u64) {
        self.decoder.max_pixels = max_pixels;
    }

    pub fn max_pixels(&self) -> u64 {
        self.decoder.max_pixels
    }

    /// Decode into the internal buffer; returns (width, height).
    pub fn decode_rgb(&mut self, key: &str, bytes: &[u8]) -> Result<(usize, usize)> {
        self.image_w = 0;
        self.image_h = 0;
        let (w, h) = self.decoder.decode_rgb(key, bytes, &mut self.image)?;
        self.image_w = w;
        self.image_h = h;
        Ok((w, h))
    }

    /// The last decoded image: (packed RGB, width, height).
    pub fn decoded(&self) -> (&[u8], usize, usize) {
        let n = self.image_w * self.image_h * CHANNELS;
        (&self.image[..n], self.image_w, self.image_h)
    }

    /// Decode `bytes` and replay `aug` into `out` (`size * size * 3`, HWC uint8).
    /// `key` names the sample in errors.
    pub fn replay(
        &mut self,
        key: &str,
        bytes: &[u8],
        aug: &AugParams,
        size: usize,
        interp: Interpolation,
        out: &mut [u8],
    ) -> Result<()> {
        check_out(key, size, out)?;
        self.decode_rgb(key, bytes)?;
        self.replay_decoded(key, aug, size, interp, out)
    }

    /// Replay `aug` on the image decoded last (e.g. several augmentations of one image).
    pub fn replay_decoded(
        &mut self,
        key: &str,
        aug: &AugParams,
        size: usize,
        interp: Interpolation,
        out: &mut [u8],
    ) -> Result<()> {
        check_out(key, size, out)?;
        let (w, h) = (self.image_w, self.image_h);
        if w == 0 || h == 0 {
            return Err(Error::InvalidArgument(format!("sample {key}: no decoded image to replay on")));
        }
        // A null entry is the whole image, no ops (the stored box is not trusted for it).
        let (b, ops) = if aug.is_null {
            (CropBox::full(w, h), &[][..])
        } else {
            if aug.width <= 0 || aug.height <= 0 {
                return Err(Error::InvalidArgument(format!(
                    "sample {key}: crop box {}x{} is empty",
                    aug.width, aug.height
                )));
            }
            let b = CropBox {
                left: aug.left as i64,
                top: aug.top as i64,
                width: aug.width as usize,
                height: aug.height as usize,
            };
            (b, aug.active_ops())
        };
        b.check(self.decoder.max_pixels)
            .map_err(|e| Error::InvalidArgument(format!("sample {key}: {e}")))?;
        let src = &self.image[..w * h * CHANNELS];
        self.resampler.crop_resize(src, w, h, b, size, size, interp, out);
        if aug.hflip {
            geometry::flip_left_right(out, size, size);
        }
        for &(op, m) in ops {
            apply_op(op, m, out, size, &mut self.ops)
                .map_err(|e| Error::InvalidArgument(format!("sample {key}: {e}")))?;
        }
        Ok(())
    }
}

fn check_out(key: &str, size: usize, out: &[u8]) -> Result<()> {
    if size == 0 {
        return Err(Error::InvalidArgument(format!("sample {key}: output size must be positive")));
    }
    if out.len() != size * size * CHANNELS {
        return Err(Error::InvalidArgument(format!(
            "sample {key}: output buffer has {} bytes, expected {size}*{size}*3 = {}",
            out.len(),
            size * size * CHANNELS
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn replayer_is_send() {
        assert_send::<Replayer>();
    }

    #[test]
    fn rejects_unknown_format_and_bad_output() {
        let mut r = Replayer::new().unwrap();
        let aug = AugParams::null(4, 4);
        let mut out = vec![0u8; 4 * 4 * 3];
        let e = r.replay("k1", b"GIF89a....", &aug, 4, Interpolation::Bilinear, &mut out).unwrap_err();
        assert!(matches!(e, Error::Decode { .. }), "{e}");
        assert!(e.to_string().contains("k1"));
        let e = r.replay("k2", b"", &aug, 5, Interpolation::Bilinear, &mut out).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }
}
