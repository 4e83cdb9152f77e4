//! `Store`: a whole store directory, opened once and shared by many threads.

use std::path::{Path, PathBuf};

use super::manifest::Manifest;
use super::parallel::parallel_map;
use super::shard::{AccessPattern, Shard, ShardExpect};
use super::verify::{verify_file, Problem};
use super::{Dims, EmbeddingDtype};
use crate::aug::AugParams;
use crate::error::{Error, Result};

/// An open store. Every shard is mapped and validated in `open`; the index
/// methods then only slice memory. `Send + Sync`: share it behind an `Arc`.
///
/// Index methods take a global sample index `i < len()` (checked in debug
/// builds; use [`Store::locate`] for a checked lookup).
pub struct Store {
    dir: PathBuf,
    manifest: Manifest,
    manifest_text: String,
    dims: Dims,
    dtype: EmbeddingDtype,
    shards: Vec<Shard>,
    /// `starts[n]` is the global index of shard n's first row; `starts[shards]` is `len`.
    starts: Vec<usize>,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store> {
        let (manifest_text, manifest_path) = Manifest::read_text(dir)?;
        let manifest = Manifest::parse(&manifest_text, &manifest_path)?;
        let (dims, dtype) = (manifest.dims(), manifest.dtype());
        let opened = parallel_map(&manifest.shards, |entry| {
            let expect = ShardExpect { dims, dtype, num_samples: entry.num_samples, file_bytes: entry.file_bytes };
            Shard::open(&dir.join(&entry.file), Some(&expect))
        });
        let shards = opened.into_iter().collect::<Result<Vec<_>>>()?;
        let mut starts = Vec::with_capacity(shards.len() + 1);
        let mut total = 0;
        for s in &shards {
            starts.push(total);
            total += s.len();
        }
        starts.push(total);
        Ok(Store { dir: dir.to_path_buf(), manifest, manifest_text, dims, dtype, shards, starts })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn len(&self) -> usize {
        *self.starts.last().expect("starts is never empty")
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn dims(&self) -> Dims {
        self.dims
    }
    pub fn embedding_dtype(&self) -> EmbeddingDtype {
        self.dtype
    }
    pub fn num_shards(&self) -> usize {
        self.shards.len()
    }
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// The manifest exactly as stored (for bindings that parse it themselves).
    pub fn manifest_text(&self) -> &str {
        &self.manifest_text
    }
    pub fn shard(&self, n: usize) -> &Shard {
        &self.shards[n]
    }

    /// Checked global index -> (shard, row).
    pub fn locate(&self, i: usize) -> Result<(usize, usize)> {
        if i >= self.len() {
            return Err(Error::Index { index: i.min(i64::MAX as usize) as i64, len: self.len() });
        }
        Ok(self.locate_unchecked(i))
    }

    /// Binary search over cumulative counts: the last shard starting at or before `i`
    /// (which skips empty shards, whose start equals the next one's).
    #[inline]
    fn locate_unchecked(&self, i: usize) -> (usize, usize) {
        debug_assert!(i < self.len(), "sample index {i} out of range for {} samples", self.len());
        let n = self.starts.partition_point(|&s| s <= i) - 1;
        (n, i - self.starts[n])
    }

    #[inline]
    fn at(&self, i: usize) -> (&Shard, usize) {
        let (n, row) = self.locate_unchecked(i);
        (&self.shards[n], row)
    }

    pub fn shard_path_of(&self, i: usize) -> &Path {
        self.at(i).0.path()
    }
    pub fn uid(&self, i: usize) -> &str {
        let (s, r) = self.at(i);
        s.uid(r)
    }
    pub fn image_bytes(&self, i: usize) -> &[u8] {
        let (s, r) = self.at(i);
        s.image_bytes(r)
    }
    /// (width, height) of the stored image.
    pub fn image_size(&self, i: usize) -> (u32, u32) {
        let (s, r) = self.at(i);
        s.image_size(r)
    }
    /// (width, height) of the original image the upstream boxes referred to.
    pub fn orig_size(&self, i: usize) -> (u32, u32) {
        let (s, r) = self.at(i);
        s.orig_size(r)
    }
    pub fn caption(&self, i: usize) -> &str {
        let (s, r) = self.at(i);
        s.caption(r)
    }
    pub fn caption_tokens(&self, i: usize) -> &[u16] {
        let (s, r) = self.at(i);
        s.caption_tokens(r)
    }
    pub fn syn_caption(&self, i: usize, s_idx: usize) -> &str {
        let (s, r) = self.at(i);
        s.syn_caption(r, s_idx)
    }
    pub fn syn_tokens(&self, i: usize, s_idx: usize) -> &[u16] {
        let (s, r) = self.at(i);
        s.syn_tokens(r, s_idx)
    }
    /// Augmentation `j` of sample `i`, boxes in stored-image pixels.
    pub fn aug(&self, i: usize, j: usize) -> AugParams {
        let (s, r) = self.at(i);
        s.aug(r, j)
    }
    /// All J raw 40-byte records of sample `i`.
    pub fn aug_bytes(&self, i: usize) -> &[u8] {
        let (s, r) = self.at(i);
        s.aug_bytes(r)
    }
    /// Image embedding row (i, j): K*D elements, `K*D*itemsize` bytes.
    pub fn image_emb_raw(&self, i: usize, j: usize) -> &[u8] {
        let (s, r) = self.at(i);
        s.image_emb_raw(r, j)
    }
    /// All J image embedding rows of sample `i`.
    pub fn image_embs_raw(&self, i: usize) -> &[u8] {
        let (s, r) = self.at(i);
        s.image_embs_raw(r)
    }
    /// Text embedding row (i, t): t = 0 is the real caption, 1..=S the synthetic ones.
    pub fn text_emb_raw(&self, i: usize, t: usize) -> &[u8] {
        let (s, r) = self.at(i);
        s.text_emb_raw(r, t)
    }
    /// All 1+S text embedding rows of sample `i`.
    pub fn text_embs_raw(&self, i: usize) -> &[u8] {
        let (s, r) = self.at(i);
        s.text_embs_raw(r)
    }
    /// int8 only: the K per-teacher scales of image row (i, j); empty for other dtypes.
    pub fn image_emb_scale(&self, i: usize, j: usize) -> &[f32] {
        let (s, r) = self.at(i);
        s.image_emb_scale(r, j)
    }
    /// int8 only: the K per-teacher scales of text row (i, t); empty for other dtypes.
    pub fn text_emb_scale(&self, i: usize, t: usize) -> &[f32] {
        let (s, r) = self.at(i);
        s.text_emb_scale(r, t)
    }
    /// int8 only: all J*K image scales of sample `i` (row-major [J, K]); empty otherwise.
    pub fn image_emb_scales(&self, i: usize) -> &[f32] {
        let (s, r) = self.at(i);
        s.image_emb_scales(r)
    }
    /// int8 only: all (1+S)*K text scales of sample `i` (row-major [1+S, K]); empty otherwise.
    pub fn text_emb_scales(&self, i: usize) -> &[f32] {
        let (s, r) = self.at(i);
        s.text_emb_scales(r)
    }
    pub fn sha256(&self, i: usize) -> Option<&[u8; 32]> {
        let (s, r) = self.at(i);
        s.sha256(r)
    }
    pub fn flags(&self, i: usize) -> u32 {
        let (s, r) = self.at(i);
        s.flags(r)
    }

    /// Bytes each column occupies, summed over all shards, in file order.
    pub fn column_bytes(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = Vec::new();
        for shard in &self.shards {
            for (n, (name, range)) in shard.column_ranges().iter().enumerate() {
                match out.get_mut(n) {
                    Some((_, total)) => *total += range.len() as u64,
                    None => out.push((name.clone(), range.len() as u64)),
                }
            }
        }
        out
    }

    /// Read-ahead hint for the embedding columns of every shard (default after open: `Random`).
    pub fn advise(&self, pattern: AccessPattern) {
        for shard in &self.shards {
            shard.advise(pattern);
        }
    }

    /// Start reading sample `i`'s image in the background (best effort).
    pub fn prefetch_image(&self, i: usize) {
        let (s, r) = self.at(i);
        s.prefetch_image(r)
    }

    /// Recompute every checksum against the manifest. Reads the files through a
    /// separate sequential mapping, so the serving mapping's hints stay as they are.
    pub fn verify(&self) -> Vec<Problem> {
        parallel_map(&self.manifest.shards, |entry| verify_file(&self.dir, &self.manifest, entry, false))
            .into_iter()
            .flatten()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    fn _assert_send_sync() {
        fn is<T: Send + Sync>() {}
        is::<super::Store>();
    }
}
