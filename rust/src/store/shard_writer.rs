//! Writing one shard file: encoded samples -> one Arrow record batch in the
//! schema of `schema::shard_schema`, written as an Arrow IPC file, validated by
//! the reader and checksummed (the same code `verify` runs), then published
//! atomically. Returns the shard's manifest entry.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, FixedSizeBinaryArray, FixedSizeListArray, Float16Array, Float32Array, Int8Array, LargeBinaryArray,
    ListArray, RecordBatch, StringArray, UInt16Array, UInt32Array,
};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, Field};
use half::f16;

use super::atomic::write_atomic;
use super::caption_sets::CaptionSet;
use super::encode::Encoded;
use super::manifest::{hex64, ShardEntry};
use super::sample::EncodedSample;
use super::schema::shard_schema;
use super::shard::{Shard, ShardExpect};
use super::{Dims, EmbeddingDtype};
use crate::aug::AUG_RECORD_SIZE;
use crate::error::{Error, Result};

/// The name of shard `n` in a store directory.
pub fn shard_file_name(n: usize) -> String {
    format!("shard-{n:05}.arrow")
}

/// List children are named "item" and nullable, as `schema::expected_fields` has them.
fn item(dt: DataType) -> Arc<Field> {
    Arc::new(Field::new("item", dt, true))
}

fn token_lists<'a>(lists: impl Iterator<Item = &'a Vec<u16>>) -> ArrayRef {
    let lists: Vec<&Vec<u16>> = lists.collect();
    let offsets = OffsetBuffer::from_lengths(lists.iter().map(|l| l.len()));
    let values: Vec<u16> = lists.iter().flat_map(|l| l.iter().copied()).collect();
    Arc::new(ListArray::new(item(DataType::UInt16), offsets, Arc::new(UInt16Array::from(values)), None))
}

fn fixed(values: ArrayRef, size: usize) -> ArrayRef {
    let dt = values.data_type().clone();
    Arc::new(FixedSizeListArray::new(item(dt), size as i32, values, None))
}

fn u32s(values: impl Iterator<Item = u32>) -> ArrayRef {
    Arc::new(UInt32Array::from(values.collect::<Vec<_>>()))
}

/// One embedding column (and its scales column for int8), all samples concatenated.
fn embedding_columns(parts: &[&Encoded], dtype: EmbeddingDtype) -> (ArrayRef, ArrayRef) {
    match dtype {
        EmbeddingDtype::Float16 | EmbeddingDtype::BFloat16 => {
            let bits: Vec<u16> = parts
                .iter()
                .flat_map(|e| match e {
                    Encoded::Bits16(v) => v.as_slice(),
                    Encoded::Int8 { .. } => unreachable!("encoded for this dtype"),
                })
                .copied()
                .collect();
            let values: ArrayRef = if dtype == EmbeddingDtype::Float16 {
                let n = bits.len();
                Arc::new(Float16Array::new(ScalarBuffer::<f16>::new(Buffer::from_vec(bits), 0, n), None))
            } else {
                Arc::new(UInt16Array::from(bits))
            };
            (values, Arc::new(Float32Array::from(Vec::<f32>::new())))
        }
        EmbeddingDtype::Int8 => {
            let (mut values, mut scales) = (Vec::new(), Vec::new());
            for e in parts {
                match e {
                    Encoded::Int8 { values: v, scales: s } => {
                        values.extend_from_slice(v);
                        scales.extend_from_slice(s);
                    }
                    Encoded::Bits16(_) => unreachable!("encoded for this dtype"),
                }
            }
            (Arc::new(Int8Array::from(values)), Arc::new(Float32Array::from(scales)))
        }
    }
}

