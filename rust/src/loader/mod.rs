//! The reinforced-data loader: deterministic sampling, parallel exact replay,
//! batches assembled in recycled memory.

pub mod batch;
mod fill;
pub mod page_buf;
pub mod permutation;
pub mod pipeline;
pub mod rng;
pub mod sampler;
pub mod settings;
pub mod stage_timing;
pub mod stats;

use std::path::Path;
use std::sync::Arc;

pub use batch::{BatchMemory, BatchShape, EmbeddingData, EmbeddingOutput, ImageData, ImageOutput, CONTEXT_LENGTH};
pub use pipeline::{BatchPool, EpochRun, PoolSender};
pub use sampler::{CaptionMode, ChosenSet, Order, SamplerConfig};
pub use settings::{CaptionSetting, ImageDtype, LoaderSettings, Named, OrderSetting};
pub use stats::{SkippedSample, Stats};

use crate::error::{Error, Result};
use crate::imaging::Interpolation;
use crate::store::Store;

/// More worker threads than this is a mistake, not a configuration: each
/// holds its own decoder and image buffers.
pub const MAX_LOADER_THREADS: usize = 1024;

/// What to do with a sample whose image no longer decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnError {
    /// Replace it deterministically, count it and record its uid.
    Skip,
    /// Fail the batch: the error surfaces in the iterating thread.
    Raise,
}

/// A checked loader configuration: only `LoaderConfig::new` makes one, so
/// every rule on the settings is applied in one place.
// The private field (not `#[non_exhaustive]`, which only binds other crates)
// keeps the bindings in this crate from building one field by field.
#[allow(clippy::manual_non_exhaustive)]
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
    /// The caption sets chosen by index, as checked (None: every set of the store).
    pub caption_sets: Option<Vec<usize>>,
    /// The chosen sets with their positions in the store: filled in by `Loader::with_store`.
    pub chosen_sets: Arc<[ChosenSet]>,
    pub on_error: OnError,
    /// Inexact fast mode: DCT-domain scaled JPEG decode when the crop is at
    /// least this many times the output size on both sides (see `Replayer::set_dct_scaling`).
    pub dct_scaling: Option<f64>,
    _checked: (),
}

impl LoaderConfig {
    /// Check every setting and build the configuration; `remote` is whether the
    /// store is read from object storage (it decides what `order="auto"` means).
    /// `sampler.num_samples` and `shard_sizes` are filled in by `Loader::with_store`.
    pub fn new(s: &LoaderSettings, remote: bool) -> Result<LoaderConfig> {
        use settings::{count, integer};
        let batch_size = count("batch_size", s.batch_size, 1)?;
        let image_size = settings::output_side("image_size", s.image_size)?;
        let num_threads = match s.num_threads {
            Some(n) => settings::count_at_most("num_threads", n, 1, MAX_LOADER_THREADS)?,
            None => settings::default_threads(),
        };
        let prefetch = match s.prefetch {
            Some(n) => count("prefetch", n, 1)?,
            None => 2 * num_threads,
        };
        let seed = integer("seed", s.seed, 0)?;
        let world_size = count("world_size", s.world_size, 1)?;
        let rank = count("rank", s.rank, 0)?;
        if rank >= world_size {
            return Err(Error::InvalidArgument(format!(
                "rank must be < world_size (got rank {rank}, world_size {world_size})"
            )));
        }
        let window = count("shuffle_window", s.shuffle_window, 1)?;
        let order = match s.order {
            OrderSetting::Global => Order::Global,
            OrderSetting::ShardBlock => Order::ShardBlock { window },
            // Remote stores read a window of shards at a time; local ones shuffle globally.
            OrderSetting::Auto if remote => Order::ShardBlock { window },
            OrderSetting::Auto => Order::Global,
        };
        // Checked in every caption mode: a wrong value is a mistake even where unused.
        let mix_probability = settings::probability("mix_probability", s.mix_probability)?;
        let caption_mode = match s.caption_mode {
            CaptionSetting::Both => CaptionMode::Both,
            CaptionSetting::Mix => CaptionMode::Mix(mix_probability),
        };
        let image = match s.image_dtype {
            ImageDtype::Uint8 => {
                settings::rgb_lengths(&s.mean, &s.std)?;
                ImageOutput::Uint8
            }
            ImageDtype::Float32 => {
                let (mean, std) = settings::normalisation(&s.mean, &s.std)?;
                ImageOutput::Float32 { mean, std }
            }
        };
        Ok(LoaderConfig {
            sampler: SamplerConfig {
                num_samples: 0,
                seed,
                shuffle: s.shuffle,
                drop_last: s.drop_last,
                rank,
                world_size,
                batch_size,
                order,
                shard_sizes: Default::default(),
            },
            image_size,
            interpolation: s.interpolation,
            image,
            embedding: s.embedding_output_dtype,
            num_threads,
            prefetch,
            caption_mode,
            caption_sets: settings::caption_set_indices(&s.caption_sets)?,
            chosen_sets: Arc::new([]),
            on_error: s.on_error,
            dct_scaling: settings::dct_scaling(s.dct_scaling)?,
            _checked: (),
        })
    }
}

