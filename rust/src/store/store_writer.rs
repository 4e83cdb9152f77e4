//! Writing a whole store sample by sample: shards roll every ~`target_shard_bytes`,
//! and the manifest is written last, by `close`, so a writer that fails (or is
//! dropped without `close`) leaves a directory that never opens as a store.

use std::io;
use std::path::{Path, PathBuf};

use super::caption_sets::{check_schema_holds, stored_caption_sets, CaptionSet};
use super::manifest::{Manifest, ShardEntry, MANIFEST_FILE};
use super::sample::{EncodedSample, SampleInput};
use super::shard_writer::{shard_file_name, write_shard};
use super::{Dims, EmbeddingDtype};
use crate::error::{Error, Result};

/// What every store's manifest names as its tokenizer.
pub const DEFAULT_TOKENIZER: &str = "openai-clip-bpe";

/// Settings of a `StoreWriter`.
#[derive(Clone, Debug)]
pub struct StoreWriterOptions {
    pub dims: Dims,
    pub dtype: EmbeddingDtype,
    pub target_shard_bytes: u64,
    /// Free-form JSON kept in the manifest.
    pub metadata: serde_json::Value,
    /// Replace a store already in the directory (only store files are ever deleted).
    pub overwrite: bool,
    /// Manifest schema to write: 1 (every shard entry in manifest.json) or 2 (a small
    /// manifest.json plus shards.idx, for stores of any size; docs/FORMAT.md).
    pub schema_version: u32,
    /// The caption sets, in storage order (docs/FORMAT.md, "Caption sets"); `None` or the one set
    /// `syn_text` is the plain case. Any other list needs schema 2.
    pub caption_sets: Option<Vec<CaptionSet>>,
}

/// The schema `StoreWriter` and `write_manifest` write unless told otherwise: 2, whose small
/// manifest.json opens in the same time at any store size (docs/STORE_SCALE.md). Schema 1 is
/// still read, and written only when asked (`schema_version=1`).
pub const DEFAULT_WRITE_SCHEMA: u32 = 2;

pub struct StoreWriter {
    dir: PathBuf,
    options: StoreWriterOptions,
    pending: Vec<EncodedSample>,
    pending_bytes: u64,
    shards: Vec<ShardEntry>,
    closed: bool,
}

/// Whether `name` is a file a store (or its writer, killed mid-write) puts in its directory.
pub fn is_store_file(name: &str) -> bool {
    fn is_shard(name: &str) -> bool {
        name.strip_prefix("shard-")
            .and_then(|rest| rest.strip_suffix(".arrow"))
            .is_some_and(|n| n.len() >= 5 && n.bytes().all(|b| b.is_ascii_digit()))
    }
    fn is_final(name: &str) -> bool {
        name == MANIFEST_FILE || name == super::shard_index::INDEX_FILE || is_shard(name)
    }
    if is_final(name) {
        return true;
    }
    // A temp file: ".<final name>.tmp-<anything>".
    name.strip_prefix('.').and_then(|rest| rest.find(".tmp-").map(|at| &rest[..at])).is_some_and(is_final)
}

fn already_exists(dir: &Path, msg: String) -> Error {
    Error::io(dir, io::Error::new(io::ErrorKind::AlreadyExists, msg))
}

