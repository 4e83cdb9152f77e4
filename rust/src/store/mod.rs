//! The DR store: a directory of memory-mapped Arrow IPC shards plus a manifest
//! (format: docs/FORMAT.md). Pure Rust; the Python bindings live in `python/store.rs`.
//!
//! `Store::open(dir)` reads only the manifest; `store.sample(i)` maps and validates
//! the shard holding sample `i` on first use and returns it with the row, whose
//! `image_bytes(row)`, `image_emb_raw(row, j)`, `aug(row, j)`, ... are slices of
//! the mapping, safe to call from any number of threads.

mod atomic;
mod caption_sets;
mod checksum;
mod dims;
mod dtype;
mod encode;
mod files;
mod json_keys;
mod layout;
mod location;
mod manifest;
mod parallel;
mod reader;
#[cfg(feature = "remote")]
mod remote;
mod sample;
mod schema;
mod shard;
mod shard_index;
mod shard_table;
mod shard_writer;
mod store_writer;
mod verify;

pub use atomic::{
    publish, remove_stale_temporaries, temp_path, temp_target, write_atomic, write_bytes_atomic, Durability,
};
pub use caption_sets::{
    caption_set_offsets, check_caption_sets, resolved_caption_sets, stored_caption_sets, CaptionSet, CAPTION_SETS_KEY,
    DEFAULT_CAPTION_SET,
};
pub use checksum::ShardChecksums;
pub use dims::Dims;
pub use dtype::EmbeddingDtype;
pub use encode::{
    bf16_bits_to_f32, dequantize_int8, encode, f32_to_bf16_bits, named_error, quantize_int8, EmbeddingValues, Encoded,
};
pub use location::{is_url, open_location, RemoteOptions};
pub use manifest::{hex64, Manifest, ShardEntry, DEFAULT_MAX_MANIFEST_BYTES, MANIFEST_FILE, MAX_MANIFEST_BYTES_ENV};
pub use reader::Store;
#[cfg(feature = "remote")]
pub use remote::CacheStats;
pub use sample::{shape_repr, EmbeddingInput, EncodedSample, SampleInput, TokenValues, TokensInput};
pub use schema::{
    col, column_names, sample_flags, shard_schema, MAGIC, MAX_TOKENS, SCHEMA_VERSION, SHARD_SCHEMA_VERSION,
};
pub use shard::{AccessPattern, Shard, ShardExpect};
pub use shard_index::INDEX_FILE;
pub use shard_writer::{shard_file_name, write_shard};
pub use store_writer::{StoreWriter, StoreWriterOptions, DEFAULT_TOKENIZER, DEFAULT_WRITE_SCHEMA};
pub use verify::{verify_dir, Problem};

/// Synthetic stores for the tests, written by the real writer.
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
