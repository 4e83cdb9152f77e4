//! The memory one batch is assembled into. Allocated once, recycled through
//! the pool; the Python side exposes each field as a numpy array (and so a
//! torch tensor) viewing this memory, and returns it to the pool only when
//! every such view is gone.

use std::alloc::{alloc_zeroed, Layout};

use half::f16;

use super::page_buf::PageBuf;
use crate::error::{Error, Result};
use crate::imaging::planar;

pub const CONTEXT_LENGTH: usize = 77;

/// Types whose all-zero bytes are a valid value (0 / 0.0), so a zeroed
/// allocation is an initialised vector of them.
///
/// # Safety
/// Implement only for such types.
pub unsafe trait ZeroIsValid: Copy {}
unsafe impl ZeroIsValid for u8 {}
unsafe impl ZeroIsValid for i64 {}
unsafe impl ZeroIsValid for f32 {}
unsafe impl ZeroIsValid for f16 {}

/// `vec![0; n]` that reports a failed allocation as `Error::OutOfMemory`
/// instead of aborting. Zeroed pages come lazily from the OS, as with `vec!`.
pub fn try_zeroed_vec<T: ZeroIsValid>(n: usize, what: &str) -> Result<Vec<T>> {
    if n == 0 || std::mem::size_of::<T>() == 0 {
        return Ok(Vec::new());
    }
    let oom = || Error::OutOfMemory(format!("cannot allocate {what}: {n} x {} bytes", std::mem::size_of::<T>()));
    let layout = Layout::array::<T>(n).map_err(|_| oom())?;
    // SAFETY: `layout` has non-zero size; a non-null result is a zeroed block of
    // `n` T's from the global allocator with the layout `Vec<T>` uses, and zero
    // bytes are a valid T (ZeroIsValid), so the vector is fully initialised.
    unsafe {
        let ptr = alloc_zeroed(layout) as *mut T;
        if ptr.is_null() {
            return Err(oom());
        }
        Ok(Vec::from_raw_parts(ptr, n, n))
    }
}

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
    Uint8(PageBuf<u8>),
    Float32(PageBuf<f32>),
}

/// Embedding rows, in the loader's output type.
pub enum EmbeddingData {
    Float16(PageBuf<f16>),
    Float32(PageBuf<f32>),
}

impl EmbeddingData {
    fn zeros(kind: EmbeddingOutput, n: usize) -> Result<Self> {
        Ok(match kind {
            EmbeddingOutput::Float16 => EmbeddingData::Float16(PageBuf::zeroed(n, "batch embeddings")?),
            EmbeddingOutput::Float32 => EmbeddingData::Float32(PageBuf::zeroed(n, "batch embeddings")?),
        })
    }
}

impl BatchShape {
    /// Bytes one batch of this shape occupies; `None` if that does not fit in `usize`.
    pub fn bytes(&self) -> Option<usize> {
        let b = self.batch_size;
        let pixel = match self.image {
            ImageOutput::Uint8 => 1,
            ImageOutput::Float32 { .. } => 4,
        };
        let emb_item = match self.embedding {
            EmbeddingOutput::Float16 => 2,
            EmbeddingOutput::Float32 => 4,
        };
        let images =
            b.checked_mul(3)?.checked_mul(self.image_size)?.checked_mul(self.image_size)?.checked_mul(pixel)?;
        let embeddings = b.checked_mul(self.emb_width)?.checked_mul(3 * emb_item)?;
        // text + syn_text (i64), index, aug_index, syn_index, caption_set (i64), text_is_syn (u8)
        let rows = b.checked_mul(2 * CONTEXT_LENGTH * 8 + 4 * 8 + 1)?;
        images.checked_add(embeddings)?.checked_add(rows)
    }
}

/// One batch: fields are full-capacity; `len` rows are valid (the last batch
/// of an epoch may be short). Every field starts on a page of its own and owns whole pages
/// (`PageBuf`), so each can be page-locked on its own.
pub struct BatchMemory {
    pub shape: BatchShape,
    pub len: usize,
    /// Position of this batch in the rank's epoch.
    pub batch_number: usize,
    pub epoch: u64,
    /// [B, 3, H, W]
    pub images: ImageData,
    /// [B, 77] real caption (or, in mix mode, the chosen caption), zero padded.
    pub text: PageBuf<i64>,
    /// [B, 77] synthetic caption.
    pub syn_text: PageBuf<i64>,
    /// [B, K*D] each.
    pub image_emb: EmbeddingData,
    pub text_emb: EmbeddingData,
    pub syn_text_emb: EmbeddingData,
    /// [B] global sample index actually delivered (after any replacement).
    pub index: PageBuf<i64>,
    /// [B] augmentation index used.
    pub aug_index: PageBuf<i64>,
    /// [B] synthetic caption index used (0-based among the S, all caption sets together).
    pub syn_index: PageBuf<i64>,
    /// [B] caption set of that caption (its index in the store's caption sets).
    pub caption_set: PageBuf<i64>,
    /// [B] 1 where the `text` slot holds a synthetic caption (mix mode).
    pub text_is_syn: PageBuf<u8>,
    /// Float output: ToTensor + Normalize of each channel level.
    normalize: Option<planar::Normalize>,
}

