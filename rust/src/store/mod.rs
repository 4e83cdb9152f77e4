//! The DR store: a directory of memory-mapped Arrow IPC shards plus a manifest
//! (format: docs/FORMAT.md). Pure Rust; the Python bindings live in `python/store.rs`.
//!
//! `Store::open(dir)` reads only the manifest; `store.sample(i)` maps and validates
//! the shard holding sample `i` on first use and returns it with the row, whose
//! `image_bytes(row)`, `image_emb_raw(row, j)`, `aug(row, j)`, ... are slices of
//! the mapping, safe to call from any number of threads.

mod checksum;
mod dims;
mod dtype;
mod files;
mod layout;
mod location;
mod manifest;
mod parallel;
mod reader;
#[cfg(feature = "remote")]
mod remote;
mod schema;
mod shard;
mod verify;

pub use checksum::ShardChecksums;
pub use dims::Dims;
pub use dtype::EmbeddingDtype;
pub use location::{is_url, open_location, RemoteOptions};
pub use manifest::{hex64, Manifest, ManifestDims, ShardEntry, MANIFEST_FILE};
pub use reader::Store;
#[cfg(feature = "remote")]
pub use remote::CacheStats;
pub use schema::{col, column_names, sample_flags, MAGIC, MAX_TOKENS, SCHEMA_VERSION};
pub use shard::{AccessPattern, Shard, ShardExpect};
pub use verify::{verify_dir, Problem};

#[doc(hidden)]
pub mod testing;
#[cfg(test)]
mod tests;
