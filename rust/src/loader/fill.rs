//! Assembling one batch: for each sample pick its augmentation and synthetic
//! caption, replay the augmentation into the image slot, and copy tokens and
//! the matching teacher embedding rows.

use std::sync::Arc;

use half::f16;

use super::batch::{try_zeroed_vec, BatchMemory, EmbeddingData};
use super::sampler::{augmentation_choice, caption_choice, mix_takes_synthetic, CaptionMode};
use super::stats::{SkippedSample, Stats};
use super::{LoaderConfig, OnError};
use crate::error::{Error, Result};
use crate::imaging::Replayer;
use crate::store::{EmbeddingDtype, Shard, Store};

/// Per-thread state: the replayer (decoder + scratch) and one HWC image buffer.
pub struct BatchFiller {
    store: Arc<Store>,
    cfg: LoaderConfig,
    stats: Arc<Stats>,
    replayer: Replayer,
    hwc: Vec<u8>,
}

/// The choices made for one delivered sample.
struct Choice {
    index: u64,
    aug: usize,
    /// The caption set (its index in the store's sets) and the caption's flat position in 0..S.
    set: usize,
    syn: usize,
    text_is_syn: bool,
}

impl BatchFiller {
    pub fn new(store: Arc<Store>, cfg: LoaderConfig, stats: Arc<Stats>) -> Result<Self> {
        let hwc = try_zeroed_vec(cfg.image_size * cfg.image_size * 3, "a worker's image buffer")?;
        let mut replayer = Replayer::new()?;
        replayer.set_dct_scaling(cfg.dct_scaling);
        Ok(BatchFiller { store, cfg, stats, replayer, hwc })
    }

    fn choose(&self, epoch: u64, index: u64) -> Choice {
        let dims = self.store.dims();
        let seed = self.cfg.sampler.seed;
        let (set, syn) = caption_choice(seed, epoch, index, &self.cfg.chosen_sets);
        let text_is_syn = match self.cfg.caption_mode {
            CaptionMode::Both => false,
            CaptionMode::Mix(p) => mix_takes_synthetic(seed, epoch, index, p),
        };
        Choice { index, aug: augmentation_choice(seed, epoch, index, dims.j), set, syn, text_is_syn }
    }

    /// Replay sample `index`'s chosen augmentation into `self.hwc`.
    fn replay(&mut self, c: &Choice, shard: &Shard, row: usize) -> Result<()> {
        let i = c.index as usize;
        self.replayer
            .replay(
                shard.uid(row),
                shard.image_bytes(row),
                &shard.aug(row, c.aug),
                self.cfg.image_size,
                self.cfg.interpolation,
                &mut self.hwc,
            )
            .map_err(|e| match e {
                Error::Decode { key, msg } => {
                    Error::decode(format!("{key} (index {i}, {})", shard.path().display()), msg)
                }
                other => other,
            })
    }

