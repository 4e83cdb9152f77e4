//! Full integrity check: every shard's size, whole-file and per-column checksums
//! against the manifest, then the open-time validation. Problems are collected,
//! not raised, so one damaged shard does not hide another.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use memmap2::{Advice, Mmap};

use super::caption_sets::CaptionSet;
use super::checksum::{self, ShardChecksums};
use super::files::open_regular;
use super::layout::read_layout;
use super::manifest::{hex64, Manifest, ShardEntry};
use super::parallel::parallel_map;
use super::shard::{Shard, ShardExpect};
use super::shard_table::{local_range_reader, ShardTable};
use super::{Dims, EmbeddingDtype};
use crate::error::{Error, Result};

/// One thing wrong with one shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub shard: PathBuf,
    /// The damaged column, or `None` for the file as a whole.
    pub column: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(c) => write!(f, "{}: column '{c}': {}", self.shard.display(), self.message),
            None => write!(f, "{}: {}", self.shard.display(), self.message),
        }
    }
}

/// Verify a store directory without opening it as a `Store` first, so a shard
/// that no longer opens is reported alongside the others. Only an unreadable
/// manifest is an `Err`.
pub fn verify_dir(dir: &Path) -> Result<Vec<Problem>> {
    let (text, path) = Manifest::read_text(dir)?;
    let mut manifest = Manifest::parse(&text, &path)?;
    let (dims, dtype) = (manifest.dims(), manifest.dtype());
    let sets = manifest.caption_sets.clone();
    let table = match &manifest.shard_index {
        None => ShardTable::inline(&mut manifest),
        Some(index) => {
            let path = dir.join(&index.file);
            ShardTable::indexed(&manifest, path.display().to_string(), local_range_reader(&path, index.file_bytes)?)?
        }
    };
    let shards: Vec<usize> = (0..table.len()).collect();
    let per_shard = parallel_map(&shards, |&n| match table.entry(n) {
        Ok(entry) => verify_file(dir, dims, dtype, sets.as_deref(), &entry, true),
        Err(e) => vec![Problem { shard: dir.join(table.label(n)), column: None, message: e.to_string() }],
    });
    let mut problems: Vec<Problem> = per_shard.into_iter().flatten().collect();
    // Names are checked unique within each block as they are read; across blocks, here.
    let mut seen = std::collections::HashMap::new();
    for n in 0..table.len() {
        if let Ok(name) = table.file_name(n) {
            if let Some(first) = seen.insert(name.clone(), n) {
                let message = format!("shard {n} has the file name of shard {first} ({name:?})");
                problems.push(Problem { shard: dir.join(&name), column: None, message });
            }
        }
    }
    Ok(problems)
}

/// Check one shard file against its manifest entry; with `validate`, also run the
/// open-time checks when the checksums match.
pub(crate) fn verify_file(
    dir: &Path,
    dims: Dims,
    dtype: EmbeddingDtype,
    caption_sets: Option<&[CaptionSet]>,
    entry: &ShardEntry,
    validate: bool,
) -> Vec<Problem> {
    let path = dir.join(&entry.file);
    let problem = |column: Option<&str>, message: String| Problem {
        shard: path.clone(),
        column: column.map(str::to_string),
        message,
    };
    let file = match open_regular(&path, || Error::format(&path, "shard file listed in the manifest is missing")) {
        Ok(f) => f,
        Err(Error::Format { msg, .. }) => return vec![problem(None, msg)],
        Err(Error::Io { source, .. }) => return vec![problem(None, format!("cannot read: {source}"))],
        Err(e) => return vec![problem(None, e.to_string())],
    };
    let mapped = file.metadata().and_then(|m| {
        // SAFETY: see Shard::open; an empty file cannot be mapped.
        if m.len() == 0 {
            return Ok(None);
        }
        let map = unsafe { Mmap::map(&file) }?;
        let _ = map.advise(Advice::Sequential); // one pass in order: read ahead aggressively
        Ok(Some(map))
    });
    let bytes: &[u8] = match &mapped {
        Err(e) => return vec![problem(None, format!("cannot read: {e}"))],
        Ok(None) => &[],
        Ok(Some(m)) => m,
    };
    let mut problems = compare_checksums(&path, bytes, entry);
    // Checksums can match while the content is still unusable (a manifest written
    // for a bad file); the open-time checks catch that.
    if validate && problems.is_empty() {
        let (num_samples, file_bytes) = (entry.num_samples, entry.file_bytes);
        let expect = ShardExpect { dims, dtype, caption_sets, num_samples, file_bytes };
        if let Err(e) = Shard::open(&path, Some(&expect)) {
            problems.push(problem(None, format!("fails validation: {e}")));
        }
    }
    problems
}

/// Compare one file's bytes to its manifest entry.
pub fn compare_checksums(path: &Path, bytes: &[u8], entry: &ShardEntry) -> Vec<Problem> {
    let problem = |column: Option<&str>, message: String| Problem {
        shard: path.to_path_buf(),
        column: column.map(str::to_string),
        message,
    };
    let mut problems = Vec::new();
    if bytes.len() as u64 != entry.file_bytes {
        problems.push(problem(None, format!("file is {} bytes, the manifest says {}", bytes.len(), entry.file_bytes)));
    }
    let sums = match catch_unwind(AssertUnwindSafe(|| file_checksums(bytes))) {
        Ok(Ok(sums)) => sums,
        Ok(Err((msg, file_xxh3))) => {
            if hex64(file_xxh3) != entry.file_xxh3 {
                problems.push(problem(
                    None,
                    format!("whole-file checksum mismatch (expected {}, found {})", entry.file_xxh3, hex64(file_xxh3)),
                ));
            }
            problems.push(problem(None, format!("cannot locate columns: {msg}")));
            return problems;
        }
        Err(_) => {
            problems.push(problem(None, "cannot locate columns: malformed file".into()));
            return problems;
        }
    };
    for (column, actual) in &sums.columns {
        match entry.columns.get(column) {
            Some(expected) if *expected == hex64(*actual) => {}
            Some(expected) => problems.push(problem(
                Some(column),
                format!("checksum mismatch (expected {expected}, found {})", hex64(*actual)),
            )),
            None => problems.push(problem(Some(column), "column is not in the manifest".into())),
        }
    }
    for column in entry.columns.keys() {
        if !sums.columns.iter().any(|(c, _)| c == column) {
            problems.push(problem(Some(column), "column listed in the manifest is missing from the file".into()));
        }
    }
    if hex64(sums.file_xxh3) != entry.file_xxh3 {
        // With every column intact, the damage is in the bytes no column covers.
        let where_ = if problems.is_empty() {
            " outside the column data (Arrow schema, metadata, footer or padding)"
        } else {
            ""
        };
        problems.push(problem(
            None,
            format!(
                "whole-file checksum mismatch{where_} (expected {}, found {})",
                entry.file_xxh3,
                hex64(sums.file_xxh3)
            ),
        ));
    }
    problems
}

/// Checksums of a file whose layout may be damaged: on failure, the reason and the whole-file hash.
fn file_checksums(bytes: &[u8]) -> std::result::Result<ShardChecksums, (String, u64)> {
    let fail = |msg: String| (msg, xxhash_rust::xxh3::xxh3_64(bytes));
    let layout = read_layout(bytes).map_err(fail)?;
    let ranges = checksum::column_ranges(&layout).map_err(fail)?;
    Ok(checksum::compute(bytes, &ranges))
}
