//! Pixel-exact image path: decode an image and re-apply one stored DataCompDR
//! augmentation so that the result is bit-identical to the reference replay
//! (Pillow 13.0.0 + torchvision 0.29.2, see REFERENCE.md section 4):
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

pub mod affine;
pub mod crop;
pub mod decode;
pub mod enhance;
pub mod geometry;
mod jpeg_decode;
pub mod lut_ops;
mod png_decode;
pub mod pymath;
pub mod randaugment;
pub mod replay;
pub mod resample;

pub use crop::CropBox;
pub use decode::{Decoder, ImageFormat, DEFAULT_MAX_PIXELS};
pub use replay::Replayer;
pub use resample::{Interpolation, Resampler};

/// Bytes per pixel of every buffer in this module: packed RGB, row-major (HWC uint8).
pub const CHANNELS: usize = 3;