/// The record batch holding `samples` (already checked against `dims` and encoded to `dtype`);
/// `caption_sets` as the manifest stores them (`None` for the plain case).
pub fn record_batch(
    samples: &[EncodedSample],
    dims: Dims,
    dtype: EmbeddingDtype,
    caption_sets: Option<&[CaptionSet]>,
) -> Result<RecordBatch> {
    let Dims { j, s, k, .. } = dims;
    let kd = dims.row_len();
    let (image_emb, image_scale) = embedding_columns(&samples.iter().map(|x| &x.image_emb).collect::<Vec<_>>(), dtype);
    let (text_emb, text_scale) = embedding_columns(&samples.iter().map(|x| &x.text_emb).collect::<Vec<_>>(), dtype);
    let aug: Vec<u8> = samples.iter().flat_map(|x| x.aug.iter().copied()).collect();
    let sha_bytes: Vec<u8> = samples.iter().flat_map(|x| x.sha256.unwrap_or([0; 32])).collect();
    let sha_valid = NullBuffer::from(samples.iter().map(|x| x.sha256.is_some()).collect::<Vec<_>>());
    let syn_captions: Vec<&str> = samples.iter().flat_map(|x| x.syn_captions.iter().map(String::as_str)).collect();
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(samples.iter().map(|x| x.uid.as_str()).collect::<Vec<_>>())),
        Arc::new(LargeBinaryArray::from_vec(samples.iter().map(|x| x.image.as_slice()).collect())),
        u32s(samples.iter().map(|x| x.size[0])),
        u32s(samples.iter().map(|x| x.size[1])),
        u32s(samples.iter().map(|x| x.size[2])),
        u32s(samples.iter().map(|x| x.size[3])),
        Arc::new(StringArray::from(samples.iter().map(|x| x.caption.as_str()).collect::<Vec<_>>())),
        token_lists(samples.iter().map(|x| &x.caption_tokens)),
        fixed(Arc::new(StringArray::from(syn_captions)), s),
        fixed(token_lists(samples.iter().flat_map(|x| x.syn_tokens.iter())), s),
        Arc::new(
            FixedSizeBinaryArray::try_new((j * AUG_RECORD_SIZE) as i32, Buffer::from_vec(aug), None)
                .map_err(arrow_error)?,
        ),
        fixed(image_emb, j * kd),
        fixed(text_emb, dims.text_rows() * kd),
    ];
    if dtype.has_scales() {
        columns.push(fixed(image_scale, j * k));
        columns.push(fixed(text_scale, dims.text_rows() * k));
    }
    let sha_valid = (sha_valid.null_count() > 0).then_some(sha_valid);
    columns.push(Arc::new(
        FixedSizeBinaryArray::try_new(32, Buffer::from_vec(sha_bytes), sha_valid).map_err(arrow_error)?,
    ));
    columns.push(u32s(samples.iter().map(|x| x.flags)));
    RecordBatch::try_new(Arc::new(shard_schema(dims, dtype, caption_sets)), columns).map_err(arrow_error)
}

/// Arrow refuses data it cannot hold (e.g. over 2 GiB of captions in one shard).
fn arrow_error(e: ArrowError) -> Error {
    Error::InvalidArgument(format!("cannot build the shard: {e}"))
}

fn write_ipc(path: &Path, batch: &RecordBatch) -> Result<()> {
    let io = |e: std::io::Error| Error::io(path, e);
    let file = File::create(path).map_err(io)?;
    let mut writer = arrow_ipc::writer::FileWriter::try_new(BufWriter::with_capacity(1 << 20, file), &batch.schema())
        .map_err(|e| ipc_error(path, e))?;
    writer.write(batch).map_err(|e| ipc_error(path, e))?;
    writer.finish().map_err(|e| ipc_error(path, e))?;
    writer.into_inner().map_err(|e| ipc_error(path, e))?.flush().map_err(io)
}

fn ipc_error(path: &Path, e: ArrowError) -> Error {
    match e {
        ArrowError::IoError(msg, source) => Error::io(path, std::io::Error::new(source.kind(), msg)),
        other => arrow_error(other),
    }
}

/// Write `samples` as shard file `path`, atomically: the file appears only complete
/// and accepted by the reader. Returns its manifest entry (checksums as `verify` computes them).
/// `caption_sets`: what the caller gives (None or the one set `syn_text`: the plain case; see `stored_caption_sets`).
pub fn write_shard(
    path: &Path,
    samples: &[EncodedSample],
    dims: Dims,
    dtype: EmbeddingDtype,
    caption_sets: Option<Vec<CaptionSet>>,
) -> Result<ShardEntry> {
    dims.check().map_err(Error::InvalidArgument)?;
    let caption_sets =
        super::caption_sets::stored_caption_sets(caption_sets, dims.s).map_err(Error::InvalidArgument)?;
    let file = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::InvalidArgument(format!("{}: a shard path must end in a file name", path.display())))?
        .to_string();
    let batch = record_batch(samples, dims, dtype, caption_sets.as_deref())?;
    write_atomic(path, |tmp| {
        write_ipc(tmp, &batch)?;
        let file_bytes = std::fs::metadata(tmp).map_err(|e| Error::io(tmp, e))?.len();
        let expect =
            ShardExpect { dims, dtype, caption_sets: caption_sets.as_deref(), num_samples: samples.len(), file_bytes };
        // The reader validates what was written before it is published.
        let sums = Shard::open(tmp, Some(&expect))?.checksums();
        Ok(ShardEntry {
            file,
            num_samples: samples.len(),
            file_bytes: sums.file_bytes,
            file_xxh3: hex64(sums.file_xxh3),
            columns: sums.columns.iter().map(|(c, h)| (c.clone(), hex64(*h))).collect(),
        })
    })
}
