//! `Store`: a whole store, opened once and shared by many threads.
//!
//! Opening reads only the manifest. A shard is mapped and validated (magic,
//! version, dims, types, row count, aug records: everything `Shard::open`
//! checks) the first time one of its samples is read, so open time and bytes
//! read at open do not grow with the number of samples; `verify` stays the full
//! check of every byte.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::manifest::{Manifest, ShardEntry};
use super::parallel::parallel_map;
use super::shard::{AccessPattern, Shard, ShardExpect};
use super::shard_table::{local_range_reader, ShardTable};
use super::verify::{verify_file, Problem};
use super::{Dims, EmbeddingDtype};
use crate::error::{Error, Result};

/// One shard's place in the store: empty until the shard is first used.
/// Remote stores empty it again when their cache evicts the file.
#[derive(Default)]
pub(crate) struct Slot(Mutex<Option<Arc<Shard>>>);

impl Slot {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Option<Arc<Shard>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Unmap the shard unless somebody is using it right now (holds its `Arc`,
    /// or is opening it). Returns whether the slot is now empty.
    #[cfg_attr(not(feature = "remote"), allow(dead_code))]
    pub(crate) fn release_if_unused(&self) -> bool {
        let Ok(mut slot) = self.0.try_lock() else { return false };
        match &*slot {
            Some(shard) if Arc::strong_count(shard) > 1 => false,
            _ => {
                *slot = None;
                true
            }
        }
    }
}

/// Where the shard files come from.
enum Source {
    /// A directory on a local filesystem: shards are mapped in place.
    Local,
    /// An object store: shards are downloaded whole into a local cache first.
    #[cfg(feature = "remote")]
    /// The runtime is held for its `Drop`: downloads stop with the store.
    Remote(Arc<super::remote::RemoteShards>, #[allow(dead_code)] super::remote::DownloadRuntime),
}

/// An open store. `Send + Sync`: share it behind an `Arc`.
pub struct Store {
    /// What the caller opened (a directory or a URL), for messages.
    location: String,
    /// The directory the shard files are mapped from (for remote stores: the cache).
    dir: PathBuf,
    /// The manifest's header (schema 1: its shard list moved into `table`).
    manifest: Manifest,
    manifest_text: String,
    dims: Dims,
    dtype: EmbeddingDtype,
    slots: Arc<[Slot]>,
    table: Arc<ShardTable>,
    source: Source,
    /// The `AccessPattern` given to shards as they are mapped (see `advise`).
    pattern: AtomicU8,
    /// Shards mapped (and so validated) so far, counting re-maps after eviction.
    mapped: AtomicUsize,
}

impl Store {
    /// Open a store directory on a local filesystem (reads only `manifest.json`).
    pub fn open(dir: &Path) -> Result<Store> {
        let (manifest_text, manifest_path) = Manifest::read_text(dir)?;
        let mut manifest = Manifest::parse(&manifest_text, &manifest_path)?;
        let table = match &manifest.shard_index {
            None => ShardTable::inline(&mut manifest),
            Some(index) => {
                let path = dir.join(&index.file);
                ShardTable::indexed(
                    &manifest,
                    path.display().to_string(),
                    local_range_reader(&path, index.file_bytes)?,
                )?
            }
        };
        Ok(Store::from_parts(
            dir.display().to_string(),
            dir.to_path_buf(),
            manifest,
            manifest_text,
            Arc::new(table),
            Source::Local,
        ))
    }

    /// Open a remote store (`s3://`, `gs://`, `az://`, `http(s)://`, `file://`)
    /// through a local shard cache; see `remote` and docs/REMOTE.md.
    #[cfg(feature = "remote")]
    pub fn open_remote(url: &str, options: &super::RemoteOptions) -> Result<Store> {
        let runtime = super::remote::DownloadRuntime::new(url)?;
        let (remote, manifest, manifest_text, table) = super::remote::RemoteShards::open(url, options, &runtime)?;
        let dir = remote.cache_dir().to_path_buf();
        let remote = Arc::new(remote);
        let source = Source::Remote(remote.clone(), runtime);
        let store = Store::from_parts(url.to_string(), dir, manifest, manifest_text, table, source);
        remote.attach(store.slots.clone());
        Ok(store)
    }

    fn from_parts(
        location: String,
        dir: PathBuf,
        manifest: Manifest,
        manifest_text: String,
        table: Arc<ShardTable>,
        source: Source,
    ) -> Store {
        let slots: Arc<[Slot]> = (0..table.len()).map(|_| Slot::default()).collect();
        Store {
            location,
            dir,
            dims: manifest.dims(),
            dtype: manifest.dtype(),
            manifest,
            manifest_text,
            slots,
            table,
            source,
            pattern: AtomicU8::new(pattern_code(AccessPattern::Random)),
            mapped: AtomicUsize::new(0),
        }
    }