impl BatchMemory {
    /// A zeroed batch; `Error::OutOfMemory` (never an abort) if its memory cannot be had.
    pub fn try_new(shape: BatchShape) -> Result<Self> {
        let b = shape.batch_size;
        let too_big =
            || Error::OutOfMemory(format!("a batch of {b} images of {0}x{0} does not fit in memory", shape.image_size));
        let pixels =
            b.checked_mul(3 * shape.image_size).and_then(|v| v.checked_mul(shape.image_size)).ok_or_else(too_big)?;
        let emb = b.checked_mul(shape.emb_width).ok_or_else(too_big)?;
        let tokens = b.checked_mul(CONTEXT_LENGTH).ok_or_else(too_big)?;
        Ok(BatchMemory {
            shape,
            len: 0,
            batch_number: 0,
            epoch: 0,
            images: match shape.image {
                ImageOutput::Uint8 => ImageData::Uint8(PageBuf::zeroed(pixels, "batch images")?),
                ImageOutput::Float32 { .. } => ImageData::Float32(PageBuf::zeroed(pixels, "batch images")?),
            },
            text: PageBuf::zeroed(tokens, "batch tokens")?,
            syn_text: PageBuf::zeroed(tokens, "batch tokens")?,
            image_emb: EmbeddingData::zeros(shape.embedding, emb)?,
            text_emb: EmbeddingData::zeros(shape.embedding, emb)?,
            syn_text_emb: EmbeddingData::zeros(shape.embedding, emb)?,
            index: PageBuf::zeroed(b, "batch indices")?,
            aug_index: PageBuf::zeroed(b, "batch indices")?,
            syn_index: PageBuf::zeroed(b, "batch indices")?,
            caption_set: PageBuf::zeroed(b, "batch indices")?,
            text_is_syn: PageBuf::zeroed(b, "batch flags")?,
            normalize: match shape.image {
                ImageOutput::Uint8 => None,
                ImageOutput::Float32 { mean, std } => Some(planar::Normalize::new(mean, std)),
            },
        })
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
        BatchShape { batch_size: 2, image_size: 2, emb_width: 4, image, embedding: EmbeddingOutput::Float32 }
    }

    #[test]
    fn put_image_transposes_to_chw() {
        let mut b = BatchMemory::try_new(shape(ImageOutput::Uint8)).unwrap();
        let hwc: Vec<u8> = (0..12).collect();
        b.put_image(1, &hwc);
        let ImageData::Uint8(buf) = &b.images else { panic!() };
        assert_eq!(&buf[12..], &[0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]);
    }

    #[test]
    fn impossible_batches_are_errors_not_aborts() {
        let mut huge = shape(ImageOutput::Float32 { mean: [0.0; 3], std: [1.0; 3] });
        huge.batch_size = usize::MAX / 2;
        assert!(huge.bytes().is_none());
        assert!(matches!(BatchMemory::try_new(huge), Err(Error::OutOfMemory(_))));
        huge.batch_size = 1 << 44; // fits in usize, not in any address space
        assert!(huge.bytes().is_some());
        assert!(matches!(BatchMemory::try_new(huge), Err(Error::OutOfMemory(_))));
        let ok = BatchMemory::try_new(shape(ImageOutput::Uint8)).unwrap();
        assert_eq!(shape(ImageOutput::Uint8).bytes(), Some(2 * 3 * 4 + 2 * 4 * 4 * 3 + 2 * (2 * 77 * 8 + 33)));
        assert!(ok.text.iter().all(|&t| t == 0));
    }

    #[test]
    fn every_field_starts_on_its_own_page() {
        let page = super::super::page_buf::page_size();
        let b = BatchMemory::try_new(shape(ImageOutput::Uint8)).unwrap();
        let ImageData::Uint8(images) = &b.images else { panic!() };
        let EmbeddingData::Float32(image_emb) = &b.image_emb else { panic!() };
        let EmbeddingData::Float32(text_emb) = &b.text_emb else { panic!() };
        let EmbeddingData::Float32(syn_text_emb) = &b.syn_text_emb else { panic!() };
        let fields = [
            (images.as_ptr() as usize, images.capacity_bytes()),
            (b.text.as_ptr() as usize, b.text.capacity_bytes()),
            (b.syn_text.as_ptr() as usize, b.syn_text.capacity_bytes()),
            (image_emb.as_ptr() as usize, image_emb.capacity_bytes()),
            (text_emb.as_ptr() as usize, text_emb.capacity_bytes()),
            (syn_text_emb.as_ptr() as usize, syn_text_emb.capacity_bytes()),
            (b.index.as_ptr() as usize, b.index.capacity_bytes()),
            (b.caption_set.as_ptr() as usize, b.caption_set.capacity_bytes()),
            (b.text_is_syn.as_ptr() as usize, b.text_is_syn.capacity_bytes()),
        ];
        for (i, &(addr, bytes)) in fields.iter().enumerate() {
            assert!(addr % page == 0 && bytes % page == 0 && bytes > 0, "field {i}");
            for &(other, other_bytes) in &fields[i + 1..] {
                assert!(addr + bytes <= other || other + other_bytes <= addr, "fields share a page");
            }
        }
    }

    #[test]
    fn put_tokens_pads_and_truncates() {
        let mut field = vec![9i64; 2 * CONTEXT_LENGTH];
        BatchMemory::put_tokens(&mut field, 1, &[49406, 5, 49407]);
        assert_eq!(&field[CONTEXT_LENGTH..CONTEXT_LENGTH + 4], &[49406, 5, 49407, 0]);
        assert!(field[CONTEXT_LENGTH + 3..].iter().all(|&t| t == 0));
        let long: Vec<u16> = (0..100).collect();
        BatchMemory::put_tokens(&mut field, 0, &long);
        assert_eq!(field[76], 76);
    }
}