    /// Fill `batch` with batch number `number` of `epoch`, whose samples are `rows`.
    pub fn fill(&mut self, batch: &mut BatchMemory, epoch: u64, number: usize, rows: &[u64]) -> Result<()> {
        batch.len = rows.len();
        batch.batch_number = number;
        batch.epoch = epoch;
        let n = self.store.len() as u64;
        for (row, &wanted) in rows.iter().enumerate() {
            let mut choice = self.choose(epoch, wanted);
            // Samples that failed, with their uid and why (logged once the replacement is known).
            let mut bad: Vec<(u64, String, String)> = Vec::new();
            let (mut shard, mut shard_row) = self.store.sample(choice.index as usize)?;
            loop {
                match self.replay(&choice, &shard, shard_row) {
                    Ok(()) => break,
                    Err(e @ Error::Decode { .. }) if self.cfg.on_error == OnError::Skip => {
                        // Deterministic replacement: the next sample in index order that decodes.
                        bad.push((choice.index, shard.uid(shard_row).to_string(), e.to_string()));
                        let attempt = bad.len() as u64;
                        if attempt >= n {
                            return Err(e);
                        }
                        let replacement = (wanted + attempt) % n;
                        choice = self.choose(epoch, replacement);
                        (shard, shard_row) = self.store.sample(replacement as usize)?;
                    }
                    Err(e) => return Err(e),
                }
            }
            if !bad.is_empty() {
                let mut log = self.stats.skipped.lock().unwrap_or_else(|p| p.into_inner());
                for (index, uid, reason) in bad {
                    log.record(SkippedSample { index, uid, reason, replacement: choice.index });
                }
            }
            batch.put_image(row, &self.hwc);
            self.put_text_and_embeddings(batch, row, &choice, &shard, shard_row);
        }
        self.stats.samples.fetch_add(rows.len(), std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn put_text_and_embeddings(&self, batch: &mut BatchMemory, row: usize, c: &Choice, shard: &Shard, r: usize) {
        let syn_t = 1 + c.syn;
        let text_t = if c.text_is_syn { syn_t } else { 0 };
        let text_tokens = if c.text_is_syn { shard.syn_tokens(r, c.syn) } else { shard.caption_tokens(r) };
        BatchMemory::put_tokens(&mut batch.text, row, text_tokens);
        BatchMemory::put_tokens(&mut batch.syn_text, row, shard.syn_tokens(r, c.syn));

        let w = batch.shape.emb_width;
        let dtype = shard.dtype();
        let k = shard.dims().k;
        let int8 = dtype == EmbeddingDtype::Int8;
        let rows = [
            (shard.image_emb_raw(r, c.aug), int8.then(|| shard.image_emb_scale(r, c.aug))),
            (shard.text_emb_raw(r, text_t), int8.then(|| shard.text_emb_scale(r, text_t))),
            (shard.text_emb_raw(r, syn_t), int8.then(|| shard.text_emb_scale(r, syn_t))),
        ];
        let fields = [&mut batch.image_emb, &mut batch.text_emb, &mut batch.syn_text_emb];
        for ((raw, scales), field) in rows.into_iter().zip(fields) {
            copy_embedding(raw, scales, dtype, k, field, row * w, w);
        }
        batch.index[row] = c.index as i64;
        batch.aug_index[row] = c.aug as i64;
        batch.syn_index[row] = c.syn as i64;
        batch.caption_set[row] = c.set as i64;
        batch.text_is_syn[row] = c.text_is_syn as u8;
    }
}

/// Decode one stored embedding row (K teachers x D, little-endian) into the output field.
fn copy_embedding(
    raw: &[u8],
    scales: Option<&[f32]>,
    dtype: EmbeddingDtype,
    k: usize,
    out: &mut EmbeddingData,
    offset: usize,
    width: usize,
) {
    let d = width / k;
    let value = |idx: usize| -> f32 {
        match dtype {
            EmbeddingDtype::Float16 => f16::from_le_bytes([raw[2 * idx], raw[2 * idx + 1]]).to_f32(),
            EmbeddingDtype::BFloat16 => half::bf16::from_le_bytes([raw[2 * idx], raw[2 * idx + 1]]).to_f32(),
            EmbeddingDtype::Int8 => raw[idx] as i8 as f32 * scales.expect("int8 store without scales")[idx / d],
        }
    };
    match out {
        EmbeddingData::Float16(v) if dtype == EmbeddingDtype::Float16 => {
            // Same type in and out: a plain copy of the bits.
            for (o, b) in v[offset..offset + width].iter_mut().zip(raw.chunks_exact(2)) {
                *o = f16::from_le_bytes([b[0], b[1]]);
            }
        }
        EmbeddingData::Float16(v) => {
            for (x, o) in v[offset..offset + width].iter_mut().enumerate() {
                *o = f16::from_f32(value(x));
            }
        }
        EmbeddingData::Float32(v) => {
            for (x, o) in v[offset..offset + width].iter_mut().enumerate() {
                *o = value(x);
            }
        }
    }
}
