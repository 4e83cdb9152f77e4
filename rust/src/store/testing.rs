//! A synthetic store writer for Rust tests and benches (the real writer is the
//! Python `mobileclip_fastload.store` package). Every value is a deterministic
//! function of the global sample index, see [`expected`], so tests can check
//! what they read without keeping the data around.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, FixedSizeBinaryArray, FixedSizeListArray, Float16Array, Float32Array, Int8Array, LargeBinaryArray,
    ListArray, RecordBatch, StringArray, UInt16Array, UInt32Array,
};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, Schema};
use half::f16;

use super::manifest::{hex64, Manifest, ManifestDims, ShardEntry, MANIFEST_FILE};
use super::schema::{expected_fields, meta_keys, MAGIC, SCHEMA_VERSION};
use super::shard::Shard;
use super::{Dims, EmbeddingDtype};
use crate::aug::{AugParams, Op};

/// What sample `g` of a synthetic store holds.
pub mod expected {
    use super::*;

    pub fn uid(g: usize) -> String {
        format!("sample-{g:06}-é")
    }
    pub fn image(g: usize) -> Vec<u8> {
        (0..(g % 7) * 5).map(|b| (b * 31 + g) as u8).collect()
    }
    pub fn size(g: usize) -> (u32, u32) {
        (16 + g as u32, 8 + (g % 5) as u32)
    }
    pub fn caption(g: usize) -> String {
        if g % 4 == 0 { String::new() } else { format!("caption {g} ✓") }
    }
    pub fn tokens(g: usize, which: usize) -> Vec<u16> {
        (0..(g + which) % 6).map(|t| (49406 + t + which) as u16).collect()
    }
    pub fn aug(g: usize, j: usize) -> AugParams {
        if (g + j) % 5 == 0 {
            let (w, h) = size(g);
            return AugParams::null(w as i32, h as i32);
        }
        AugParams {
            top: j as i32 - 2,
            left: g as i32,
            height: 1 + j as i32,
            width: 2 + g as i32,
            ops: [(Op::Rotate, -(j as f64) * 0.5), (Op::Solarize, 178.5)],
            n_ops: (j % 3) as u8,
            is_null: false,
            hflip: false,
        }
    }
    /// Element `e` of embedding row `r` (0..J for image rows, J.. for text rows).
    pub fn emb(g: usize, r: usize, e: usize) -> f32 {
        (((g * 131 + r * 17 + e) % 200) as f32 - 100.0) / 64.0
    }
    pub fn sha256(g: usize) -> Option<[u8; 32]> {
        (g % 3 != 0).then_some([g as u8; 32])
    }
}

fn item(dt: DataType) -> Arc<Field> {
    Arc::new(Field::new("item", dt, true))
}

fn token_lists(lists: impl Iterator<Item = Vec<u16>>) -> ListArray {
    let lists: Vec<Vec<u16>> = lists.collect();
    let offsets = OffsetBuffer::from_lengths(lists.iter().map(|l| l.len()));
    let values = UInt16Array::from(lists.concat());
    ListArray::new(item(DataType::UInt16), offsets, Arc::new(values), None)
}

fn fixed(values: ArrayRef, size: usize) -> ArrayRef {
    let dt = values.data_type().clone();
    Arc::new(FixedSizeListArray::new(item(dt), size as i32, values, None))
}

/// Embedding elements in the store dtype, plus int8 scales per (row, teacher).
fn embeddings(dims: Dims, dtype: EmbeddingDtype, rows: &[(usize, usize)]) -> (ArrayRef, ArrayRef) {
    let kd = dims.row_len();
    let vals: Vec<f32> = rows.iter().flat_map(|&(g, r)| (0..kd).map(move |e| expected::emb(g, r, e))).collect();
    let scales: Vec<f32> = vals.chunks(dims.d).map(|c| c.iter().fold(0f32, |m, x| m.max(x.abs())) / 127.0).collect();
    let array: ArrayRef = match dtype {
        EmbeddingDtype::Float16 => Arc::new(Float16Array::from(vals.iter().map(|&x| f16::from_f32(x)).collect::<Vec<_>>())),
        EmbeddingDtype::BFloat16 => Arc::new(UInt16Array::from(vals.iter().map(|&x| half::bf16::from_f32(x).to_bits()).collect::<Vec<_>>())),
        EmbeddingDtype::Int8 => Arc::new(Int8Array::from(
            vals.chunks(dims.d)
                .zip(&scales)
                .flat_map(|(c, &s)| c.iter().map(move |&x| if s == 0.0 { 0 } else { (x / s).round() as i8 }))
                .collect::<Vec<_>>(),
        )),
    };
    (array, Arc::new(Float32Array::from(scales)))
}

