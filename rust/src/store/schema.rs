//! The Arrow schema of a shard (see docs/FORMAT.md), derived from the dims and dtype.

use std::sync::Arc;

use std::collections::HashMap;

use arrow_schema::{DataType, Field, Schema};

use super::caption_sets::{caption_sets_json, CaptionSet};
use super::{Dims, EmbeddingDtype};
use crate::aug::AUG_RECORD_SIZE;

/// Identifies a store (manifest `magic` and shard schema metadata `magic`).
pub const MAGIC: &str = "mobileclip-fastload/dr-store";
/// The newest schema version this reader understands (and the one its writer writes).
/// Version 2 (docs/FORMAT.md) changed the manifest (a header plus `shards.idx`); a reader reads 1 and 2.
pub const SCHEMA_VERSION: u32 = 2;
/// The version written into shard schema metadata: the shard layout is the same in 1 and 2,
/// so shards stay readable by a version-1 reader (which still refuses the version-2 manifest).
pub const SHARD_SCHEMA_VERSION: u32 = 1;
/// Longest token sequence (CLIP's context length, SOT and EOT included).
pub const MAX_TOKENS: usize = 77;

/// Shard schema metadata keys (all values are UTF-8 strings).
pub mod meta_keys {
    pub const MAGIC: &str = "magic";
    pub const SCHEMA_VERSION: &str = "schema_version";
    pub const J: &str = "J";
    pub const S: &str = "S";
    pub const K: &str = "K";
    pub const D: &str = "D";
    pub const EMBEDDING_DTYPE: &str = "embedding_dtype";
    /// Only in a store that lists its caption sets (not the plain case): the manifest's list as compact JSON.
    pub const CAPTION_SETS: &str = super::super::caption_sets::CAPTION_SETS_KEY;
}

/// Column names in file order. The two `*_scale` columns exist only for int8.
pub mod col {
    pub const UID: &str = "uid";
    pub const IMAGE: &str = "image";
    pub const WIDTH: &str = "width";
    pub const HEIGHT: &str = "height";
    pub const ORIG_WIDTH: &str = "orig_width";
    pub const ORIG_HEIGHT: &str = "orig_height";
    pub const CAPTION: &str = "caption";
    pub const CAPTION_TOKENS: &str = "caption_tokens";
    pub const SYN_CAPTIONS: &str = "syn_captions";
    pub const SYN_TOKENS: &str = "syn_tokens";
    pub const AUG: &str = "aug";
    pub const IMAGE_EMB: &str = "image_emb";
    pub const TEXT_EMB: &str = "text_emb";
    pub const IMAGE_EMB_SCALE: &str = "image_emb_scale";
    pub const TEXT_EMB_SCALE: &str = "text_emb_scale";
    pub const SHA256: &str = "sha256";
    pub const FLAGS: &str = "flags";
}

/// Sample flag bits (`flags` column).
pub mod sample_flags {
    /// The augmentation boxes were rescaled from the original to the stored image size.
    pub const BOXES_RESCALED: u32 = 1;
    /// `sha256` was checked against the stored image bytes.
    pub const SHA256_VERIFIED: u32 = 2;
    /// The image is stored as a lossless PNG of Pillow's RGB pixels (the loader
    /// could not decode the original exactly).
    pub const IMAGE_TRANSCODED: u32 = 4;
}

/// List children are named "item" and nullable, as pyarrow writes them; the reader
/// then rejects any actual null inside them.
fn item(dt: DataType) -> Arc<Field> {
    Arc::new(Field::new("item", dt, true))
}

fn fixed_list(dt: DataType, n: usize) -> DataType {
    DataType::FixedSizeList(item(dt), n as i32)
}

fn tokens() -> DataType {
    DataType::List(item(DataType::UInt16))
}

/// Arrow type of one embedding element.
pub fn element_type(dtype: EmbeddingDtype) -> DataType {
    match dtype {
        EmbeddingDtype::Float16 => DataType::Float16,
        EmbeddingDtype::BFloat16 => DataType::UInt16,
        EmbeddingDtype::Int8 => DataType::Int8,
    }
}

/// The fields a shard with these dims and dtype must have, in order.
pub fn expected_fields(dims: Dims, dtype: EmbeddingDtype) -> Vec<Field> {
    let Dims { j, s, k, d } = dims;
    let e = element_type(dtype);
    let mut fields = vec![
        Field::new(col::UID, DataType::Utf8, false),
        Field::new(col::IMAGE, DataType::LargeBinary, false),
        Field::new(col::WIDTH, DataType::UInt32, false),
        Field::new(col::HEIGHT, DataType::UInt32, false),
        Field::new(col::ORIG_WIDTH, DataType::UInt32, false),
        Field::new(col::ORIG_HEIGHT, DataType::UInt32, false),
        Field::new(col::CAPTION, DataType::Utf8, false),
        Field::new(col::CAPTION_TOKENS, tokens(), false),
        Field::new(col::SYN_CAPTIONS, fixed_list(DataType::Utf8, s), false),
        Field::new(col::SYN_TOKENS, fixed_list(tokens(), s), false),
        Field::new(col::AUG, DataType::FixedSizeBinary((j * AUG_RECORD_SIZE) as i32), false),
        Field::new(col::IMAGE_EMB, fixed_list(e.clone(), j * k * d), false),
        Field::new(col::TEXT_EMB, fixed_list(e, (1 + s) * k * d), false),
    ];
    if dtype.has_scales() {
        fields.push(Field::new(col::IMAGE_EMB_SCALE, fixed_list(DataType::Float32, j * k), false));
        fields.push(Field::new(col::TEXT_EMB_SCALE, fixed_list(DataType::Float32, (1 + s) * k), false));
    }
    fields.push(Field::new(col::SHA256, DataType::FixedSizeBinary(32), true));
    fields.push(Field::new(col::FLAGS, DataType::UInt32, false));
    fields
}

