//! The memory one batch is assembled into. Allocated once, recycled through
//! the pool; the Python side exposes each field as a numpy array (and so a
//! torch tensor) viewing this memory, and returns it to the pool only when
//! every such view is gone.

use half::f16;

use crate::imaging::planar;

pub const CONTEXT_LENGTH: usize = 77;

/// What the image field holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ImageOutput {
    /// Raw 0..255 pixels (normalise on the GPU).
    Uint8,
    /// `(x / 255 - mean) / std` in float32, as ToTensor + Normalize compute it.
    Float32 { mean: [f32; 3], std: [f32; 3] },
}

/// What the embedding fields hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmbeddingOutput {
    Float16,
    Float32,
}

/// Fixed shape of every batch of a loader.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchShape {
    pub batch_size: usize,
    pub image_size: usize,
    /// K * D: the concatenated teacher embedding width.
    pub emb_width: usize,
    pub image: ImageOutput,
    pub embedding: EmbeddingOutput,
}

/// Image pixels, in the loader's output type.
pub enum ImageData {
    Uint8(Vec<u8>),
    Float32(Vec<f32>),
}

/// Embedding rows, in the loader's output type.
pub enum EmbeddingData {
    Float16(Vec<f16>),
    Float32(Vec<f32>),
}

impl EmbeddingData {
    fn zeros(kind: EmbeddingOutput, n: usize) -> Self {
        match kind {
            EmbeddingOutput::Float16 => EmbeddingData::Float16(vec![f16::ZERO; n]),
            EmbeddingOutput::Float32 => EmbeddingData::Float32(vec![0.0; n]),
        }
    }
}

/// One batch: fields are full-capacity; `len` rows are valid (the last batch
/// of an epoch may be short).
pub struct Batch {
    pub shape: BatchShape,
    pub len: usize,
    /// Position of this batch in the rank's epoch.
    pub batch_number: usize,
    pub epoch: u64,
    /// [B, 3, H, W]
    pub images: ImageData,
    /// [B, 77] real caption (or, in mix mode, the chosen caption), zero padded.
    pub text: Vec<i64>,
    /// [B, 77] synthetic caption.
    pub syn_text: Vec<i64>,
    /// [B, K*D] each.
    pub image_emb: EmbeddingData,
    pub text_emb: EmbeddingData,
    pub syn_text_emb: EmbeddingData,
    /// [B] global sample index actually delivered (after any replacement).
    pub index: Vec<i64>,
    /// [B] augmentation index used.
    pub aug_index: Vec<i64>,
    /// [B] synthetic caption index used (0-based among the S).
    pub syn_index: Vec<i64>,
    /// [B] 1 where the `text` slot holds a synthetic caption (mix mode).
    pub text_is_syn: Vec<u8>,
    /// Float output: ToTensor + Normalize of each channel level.
    normalize: Option<planar::Normalize>,
}

impl Batch {
    pub fn new(shape: BatchShape) -> Self {
        let b = shape.batch_size;
        let pixels = b * 3 * shape.image_size * shape.image_size;
        let emb = b * shape.emb_width;
        Batch {
            shape,
            len: 0,
            batch_number: 0,
            epoch: 0,
            images: match shape.image {
                ImageOutput::Uint8 => ImageData::Uint8(vec![0; pixels]),
                ImageOutput::Float32 { .. } => ImageData::Float32(vec![0.0; pixels]),
            },
            text: vec![0; b * CONTEXT_LENGTH],
            syn_text: vec![0; b * CONTEXT_LENGTH],
            image_emb: EmbeddingData::zeros(shape.embedding, emb),
            text_emb: EmbeddingData::zeros(shape.embedding, emb),
            syn_text_emb: EmbeddingData::zeros(shape.embedding, emb),
            index: vec![0; b],
            aug_index: vec![0; b],
            syn_index: vec![0; b],
            text_is_syn: vec![0; b],
            normalize: match shape.image {
                ImageOutput::Uint8 => None,
                ImageOutput::Float32 { mean, std } => Some(planar::Normalize::new(mean, std)),
            },
        }
    }

    /// Bytes this batch occupies (for memory accounting).
    pub fn nbytes(&self) -> usize {
        let s = &self.shape;
        let px = s.batch_size * 3 * s.image_size * s.image_size;
        let img = match s.image {
            ImageOutput::Uint8 => px,
            ImageOutput::Float32 { .. } => px * 4,
        };
        let emb_item = match s.embedding {
            EmbeddingOutput::Float16 => 2,
            EmbeddingOutput::Float32 => 4,
        };
        img + 3 * s.batch_size * s.emb_width * emb_item + 2 * s.batch_size * CONTEXT_LENGTH * 8 + s.batch_size * 25
    }

    /// Write an HWC uint8 image into row `row` of the CHW image field.
    /// (Never inlined: instruction counts attribute the stage by this symbol.)
    #[inline(never)]
    pub fn put_image(&mut self, row: usize, hwc: &[u8]) {
        let hw = self.shape.image_size * self.shape.image_size;
        debug_assert_eq!(hwc.len(), hw * 3);
        match &mut self.images {
            ImageData::Uint8(buf) => {
                let dst = &mut buf[row * 3 * hw..(row + 1) * 3 * hw];
                let (r, rest) = dst.split_at_mut(hw);
                let (g, b) = rest.split_at_mut(hw);
                planar::hwc_to_planes_u8(hwc, r, g, b);
            }
            ImageData::Float32(buf) => {
                let norm = self.normalize.as_ref().expect("float image buffer without its normalisation");
                let dst = &mut buf[row * 3 * hw..(row + 1) * 3 * hw];
                let (r, rest) = dst.split_at_mut(hw);
                let (g, b) = rest.split_at_mut(hw);
                planar::hwc_to_planes_f32(hwc, norm, r, g, b);
            }
        }
    }

    /// Write zero-padded token ids into row `row` of a [B, 77] field.
    pub fn put_tokens(field: &mut [i64], row: usize, tokens: &[u16]) {
        let dst = &mut field[row * CONTEXT_LENGTH..(row + 1) * CONTEXT_LENGTH];
        let n = tokens.len().min(CONTEXT_LENGTH);
        for (d, &t) in dst[..n].iter_mut().zip(tokens) {
            *d = t as i64;
        }
        dst[n..].fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(image: ImageOutput) -> BatchShape {
        BatchShape {
            batch_size: 2,
            image_size: 2,
            emb_width: 4,
            image,
            embedding: EmbeddingOutput::Float32,
        }
    }

    #[test]
    fn put_image_transposes_to_chw() {
        let mut b = Batch::new(shape(ImageOutput::Uint8));
        let hwc: Vec<u8> = (0..12).collect();
        b.put_image(1, &hwc);
        let ImageData::Uint8(buf) = &b.images else { panic!() };
        assert_eq!(&buf[12..], &[0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]);
    }

    #[test]
    fn put_tokens_pads_and_truncates() {
        let mut field = vec![9i64; 2 * CONTEXT_LENGTH];
        Batch::put_tokens(&mut field, 1, &[49406, 5, 49407]);
        assert_eq!(&field[CONTEXT_LENGTH..CONTEXT_LENGTH + 4], &[49406, 5, 49407, 0]);
        assert!(field[CONTEXT_LENGTH + 3..].iter().all(|&t| t == 0));
        let long: Vec<u16> = (0..100).collect();
        Batch::put_tokens(&mut field, 0, &long);
        assert_eq!(field[76], 76);
    }
}
