//! End-to-end tests of the Rust reader on synthetic stores (see `testing`).

use std::path::{Path, PathBuf};

use half::f16;

use super::testing::{expected, write_store};
use super::*;
use crate::error::Error;

const DIMS: Dims = Dims { j: 3, s: 2, k: 2, d: 4 };

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("mcf-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn store(name: &str, dtype: EmbeddingDtype, sizes: &[usize]) -> (TempDir, Store) {
    let dir = TempDir::new(name);
    write_store(dir.path(), DIMS, dtype, sizes);
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

#[test]
fn reads_back_every_column() {
    let (_dir, st) = store("roundtrip", EmbeddingDtype::Float16, &[3, 0, 5, 1]);
    assert_eq!(st.len(), 9);
    assert_eq!(st.num_shards(), 4);
    assert_eq!(st.dims(), DIMS);
    for g in 0..st.len() {
        assert_eq!(st.uid(g), expected::uid(g));
        assert_eq!(st.image_bytes(g), expected::image(g));
        assert_eq!(st.image_size(g), expected::size(g));
        assert_eq!(st.caption(g), expected::caption(g));
        assert_eq!(st.caption_tokens(g), expected::tokens(g, 0));
        for s in 0..DIMS.s {
            assert_eq!(st.syn_caption(g, s), format!("syn {g}/{s}"));
            assert_eq!(st.syn_tokens(g, s), expected::tokens(g, s + 1));
        }
        for j in 0..DIMS.j {
            assert_eq!(st.aug(g, j), expected::aug(g, j));
            let row = st.image_emb_raw(g, j);
            assert_eq!(row.len(), DIMS.row_len() * 2);
            for (e, b) in row.chunks_exact(2).enumerate() {
                let x = f16::from_le_bytes([b[0], b[1]]);
                assert_eq!(x, f16::from_f32(expected::emb(g, j, e)), "sample {g} row {j} elem {e}");
            }
        }
        for t in 0..=DIMS.s {
            let row = st.text_emb_raw(g, t);
            let x = f16::from_le_bytes([row[2], row[3]]);
            assert_eq!(x, f16::from_f32(expected::emb(g, DIMS.j + t, 1)));
        }
        assert_eq!(st.image_embs_raw(g).len(), DIMS.j * DIMS.row_len() * 2);
        assert_eq!(st.sha256(g).copied(), expected::sha256(g));
        assert_eq!(st.flags(g), (g % 4) as u32);
        assert!(st.image_emb_scale(g, 0).is_empty());
    }
    assert!(st.verify().is_empty());
    assert!(verify_dir(st.dir()).unwrap().is_empty());
}

#[test]
fn reads_are_zero_copy_views_of_the_mapping() {
    let (_dir, st) = store("zerocopy", EmbeddingDtype::Float16, &[4]);
    let file = st.shard(0).bytes().as_ptr_range();
    let inside = |b: &[u8]| file.contains(&b.as_ptr());
    assert!(inside(st.image_emb_raw(3, 1)));
    assert!(inside(st.text_emb_raw(2, 0)));
    assert!(inside(st.image_bytes(3)));
    assert!(inside(st.aug_bytes(1)));
    assert!(inside(st.uid(2).as_bytes()));
    assert!(file.contains(&(st.caption_tokens(1).as_ptr() as *const u8)));
}

#[test]
fn locate_skips_empty_shards_and_checks_range() {
    let (_dir, st) = store("locate", EmbeddingDtype::Float16, &[0, 2, 0, 0, 3, 0]);
    let want = [(1, 0), (1, 1), (4, 0), (4, 1), (4, 2)];
    for (g, w) in want.iter().enumerate() {
        assert_eq!(st.locate(g).unwrap(), *w);
    }
    assert!(st.shard_path_of(2).ends_with("shard-00004.arrow"));
    match st.locate(5) {
        Err(Error::Index { index: 5, len: 5 }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn empty_store_opens() {
    let (_dir, st) = store("empty", EmbeddingDtype::Float16, &[]);
    assert_eq!(st.len(), 0);
    assert!(st.locate(0).is_err());
}

#[test]
fn other_dtypes_read_back() {
    let (_dir, st) = store("bf16", EmbeddingDtype::BFloat16, &[2]);
    let row = st.image_emb_raw(1, 2);
    let x = half::bf16::from_bits(u16::from_le_bytes([row[0], row[1]]));
    assert_eq!(x, half::bf16::from_f32(expected::emb(1, 2, 0)));

    let (_dir, st) = store("int8", EmbeddingDtype::Int8, &[2]);
    assert_eq!(st.image_emb_raw(1, 2).len(), DIMS.row_len());
    let scales = st.image_emb_scale(1, 2);
    assert_eq!(scales.len(), DIMS.k);
    let q = st.image_emb_raw(1, 2)[0] as i8;
    let x = expected::emb(1, 2, 0);
    assert!((q as f32 * scales[0] - x).abs() <= scales[0] / 2.0 + 1e-6);
    assert_eq!(st.text_emb_scale(1, DIMS.s).len(), DIMS.k);
}

fn open_err(dir: &Path) -> String {
    match Store::open(dir) {
        Ok(_) => panic!("opened a broken store"),
        Err(e @ (Error::Format { .. } | Error::Version { .. })) => e.to_string(),
        Err(e) => panic!("unexpected error kind: {e:?}"),
    }
}

#[test]
fn bad_stores_are_refused_with_the_file_named() {
    let dir = TempDir::new("bad");
    write_store(dir.path(), DIMS, EmbeddingDtype::Float16, &[2, 3]);
    let shard = dir.path().join("shard-00001.arrow");
    let good = std::fs::read(&shard).unwrap();

    std::fs::write(&shard, &good[..good.len() - 100]).unwrap();
    let msg = open_err(dir.path());
    assert!(msg.contains("shard-00001.arrow") && msg.contains("truncated"), "{msg}");

    let mut bad_magic = good.clone();
    bad_magic[0] = b'X';
    std::fs::write(&shard, &bad_magic).unwrap();
    let msg = open_err(dir.path());
    assert!(msg.contains("shard-00001.arrow") && msg.contains("magic"), "{msg}");

    std::fs::remove_file(&shard).unwrap();
    let msg = open_err(dir.path());
    assert!(msg.contains("shard-00001.arrow") && msg.contains("missing"), "{msg}");
    let problems = verify_dir(dir.path()).unwrap();
    assert_eq!(problems.len(), 1);
    assert!(problems[0].to_string().contains("missing"));

    // A flipped byte in a data buffer: opens (data is not validated), verify names the column.
    let (layout_col, range) = {
        std::fs::write(&shard, &good).unwrap();
        let s = Shard::open(&shard, None).unwrap();
        let (name, r) = s.column_ranges().iter().find(|(n, _)| n == "image_emb").unwrap().clone();
        (name, r)
    };
    let mut flipped = good.clone();
    flipped[range.start + 3] ^= 0x40;
    std::fs::write(&shard, &flipped).unwrap();
    let st = Store::open(dir.path()).unwrap();
    let problems = st.verify();
    assert!(problems.iter().any(|p| p.column.as_deref() == Some(layout_col.as_str())), "{problems:?}");
    assert!(problems.iter().any(|p| p.column.is_none() && p.message.contains("whole-file")));
}

#[test]
fn newer_schema_and_wrong_dims_are_refused() {
    let dir = TempDir::new("version");
    write_store(dir.path(), DIMS, EmbeddingDtype::Float16, &[2]);
    let manifest_path = dir.path().join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&manifest_path).unwrap();
    std::fs::write(&manifest_path, text.replace("\"schema_version\": 1", "\"schema_version\": 7")).unwrap();
    assert!(matches!(Store::open(dir.path()), Err(Error::Version { found: 7, .. })));
    std::fs::write(&manifest_path, text.replace("\"D\": 4", "\"D\": 5")).unwrap();
    let msg = open_err(dir.path());
    assert!(msg.contains("D=4") && msg.contains("D=5"), "{msg}");
    std::fs::write(&manifest_path, text.replace("\"embedding_dtype\": \"float16\"", "\"embedding_dtype\": \"bfloat16\"")).unwrap();
    let msg = open_err(dir.path());
    assert!(msg.contains("bfloat16"), "{msg}");
}

#[test]
fn random_corruption_never_panics_and_is_always_caught() {
    let dir = TempDir::new("fuzz");
    write_store(dir.path(), DIMS, EmbeddingDtype::Float16, &[4]);
    let shard = dir.path().join("shard-00000.arrow");
    let good = std::fs::read(&shard).unwrap();
    let mut rng = 0x9e3779b97f4a7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for _ in 0..300 {
        let mut bytes = good.clone();
        let at = next() as usize % bytes.len();
        bytes[at] ^= 1 << (next() % 8);
        std::fs::write(&shard, &bytes).unwrap();
        // Either open refuses it, or verify reports it.
        if let Ok(st) = Store::open(dir.path()) {
            assert!(!st.verify().is_empty(), "flip at {at} went unnoticed");
        }
        assert!(!verify_dir(dir.path()).unwrap().is_empty());
    }
}