/// The schema every shard with these dims, dtype and caption sets (`None`: the plain case, as
/// the manifest stores it) has, metadata included.
pub fn shard_schema(dims: Dims, dtype: EmbeddingDtype, caption_sets: Option<&[CaptionSet]>) -> Schema {
    let mut metadata: HashMap<String, String> = [
        (meta_keys::MAGIC, MAGIC.to_string()),
        (meta_keys::SCHEMA_VERSION, SHARD_SCHEMA_VERSION.to_string()),
        (meta_keys::J, dims.j.to_string()),
        (meta_keys::S, dims.s.to_string()),
        (meta_keys::K, dims.k.to_string()),
        (meta_keys::D, dims.d.to_string()),
        (meta_keys::EMBEDDING_DTYPE, dtype.name().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(sets) = caption_sets {
        metadata.insert(meta_keys::CAPTION_SETS.to_string(), caption_sets_json(sets));
    }
    Schema::new(expected_fields(dims, dtype)).with_metadata(metadata)
}

/// Column names for these dims and dtype, in order.
pub fn column_names(dtype: EmbeddingDtype) -> Vec<&'static str> {
    let mut names = vec![
        col::UID,
        col::IMAGE,
        col::WIDTH,
        col::HEIGHT,
        col::ORIG_WIDTH,
        col::ORIG_HEIGHT,
        col::CAPTION,
        col::CAPTION_TOKENS,
        col::SYN_CAPTIONS,
        col::SYN_TOKENS,
        col::AUG,
        col::IMAGE_EMB,
        col::TEXT_EMB,
    ];
    if dtype.has_scales() {
        names.extend([col::IMAGE_EMB_SCALE, col::TEXT_EMB_SCALE]);
    }
    names.extend([col::SHA256, col::FLAGS]);
    names
}

/// Compare an actual shard schema to the expected one; `Err` says which field differs.
pub fn check_fields(actual: &Schema, dims: Dims, dtype: EmbeddingDtype) -> Result<(), String> {
    let expected = expected_fields(dims, dtype);
    let got: Vec<&str> = actual.fields().iter().map(|f| f.name().as_str()).collect();
    let want: Vec<&str> = expected.iter().map(|f| f.name().as_str()).collect();
    if got != want {
        return Err(format!("columns are {got:?}, expected {want:?}"));
    }
    for (a, e) in actual.fields().iter().zip(&expected) {
        if !a.data_type().equals_datatype(e.data_type()) {
            return Err(format!("column '{}' has type {}, expected {}", e.name(), a.data_type(), e.data_type()));
        }
        if a.is_nullable() && !e.is_nullable() {
            return Err(format!("column '{}' is nullable; it must not be", e.name()));
        }
    }
    Ok(())
}

/// How many IPC body buffers a field of this type occupies, children included
/// (the IPC format always lists a validity slot, even when it is empty).
pub fn ipc_buffer_count(dt: &DataType) -> Option<usize> {
    Some(match dt {
        DataType::Utf8 | DataType::Binary | DataType::LargeUtf8 | DataType::LargeBinary => 3,
        DataType::FixedSizeBinary(_) => 2,
        DataType::List(f) | DataType::LargeList(f) => 2 + ipc_buffer_count(f.data_type())?,
        DataType::FixedSizeList(f, _) => 1 + ipc_buffer_count(f.data_type())?,
        dt if dt.is_primitive() => 2,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_counts_follow_the_ipc_layout() {
        let dims = Dims { j: 2, s: 3, k: 2, d: 4 };
        let counts: Vec<usize> = expected_fields(dims, EmbeddingDtype::Int8)
            .iter()
            .map(|f| ipc_buffer_count(f.data_type()).unwrap())
            .collect();
        // uid image w h ow oh caption tokens syn_captions syn_tokens aug img txt iscale tscale sha flags
        assert_eq!(counts, vec![3, 3, 2, 2, 2, 2, 3, 4, 4, 5, 2, 3, 3, 3, 3, 2, 2]);
    }

    #[test]
    fn column_names_match_fields() {
        for dtype in [EmbeddingDtype::Float16, EmbeddingDtype::BFloat16, EmbeddingDtype::Int8] {
            let dims = Dims { j: 1, s: 1, k: 1, d: 1 };
            let names: Vec<String> = expected_fields(dims, dtype).iter().map(|f| f.name().clone()).collect();
            assert_eq!(names, column_names(dtype));
        }
    }
}