/// Write shard file `path` holding global samples `first..first+n`.
pub fn write_shard(path: &Path, dims: Dims, dtype: EmbeddingDtype, first: usize, n: usize) {
    let g: Vec<usize> = (first..first + n).collect();
    let Dims { j, s, .. } = dims;
    let sizes: Vec<(u32, u32)> = g.iter().map(|&g| expected::size(g)).collect();
    let u32s = |f: &dyn Fn(usize) -> u32| -> ArrayRef { Arc::new(UInt32Array::from((0..n).map(f).collect::<Vec<_>>())) };
    let images: Vec<Vec<u8>> = g.iter().map(|&g| expected::image(g)).collect();
    let aug: Vec<u8> = g.iter().flat_map(|&g| (0..j).flat_map(move |j| expected::aug(g, j).encode())).collect();
    let image_rows: Vec<(usize, usize)> = g.iter().flat_map(|&g| (0..j).map(move |r| (g, r))).collect();
    let text_rows: Vec<(usize, usize)> = g.iter().flat_map(|&g| (0..=s).map(move |t| (g, j + t))).collect();
    let (image_emb, image_scale) = embeddings(dims, dtype, &image_rows);
    let (text_emb, text_scale) = embeddings(dims, dtype, &text_rows);
    let sha: Vec<Option<[u8; 32]>> = g.iter().map(|&g| expected::sha256(g)).collect();
    let sha_bytes: Vec<u8> = sha.iter().flat_map(|h| h.unwrap_or([0; 32])).collect();
    let sha_nulls = NullBuffer::from(sha.iter().map(|h| h.is_some()).collect::<Vec<_>>());
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(g.iter().map(|&g| expected::uid(g)).collect::<Vec<_>>())),
        Arc::new(LargeBinaryArray::from_vec(images.iter().map(|b| b.as_slice()).collect())),
        u32s(&|i| sizes[i].0),
        u32s(&|i| sizes[i].1),
        u32s(&|i| sizes[i].0 * 2),
        u32s(&|i| sizes[i].1 * 2),
        Arc::new(StringArray::from(g.iter().map(|&g| expected::caption(g)).collect::<Vec<_>>())),
        Arc::new(token_lists(g.iter().map(|&g| expected::tokens(g, 0)))),
        fixed(
            Arc::new(StringArray::from(g.iter().flat_map(|&g| (0..s).map(move |k| format!("syn {g}/{k}"))).collect::<Vec<_>>())),
            s,
        ),
        fixed(Arc::new(token_lists(g.iter().flat_map(|&g| (1..=s).map(move |k| expected::tokens(g, k))))), s),
        Arc::new(FixedSizeBinaryArray::new((j * 40) as i32, Buffer::from_vec(aug), None)),
        fixed(image_emb, j * dims.row_len()),
        fixed(text_emb, (1 + s) * dims.row_len()),
    ];
    if dtype.has_scales() {
        columns.push(fixed(image_scale, j * dims.k));
        columns.push(fixed(text_scale, (1 + s) * dims.k));
    }
    columns.push(Arc::new(FixedSizeBinaryArray::new(32, Buffer::from_vec(sha_bytes), Some(sha_nulls))));
    columns.push(u32s(&|i| (g[i] % 4) as u32));
    let metadata = [
        (meta_keys::MAGIC, MAGIC.to_string()),
        (meta_keys::SCHEMA_VERSION, SCHEMA_VERSION.to_string()),
        (meta_keys::J, dims.j.to_string()),
        (meta_keys::S, dims.s.to_string()),
        (meta_keys::K, dims.k.to_string()),
        (meta_keys::D, dims.d.to_string()),
        (meta_keys::EMBEDDING_DTYPE, dtype.name().to_string()),
    ];
    let schema = Schema::new(expected_fields(dims, dtype))
        .with_metadata(metadata.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<std::collections::HashMap<_, _>>());
    let batch = RecordBatch::try_new(Arc::new(schema.clone()), columns).expect("test batch");
    let mut out = Vec::new();
    let mut writer = arrow_ipc::writer::FileWriter::try_new(&mut out, &schema).expect("writer");
    writer.write(&batch).expect("write");
    writer.finish().expect("finish");
    drop(writer);
    std::fs::write(path, out).expect("write shard");
}

/// Write a store with shards of the given sizes into `dir` (which must exist).
pub fn write_store(dir: &Path, dims: Dims, dtype: EmbeddingDtype, shard_sizes: &[usize]) {
    let mut first = 0;
    let mut shards = Vec::new();
    for (n, &size) in shard_sizes.iter().enumerate() {
        let file = format!("shard-{n:05}.arrow");
        write_shard(&dir.join(&file), dims, dtype, first, size);
        let sums = Shard::open(&dir.join(&file), None).expect("own shard opens").checksums();
        shards.push(ShardEntry {
            file,
            num_samples: size,
            file_bytes: sums.file_bytes,
            file_xxh3: hex64(sums.file_xxh3),
            columns: sums.columns.iter().map(|(c, h)| (c.clone(), hex64(*h))).collect(),
        });
        first += size;
    }
    let manifest = Manifest {
        magic: MAGIC.into(),
        schema_version: SCHEMA_VERSION,
        dims: ManifestDims { j: dims.j, s: dims.s, k: dims.k, d: dims.d },
        embedding_dtype: dtype.name().into(),
        tokenizer: Some("openai-clip-bpe".into()),
        num_samples: first,
        shards,
        metadata: serde_json::json!({"writer": "store::testing"}),
    };
    std::fs::write(dir.join(MANIFEST_FILE), serde_json::to_string_pretty(&manifest).unwrap()).expect("manifest");
}
