//! The DR store: a directory of memory-mapped Arrow IPC shards plus a manifest
//! (format: docs/FORMAT.md). Pure Rust; the Python bindings live in `python/store.rs`.
//!
//! `Store::open(dir)` maps and validates every shard; after that, `image_bytes(i)`,
//! `image_emb_raw(i, j)`, `aug(i, j)`, ... are slices of the mapping, safe to call
//! from any number of threads.

mod checksum;
mod dims;
mod dtype;
mod files;
mod layout;
mod manifest;
mod parallel;
mod reader;
mod schema;
mod shard;
mod verify;

pub use checksum::ShardChecksums;
pub use dims::Dims;
pub use dtype::EmbeddingDtype;
pub use manifest::{hex64, Manifest, ManifestDims, ShardEntry, MANIFEST_FILE};
pub use reader::Store;
pub use schema::{col, column_names, sample_flags, MAGIC, MAX_TOKENS, SCHEMA_VERSION};
pub use shard::{AccessPattern, Shard, ShardExpect};
pub use verify::{verify_dir, Problem};

#[doc(hidden)]
pub mod testing;
#[cfg(test)]
mod tests;