/// Bytes of memory a new allocation can have now: Linux's `MemAvailable`
/// (free memory plus what the kernel can reclaim), else the physical memory not
/// in use (`_SC_AVPHYS_PAGES`); 0 if unknown.
fn available_memory() -> u128 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u128>().ok());
    if let Some(kib) = kib {
        return kib * 1024;
    }
    #[cfg(unix)]
    {
        // SAFETY: sysconf has no preconditions.
        let (pages, page) = unsafe { (libc::sysconf(libc::_SC_AVPHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
        if pages > 0 && page > 0 {
            return pages as u128 * page as u128;
        }
    }
    0
}

/// A store opened for loading with a fixed configuration. Any number of
/// independent passes (`start_epoch`) may run at once.
pub struct Loader {
    pub store: Arc<Store>,
    pub cfg: LoaderConfig,
    pub stats: Arc<Stats>,
    pub pool: Arc<BatchPool>,
}

impl Loader {
    /// Open `store_dir` and validate `cfg` against it; `cfg.sampler.num_samples` is filled in.
    /// Batch memory is sized to what a batch can hold (never more rows than this
    /// rank's samples per epoch); memory the configuration would need beyond what
    /// is available is an `Error::OutOfMemory` here, not an abort later.
    pub fn open(store_dir: &Path, cfg: LoaderConfig) -> Result<Loader> {
        Loader::with_store(Arc::new(Store::open(store_dir)?), cfg)
    }

    /// Load from an opened store (local or remote).
    pub fn with_store(store: Arc<Store>, mut cfg: LoaderConfig) -> Result<Loader> {
        if store.is_empty() {
            return Err(Error::InvalidArgument(format!("{}: the store holds no samples", store.location())));
        }
        cfg.sampler.num_samples = store.len();
        cfg.sampler.shard_sizes = Arc::new(store.shard_sizes());
        cfg.chosen_sets = settings::caption_sets_in_store(cfg.caption_sets.as_deref(), &store.caption_sets())?.into();
        let dims = store.dims();
        let shape = BatchShape {
            batch_size: cfg.sampler.batch_size.min(sampler::samples_per_rank(&cfg.sampler)).max(1),
            image_size: cfg.image_size,
            emb_width: dims.k * dims.d,
            image: cfg.image,
            embedding: cfg.embedding,
        };
        check_memory(&cfg, &shape, sampler::num_batches(&cfg.sampler))?;
        let pool = Arc::new(BatchPool::new(shape));
        // The first buffer now: if even one batch cannot be had, say so here.
        let first = pool.take()?;
        pool.give_back(first);
        Ok(Loader { store, cfg, stats: Arc::new(Stats::default()), pool })
    }

    pub fn num_batches(&self) -> usize {
        sampler::num_batches(&self.cfg.sampler)
    }

    /// Rows a batch buffer holds: `batch_size`, or fewer when this rank's epoch is smaller.
    pub fn batch_capacity(&self) -> usize {
        self.pool.shape().batch_size
    }

    /// A new, independent pass over `epoch` from batch `start` to its end.
    pub fn start_epoch(&self, epoch: u64, start: usize) -> Result<EpochRun> {
        let end = self.num_batches();
        if start > end {
            return Err(Error::InvalidArgument(format!("cannot resume at batch {start}: the epoch has {end} batches")));
        }
        // A remote store downloads ahead along the shards this rank will read.
        // With several passes at once, the newest one's plan is followed.
        if self.store.is_remote() {
            // Shards that may still be read behind the furthest one: the shuffle
            // window, plus those the batches in flight (workers run ahead) may span.
            let s = &self.cfg.sampler;
            let window = match s.order {
                sampler::Order::ShardBlock { window } => window,
                sampler::Order::Global => 1,
            };
            let smallest = s.shard_sizes.iter().copied().filter(|&n| n > 0).min().unwrap_or(1);
            let in_flight = (self.cfg.prefetch + self.cfg.num_threads) * self.batch_capacity();
            let keep_behind = window + in_flight.div_ceil(smallest) + 1;
            self.store.set_shard_plan(sampler::shard_plan(s, epoch), keep_behind);
        }
        EpochRun::start(&self.store, &self.cfg, &self.stats, &self.pool, epoch, start, end)
    }
}

/// Refuse a configuration whose steady-state buffers exceed the memory available now:
/// `prefetch` batches in flight plus one held, and each worker's image buffer.
fn check_memory(cfg: &LoaderConfig, shape: &BatchShape, num_batches: usize) -> Result<()> {
    let gib = |b: u128| b as f64 / (1u64 << 30) as f64;
    let Some(batch) = shape.bytes() else {
        return Err(Error::OutOfMemory(format!(
            "a batch of {} images of {1}x{1} is larger than any address space",
            shape.batch_size, shape.image_size
        )));
    };
    let buffers = cfg.prefetch.min(num_batches) as u128 + 1;
    let workers = cfg.num_threads.min(num_batches).max(1) as u128;
    let needed = batch as u128 * buffers + workers * 3 * (shape.image_size as u128).pow(2);
    let available = available_memory();
    if available > 0 && needed > available {
        return Err(Error::OutOfMemory(format!(
            "the loader needs {needed:.1} GiB ({buffers} batch buffers of {rows} rows at {size}x{size}, {each:.2} GiB \
             each), more than the {have:.1} GiB of memory available now; lower batch_size, image_size or prefetch",
            needed = gib(needed),
            rows = shape.batch_size,
            size = shape.image_size,
            each = gib(batch as u128),
            have = gib(available)
        )));
    }
    Ok(())
}
