//! The reinforced-data loader: deterministic sampling, parallel exact replay,
//! batches assembled in recycled memory.

pub mod batch;
mod fill;
pub mod pipeline;
pub mod rng;
pub mod sampler;

use std::path::Path;
use std::sync::Arc;

pub use batch::{Batch, BatchShape, EmbeddingData, EmbeddingOutput, ImageData, ImageOutput, CONTEXT_LENGTH};
pub use pipeline::{Pipeline, PoolSender, SkippedSample, Stats};
pub use sampler::{CaptionMode, Order, SamplerConfig};

use crate::error::{Error, Result};
use crate::imaging::Interpolation;
use crate::store::Store;

/// What to do with a sample whose image no longer decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnError {
    /// Replace it deterministically, count it and record its uid.
    Skip,
    /// Fail the batch: the error surfaces in the iterating thread.
    Raise,
}

#[derive(Clone, Debug)]
pub struct LoaderConfig {
    pub sampler: SamplerConfig,
    pub image_size: usize,
    pub interpolation: Interpolation,
    pub image: ImageOutput,
    pub embedding: EmbeddingOutput,
    pub num_threads: usize,
    pub prefetch: usize,
    pub caption_mode: CaptionMode,
    pub on_error: OnError,
    /// Inexact fast mode: DCT-domain scaled JPEG decode when the crop is at
    /// least this many times the output size on both sides (see `Replayer::set_dct_scaling`).
    pub dct_scaling: Option<f64>,
}

impl LoaderConfig {
    pub fn validate(&self) -> Result<()> {
        let s = &self.sampler;
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if s.batch_size == 0 {
            return bad("batch_size must be >= 1".into());
        }
        if s.world_size == 0 || s.rank >= s.world_size {
            return bad(format!("rank must satisfy 0 <= rank < world_size (got rank {}, world_size {})", s.rank, s.world_size));
        }
        if self.image_size == 0 {
            return bad("image_size must be >= 1".into());
        }
        if self.num_threads == 0 {
            return bad("num_threads must be >= 1".into());
        }
        if self.prefetch == 0 {
            return bad("prefetch must be >= 1".into());
        }
        if let CaptionMode::Mix(p) = self.caption_mode {
            if !(0.0..=1.0).contains(&p) {
                return bad(format!("mix probability must be in [0, 1], got {p}"));
            }
        }
        if let ImageOutput::Float32 { std, .. } = self.image {
            if std.iter().any(|&v| v == 0.0 || !v.is_finite()) {
                return bad("std must be finite and non-zero".into());
            }
        }
        Ok(())
    }
}

/// A store opened for loading with a fixed configuration.
pub struct Loader {
    pub store: Arc<Store>,
    pub cfg: LoaderConfig,
    pub pipeline: Pipeline,
}

impl Loader {
    /// Open `store_dir` and validate `cfg` against it; `cfg.sampler.num_samples` is filled in.
    pub fn open(store_dir: &Path, cfg: LoaderConfig) -> Result<Loader> {
        Loader::with_store(Arc::new(Store::open(store_dir)?), cfg)
    }

    /// Load from an opened store (local or remote).
    pub fn with_store(store: Arc<Store>, mut cfg: LoaderConfig) -> Result<Loader> {
        cfg.validate()?;
        if store.len() == 0 {
            return Err(Error::InvalidArgument(format!("{}: the store holds no samples", store.location())));
        }
        cfg.sampler.num_samples = store.len();
        cfg.sampler.shard_sizes = Arc::new(store.shard_sizes());
        let dims = store.dims();
        let shape = BatchShape {
            batch_size: cfg.sampler.batch_size,
            image_size: cfg.image_size,
            emb_width: dims.k * dims.d,
            image: cfg.image,
            embedding: cfg.embedding,
        };
        let pipeline = Pipeline::new(store.clone(), cfg.clone(), shape);
        Ok(Loader { store, cfg, pipeline })
    }

    pub fn num_batches(&self) -> usize {
        sampler::num_batches(&self.cfg.sampler)
    }

    /// Begin (or resume) `epoch` at batch `start`.
    pub fn start_epoch(&mut self, epoch: u64, start: usize) -> Result<()> {
        let end = self.num_batches();
        if start > end {
            return Err(Error::InvalidArgument(format!("cannot resume at batch {start}: the epoch has {end} batches")));
        }
        // A remote store downloads ahead along the shards this rank will read.
        if self.store.is_remote() {
            // Shards that may still be read behind the furthest one: the shuffle
            // window, plus those the batches in flight (workers run ahead) may span.
            let s = &self.cfg.sampler;
            let window = match s.order {
                sampler::Order::ShardBlock { window } => window,
                sampler::Order::Global => 1,
            };
            let smallest = s.shard_sizes.iter().copied().filter(|&n| n > 0).min().unwrap_or(1);
            let in_flight = (self.cfg.prefetch + self.cfg.num_threads) * s.batch_size;
            let keep_behind = window + in_flight.div_ceil(smallest) + 1;
            self.store.set_shard_plan(sampler::shard_plan(s, epoch), keep_behind);
        }
        self.pipeline.start(epoch, start, end)
    }

    pub fn next_batch(&mut self) -> Result<Option<Box<Batch>>> {
        self.pipeline.next_batch()
    }
}