    /// The directory or URL this store was opened from.
    pub fn location(&self) -> &str {
        &self.location
    }
    /// The local directory the shards are mapped from (the cache for a remote store).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn is_remote(&self) -> bool {
        !matches!(self.source, Source::Local)
    }
    pub fn len(&self) -> usize {
        *self.table.starts().last().expect("starts is never empty") as usize
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
    /// The caption sets in storage order (one set `syn_text` of S captions when the manifest lists none).
    pub fn caption_sets(&self) -> Vec<super::CaptionSet> {
        self.manifest.caption_sets()
    }
    pub fn num_shards(&self) -> usize {
        self.slots.len()
    }
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// Shard n's manifest entry (name, counts, checksums); a schema-2 store reads it from its index.
    pub fn shard_entry(&self, n: usize) -> Result<ShardEntry> {
        self.table.entry(n)
    }
    /// Shard n's file name inside the store.
    pub fn shard_file(&self, n: usize) -> Result<String> {
        self.table.file_name(n)
    }
    /// Shard n's byte size, as the manifest (or index) states it.
    pub fn shard_file_bytes(&self, n: usize) -> u64 {
        self.table.file_bytes(n)
    }
    /// The manifest exactly as stored (for bindings that parse it themselves).
    pub fn manifest_text(&self) -> &str {
        &self.manifest_text
    }
    /// Number of samples in each shard, in store order (from the manifest).
    pub fn shard_sizes(&self) -> Vec<usize> {
        (0..self.table.len()).map(|n| self.table.num_samples(n)).collect()
    }
    /// How many times a shard was mapped and validated so far (0 right after open).
    pub fn shards_mapped(&self) -> usize {
        self.mapped.load(Ordering::Relaxed)
    }

    /// Shard `n`, mapped and validated on first use. Errors name the file and
    /// what is wrong; a failed open is retried on the next call.
    pub fn shard(&self, n: usize) -> Result<Arc<Shard>> {
        let mut slot = self.slots[n].lock();
        if let Some(shard) = &*slot {
            let shard = shard.clone();
            drop(slot);
            self.touched(n);
            return Ok(shard);
        }
        let expect = ShardExpect {
            dims: self.dims,
            dtype: self.dtype,
            caption_sets: self.manifest.caption_sets.as_deref(),
            num_samples: self.table.num_samples(n),
            file_bytes: self.table.file_bytes(n),
        };
        let path = match &self.source {
            Source::Local => self.dir.join(self.table.file_name(n)?),
            #[cfg(feature = "remote")]
            Source::Remote(remote, _) => remote.fetch(n)?,
        };
        let shard = Arc::new(Shard::open(&path, Some(&expect))?);
        shard.advise(pattern_from_code(self.pattern.load(Ordering::Relaxed)));
        self.mapped.fetch_add(1, Ordering::Relaxed);
        *slot = Some(shard.clone());
        drop(slot);
        self.touched(n);
        Ok(shard)
    }

    /// Tell the source that shard `n` is being read (a remote store prefetches what follows).
    /// Called without the slot's lock: prefetching may evict other shards.
    fn touched(&self, _n: usize) {
        #[cfg(feature = "remote")]
        if let Source::Remote(remote, _) = &self.source {
            remote.touched(_n);
        }
    }

    /// The shard holding sample `i` and the row inside it (mapping it on first use).
    pub fn sample(&self, i: usize) -> Result<(Arc<Shard>, usize)> {
        let (n, row) = self.locate(i)?;
        Ok((self.shard(n)?, row))
    }

    /// Checked global index -> (shard, row).
    pub fn locate(&self, i: usize) -> Result<(usize, usize)> {
        if i >= self.len() {
            return Err(Error::Index { index: i.min(i64::MAX as usize) as i64, len: self.len() });
        }
        // The last shard starting at or before `i` (which skips empty shards,
        // whose start equals the next one's).
        let starts = self.table.starts();
        let n = starts.partition_point(|&s| s <= i as u64) - 1;
        Ok((n, i - starts[n] as usize))
    }

    /// The order in which this process will read shards (a remote store downloads ahead along it).
    /// `keep_behind`: how many shards behind the furthest one read may still be read.
    pub fn set_shard_plan(&self, _plan: Vec<usize>, _keep_behind: usize) {
        #[cfg(feature = "remote")]
        if let Source::Remote(remote, _) = &self.source {
            remote.set_plan(_plan, _keep_behind);
        }
    }

    /// Download counters of a remote store's cache (`None` for a local store).
    #[cfg(feature = "remote")]
    pub fn cache_stats(&self) -> Option<super::remote::CacheStats> {
        match &self.source {
            Source::Remote(remote, _) => Some(remote.stats()),
            Source::Local => None,
        }
    }

    /// Where shard `n` lives, for messages: the file, or the object URL for a remote store.
    pub fn shard_location(&self, n: usize) -> String {
        match &self.source {
            Source::Local => self.dir.join(self.table.label(n)).display().to_string(),
            #[cfg(feature = "remote")]
            Source::Remote(remote, _) => remote.object_url(n),
        }
    }

    /// Where sample `i`'s shard lives (see `shard_location`).
    pub fn shard_location_of(&self, i: usize) -> Result<String> {
        Ok(self.shard_location(self.locate(i)?.0))
    }

    /// Bytes each column occupies, summed over all shards, in file order.
    /// Maps every shard (for a remote store: downloads it).
    pub fn column_bytes(&self) -> Result<Vec<(String, u64)>> {
        let mut out: Vec<(String, u64)> = Vec::new();
        for n in 0..self.num_shards() {
            for (c, (name, range)) in self.shard(n)?.column_ranges().iter().enumerate() {
                match out.get_mut(c) {
                    Some((_, total)) => *total += range.len() as u64,
                    None => out.push((name.clone(), range.len() as u64)),
                }
            }
        }
        Ok(out)
    }

    /// Read-ahead hint for the embedding columns of the mapped shards and of
    /// every shard mapped later (default: `Random`).
    pub fn advise(&self, pattern: AccessPattern) {
        self.pattern.store(pattern_code(pattern), Ordering::Relaxed);
        for slot in self.slots.iter() {
            if let Some(shard) = &*slot.lock() {
                shard.advise(pattern);
            }
        }
    }

    /// Recompute every checksum against the manifest and run the open-time
    /// checks on every shard. Reads the files through a separate sequential
    /// mapping, so the serving mapping's hints stay as they are. A remote store
    /// downloads each shard into its cache first (the download itself is
    /// checked against the whole-file checksum; a failed one is reported).
    pub fn verify(&self) -> Vec<Problem> {
        let all: Vec<usize> = (0..self.num_shards()).collect();
        self.verify_shards(&all).into_iter().flat_map(|(_, p)| p).collect()
    }

    /// `verify` for the given shards only, each with its problems (empty: intact), in the
    /// order given: what a resumable, progress-reporting verify runs a block at a time.
    /// Local shards are checked in parallel; remote ones are downloaded and checked in turn.
    pub fn verify_shards(&self, shards: &[usize]) -> Vec<(usize, Vec<Problem>)> {
        let one = |n: usize| -> Vec<Problem> {
            if n >= self.num_shards() {
                return vec![Problem { shard: self.dir.clone(), column: None, message: format!("no shard {n}") }];
            }
            let fail = |e: Error| {
                let message = match e {
                    // The problem names the shard's URL already: the message says only what went wrong.
                    Error::Remote { msg, .. } => msg,
                    e => e.to_string(),
                };
                vec![Problem { shard: self.shard_location(n).into(), column: None, message }]
            };
            match &self.source {
                Source::Local => match self.table.entry(n) {
                    Ok(entry) => verify_file(
                        &self.dir,
                        self.dims,
                        self.dtype,
                        self.manifest.caption_sets.as_deref(),
                        &entry,
                        true,
                    ),
                    Err(e) => fail(e),
                },
                #[cfg(feature = "remote")]
                Source::Remote(remote, _) => {
                    let pinned = self.slots[n].lock();
                    let problems = match remote.fetch(n).and_then(|_| self.table.entry(n)) {
                        // The cached copy's name in the cache folder (`ShardTable::cache_name`).
                        Ok(entry) => {
                            let cached = ShardEntry { file: self.table.cache_name(n), ..entry };
                            verify_file(
                                &self.dir,
                                self.dims,
                                self.dtype,
                                self.manifest.caption_sets.as_deref(),
                                &cached,
                                true,
                            )
                        }
                        Err(e) => fail(e),
                    };
                    drop(pinned);
                    problems
                }
            }
        };
        let problems = match &self.source {
            Source::Local => parallel_map(shards, |&n| one(n)),
            #[cfg(feature = "remote")]
            Source::Remote(..) => shards.iter().map(|&n| one(n)).collect(),
        };
        shards.iter().copied().zip(problems).collect()
    }
}

fn pattern_code(p: AccessPattern) -> u8 {
    match p {
        AccessPattern::Random => 0,
        AccessPattern::Sequential => 1,
        AccessPattern::Normal => 2,
    }
}

fn pattern_from_code(c: u8) -> AccessPattern {
    match c {
        1 => AccessPattern::Sequential,
        2 => AccessPattern::Normal,
        _ => AccessPattern::Random,
    }
}

#[cfg(test)]
mod tests {
    fn _assert_send_sync() {
        fn is<T: Send + Sync>() {}
        is::<super::Store>();
    }
}
