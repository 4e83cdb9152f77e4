//! Synthetic stores for the Rust tests, written by the real writer. Every value
//! is a deterministic function of the global sample index, see [`expected`], so
//! tests can check what they read without keeping the data around.

use std::path::Path;

use super::encode::EmbeddingValues;
use super::manifest::Manifest;
use super::sample::{EmbeddingInput, SampleInput, TokenValues, TokensInput};
use super::shard_writer::{shard_file_name, write_shard};
use super::store_writer::DEFAULT_TOKENIZER;
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
        if g % 4 == 0 {
            String::new()
        } else {
            format!("caption {g} ✓")
        }
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

/// Everything sample `g` holds, owned (a `SampleInput` borrows from it).
struct Owned {
    uid: String,
    image: Vec<u8>,
    caption: String,
    tokens: Vec<Vec<u16>>,
    /// The 1-D shape of each token list.
    token_shapes: Vec<[usize; 1]>,
    syn_captions: Vec<String>,
    aug: Vec<u8>,
    image_emb: Vec<f32>,
    text_emb: Vec<f32>,
    sha256: Option<[u8; 32]>,
}

fn owned(g: usize, dims: Dims) -> Owned {
    let Dims { j, s, .. } = dims;
    let kd = dims.row_len();
    let rows =
        |from: usize, n: usize| (from..from + n).flat_map(|r| (0..kd).map(move |e| expected::emb(g, r, e))).collect();
    let tokens: Vec<Vec<u16>> = (0..=s).map(|k| expected::tokens(g, k)).collect();
    Owned {
        uid: expected::uid(g),
        image: expected::image(g),
        caption: expected::caption(g),
        token_shapes: tokens.iter().map(|t| [t.len()]).collect(),
        tokens,
        syn_captions: (0..s).map(|k| format!("syn {g}/{k}")).collect(),
        aug: (0..j).flat_map(|j| expected::aug(g, j).encode()).collect(),
        image_emb: rows(0, j),
        text_emb: rows(j, 1 + s),
        sha256: expected::sha256(g),
    }
}

/// Write shard file `path` holding global samples `first..first+n`; returns its manifest entry.
pub fn write_synthetic_shard(
    path: &Path,
    dims: Dims,
    dtype: EmbeddingDtype,
    first: usize,
    n: usize,
) -> super::ShardEntry {
    write_synthetic_shard_with_sets(path, dims, dtype, first, n, None)
}

/// `write_synthetic_shard` with these caption sets in its schema metadata.
pub fn write_synthetic_shard_with_sets(
    path: &Path,
    dims: Dims,
    dtype: EmbeddingDtype,
    first: usize,
    n: usize,
    caption_sets: Option<Vec<super::CaptionSet>>,
) -> super::ShardEntry {
    let data: Vec<(usize, Owned)> = (first..first + n).map(|g| (g, owned(g, dims))).collect();
    let image_shape = [dims.j, dims.row_len()];
    let text_shape = [dims.text_rows(), dims.row_len()];
    let samples: Vec<_> = data
        .iter()
        .map(|(g, o)| {
            let tokens = |k: usize| TokensInput { values: TokenValues::U16(&o.tokens[k]), shape: &o.token_shapes[k] };
            let (w, h) = expected::size(*g);
            SampleInput {
                uid: &o.uid,
                image: &o.image,
                size: [w as i128, h as i128, 2 * w as i128, 2 * h as i128],
                caption: &o.caption,
                caption_tokens: tokens(0),
                syn_captions: o.syn_captions.iter().map(String::as_str).collect(),
                syn_tokens: (1..o.tokens.len()).map(tokens).collect(),
                aug: &o.aug,
                image_emb: EmbeddingInput {
                    values: EmbeddingValues::F32(&o.image_emb),
                    shape: &image_shape,
                    scales: None,
                },
                text_emb: EmbeddingInput {
                    values: EmbeddingValues::F32(&o.text_emb),
                    shape: &text_shape,
                    scales: None,
                },
                sha256: o.sha256.as_ref().map(|h| h.as_slice()),
                flags: (g % 4) as i128,
            }
            .encode(dims, dtype)
            .expect("synthetic samples are valid")
        })
        .collect();
    write_shard(path, &samples, dims, dtype, caption_sets).expect("write synthetic shard")
}

/// Write a store with shards of the given sizes into `dir` (which must exist).
pub fn write_store(dir: &Path, dims: Dims, dtype: EmbeddingDtype, shard_sizes: &[usize]) {
    let mut first = 0;
    let mut shards = Vec::new();
    for (n, &size) in shard_sizes.iter().enumerate() {
        shards.push(write_synthetic_shard(&dir.join(shard_file_name(n)), dims, dtype, first, size));
        first += size;
    }
    let metadata = serde_json::json!({"writer": "store::testing"});
    Manifest::new(dims, dtype, DEFAULT_TOKENIZER, shards, metadata).unwrap().write(dir).expect("manifest");
}