/// Create `dir` if needed; refuse a non-empty one unless `overwrite`, and then delete
/// only an old store's files (the manifest first, so an interrupted cleanup never
/// leaves a manifest without its shards).
fn prepare_dir(dir: &Path, overwrite: bool) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut store_files = Vec::new();
    let mut others = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let name = entry.map_err(|e| Error::io(dir, e))?.file_name().to_string_lossy().into_owned();
        if is_store_file(&name) {
            store_files.push(name);
        } else {
            others.push(name);
        }
    }
    if store_files.is_empty() && others.is_empty() {
        return Ok(());
    }
    if !overwrite {
        return Err(already_exists(dir, "is not empty; pass overwrite=True to replace a store there".into()));
    }
    if !others.is_empty() {
        others.sort();
        others.truncate(3);
        return Err(already_exists(
            dir,
            format!("holds files that are not part of a store ({others:?}); not deleting"),
        ));
    }
    store_files.sort_by_key(|n| n != MANIFEST_FILE);
    for name in store_files {
        let path = dir.join(&name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(())
}

impl StoreWriter {
    pub fn create(dir: &Path, mut options: StoreWriterOptions) -> Result<StoreWriter> {
        options.dims.check().map_err(Error::InvalidArgument)?;
        options.caption_sets =
            stored_caption_sets(options.caption_sets.take(), options.dims.s).map_err(Error::InvalidArgument)?;
        // Before any shard is written: the manifest would refuse it only at the end.
        check_schema_holds(options.caption_sets.as_deref(), options.schema_version).map_err(Error::InvalidArgument)?;
        if options.target_shard_bytes == 0 {
            return Err(Error::InvalidArgument("target_shard_bytes must be positive".into()));
        }
        prepare_dir(dir, options.overwrite)?;
        Ok(StoreWriter {
            dir: dir.to_path_buf(),
            options,
            pending: Vec::new(),
            pending_bytes: 0,
            shards: Vec::new(),
            closed: false,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn options(&self) -> &StoreWriterOptions {
        &self.options
    }
    /// Shards written so far.
    pub fn shards(&self) -> &[ShardEntry] {
        &self.shards
    }
    pub fn is_closed(&self) -> bool {
        self.closed
    }
    /// Samples added so far (written or buffered).
    pub fn num_samples(&self) -> usize {
        self.shards.iter().map(|s| s.num_samples).sum::<usize>() + self.pending.len()
    }

    fn check_open(&self) -> Result<()> {
        if self.closed {
            return Err(Error::InvalidArgument("StoreWriter is closed".into()));
        }
        Ok(())
    }

    /// Check and encode one sample (an error names it) and buffer it; writes a
    /// shard when enough is buffered.
    pub fn add(&mut self, sample: &SampleInput<'_>) -> Result<()> {
        self.check_open()?;
        let encoded = sample.encode(self.options.dims, self.options.dtype)?;
        self.add_encoded(encoded)
    }

    pub fn add_encoded(&mut self, sample: EncodedSample) -> Result<()> {
        self.check_open()?;
        self.pending_bytes += sample.nbytes() as u64;
        self.pending.push(sample);
        if self.pending_bytes >= self.options.target_shard_bytes {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let path = self.dir.join(shard_file_name(self.shards.len()));
        let o = &self.options;
        let entry = write_shard(&path, &self.pending, o.dims, o.dtype, o.caption_sets.clone())?;
        self.shards.push(entry);
        self.pending.clear();
        self.pending_bytes = 0;
        Ok(())
    }

    /// Write the last shard and the manifest; returns the store directory. A second
    /// call does nothing.
    pub fn close(&mut self) -> Result<PathBuf> {
        if !self.closed {
            self.flush()?;
            let o = &self.options;
            let manifest = Manifest::new(o.dims, o.dtype, DEFAULT_TOKENIZER, self.shards.clone(), o.metadata.clone())?
                .with_caption_sets(o.caption_sets.clone())?;
            manifest.write_version(&self.dir, o.schema_version)?;
            self.closed = true;
        }
        Ok(self.dir.clone())
    }

    /// Stop without a manifest: the directory is not a store.
    pub fn abort(&mut self) {
        self.closed = true;
        self.pending.clear();
        self.pending_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_files_are_recognised() {
        for name in [
            "manifest.json",
            "shard-00000.arrow",
            "shard-123456.arrow",
            ".manifest.json.tmp-12-0123abcd",
            ".shard-00001.arrow.tmp-9",
        ] {
            assert!(is_store_file(name), "{name}");
        }
        for name in ["notes.txt", "shard-1.arrow", "shard-0000a.arrow", ".notes.tmp-1", "manifest.json.bak"] {
            assert!(!is_store_file(name), "{name}");
        }
    }
}
