//! Pixel-exact image path: decode an image and re-apply one stored DataCompDR
//! augmentation so that the result is bit-identical to the reference replay
//! (the Pillow + torchvision of [`PIXEL_REFERENCE`]; the pipeline is stated in docs/REPLAY.md):
//!
//! decode -> RGB, crop (black padding) + resize (Pillow's fixed-point resample),
//! optional horizontal flip, then the RandAugment ops in stored order.
//!
//! Every building block replicates the C (or Python) arithmetic of the
//! reference, types included (f32 where Pillow uses `float`, f64 where it uses
//! `double` or Python floats, 22-bit fixed point in the resampler). Each file
//! names the Pillow / torchvision function it mirrors.
//!
//! Entry point for the loader: [`Replayer`] (one per worker thread, reuses its
//! buffers, allocates nothing per sample in steady state for JPEG input).
//!
//! Findings that the code depends on (all checked against the installed
//! Pillow 13.0.0 wheel by the tests):
//! - Pass order: Pillow 13's `ImagingResample` (PR #9549) runs the vertical
//!   pass first iff both passes are needed and
//!   `in_h - out_h > 0 && in_h - out_h > 2 * (in_w - out_w)`, where in_* is
//!   the cropped image's size; otherwise horizontal first. Read from the
//!   wheel's machine code and confirmed on ~6000 resize shapes.
//! - `F.resized_crop` on PIL is `img.crop(box)` (zero padding) then
//!   `img.resize((size, size))` with box = whole crop, so the filter support
//!   is normalised over the *padded* crop extent.
//! - RandAugment affine ops reach `ImagingTransformAffine` with NEAREST: pure
//!   translations take `ImagingScaleAffine`, shears and rotations the 16.16
//!   fixed-point path; `Image.rotate` rounds its matrix with `round(x, 15)`.
//! - Enhance ops blend in C `float`; Sharpness's SMOOTH kernel is float with
//!   +0.5 rounding and a copied 1-pixel border.
//! - libjpeg-turbo's partial decompression (crop + skip scanlines) equals a
//!   full decode except at the region's own edges; decoding a margin around
//!   the crop makes it exact, which the replay uses by default.

pub mod affine;
pub mod crop;
pub mod decode;
pub mod decoded;
pub mod enhance;
pub mod geometry;
mod jpeg_decode;
pub mod lut_ops;
pub mod planar;
mod png_decode;
pub mod pymath;
pub mod randaugment;
pub mod replay;
pub mod resample;
pub mod simd;
mod transpose;

pub use crop::CropBox;
pub use decode::{Decoder, ImageFormat};
pub use decoded::{Decoded, Region, DECODE_MAX_PIXELS};
pub use replay::{Replayer, StageTimes};
pub use resample::{Interpolation, Resampler};

/// What the replay is bit-identical to: `(Python distribution, version)` pairs.
/// The one place this claim is made; Python reads it as `_core.PIXEL_REFERENCE`
/// (the package's import-time statement, the tests that compare against the
/// real Pillow + torchvision, and the pins in `constraints/bit-exact.txt`).
pub const PIXEL_REFERENCE: [(&str, &str); 2] = [("pillow", "13.0.0"), ("torchvision", "0.29.2")];

/// Bytes per pixel of every buffer in this module: packed RGB, row-major (HWC uint8).
pub const CHANNELS: usize = 3;

/// The first `n` elements of the reusable buffer `v`, which grows (zero-filled)
/// when shorter and never shrinks, so that steady-state replay allocates nothing.
pub(crate) fn grown<T: Copy + Default>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    if v.len() < n {
        v.resize(n, T::default());
    }
    &mut v[..n]
}

/// Synthetic JPEGs for unit tests (encoded by the same libjpeg-turbo).
#[cfg(test)]
pub(crate) mod test_images {
    /// Smooth gradients plus texture, `w x h`, quality 90.
    pub fn jpeg(w: usize, h: usize, subsamp: turbojpeg::Subsamp, progressive: bool) -> Vec<u8> {
        let pixels: Vec<u8> = (0..w * h * 3)
            .map(|i| {
                let (p, c) = (i / 3, i % 3);
                let (x, y) = (p % w, p / w);
                ((x * (c + 1) * 3 + y * 2 + (x * y) % 17 * 5) % 256) as u8
            })
            .collect();
        let image = turbojpeg::Image {
            pixels: &pixels[..],
            width: w,
            pitch: w * 3,
            height: h,
            format: turbojpeg::PixelFormat::RGB,
        };
        let mut c = turbojpeg::Compressor::new().unwrap();
        c.set_quality(90).unwrap();
        c.set_subsamp(subsamp).unwrap();
        c.set_progressive(progressive).unwrap();
        c.compress_to_vec(image).unwrap()
    }
}
