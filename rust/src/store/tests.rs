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
    let (_dir, st) = store("roundtrip", EmbeddingDtype::Float16, &[3, 5, 1]);
    assert_eq!(st.len(), 9);
    assert_eq!(st.num_shards(), 3);
    assert_eq!(st.dims(), DIMS);
    for g in 0..st.len() {
        let (sh, r) = st.sample(g).unwrap();
        assert_eq!(sh.uid(r), expected::uid(g));
        assert_eq!(sh.image_bytes(r), expected::image(g));
        assert_eq!(sh.image_size(r), expected::size(g));
        assert_eq!(sh.caption(r), expected::caption(g));
        assert_eq!(sh.caption_tokens(r), expected::tokens(g, 0));
        for s in 0..DIMS.s {
            assert_eq!(sh.syn_caption(r, s), format!("syn {g}/{s}"));
            assert_eq!(sh.syn_tokens(r, s), expected::tokens(g, s + 1));
        }
        for j in 0..DIMS.j {
            assert_eq!(sh.aug(r, j), expected::aug(g, j));
            let row = sh.image_emb_raw(r, j);
            assert_eq!(row.len(), DIMS.row_len() * 2);
            for (e, b) in row.chunks_exact(2).enumerate() {
                let x = f16::from_le_bytes([b[0], b[1]]);
                assert_eq!(x, f16::from_f32(expected::emb(g, j, e)), "sample {g} row {j} elem {e}");
            }
        }
        for t in 0..=DIMS.s {
            let row = sh.text_emb_raw(r, t);
            let x = f16::from_le_bytes([row[2], row[3]]);
            assert_eq!(x, f16::from_f32(expected::emb(g, DIMS.j + t, 1)));
        }
        assert_eq!(sh.image_embs_raw(r).len(), DIMS.j * DIMS.row_len() * 2);
        assert_eq!(sh.sha256(r).copied(), expected::sha256(g));
        assert_eq!(sh.flags(r), (g % 4) as u32);
        assert!(sh.image_emb_scale(r, 0).is_empty());
    }
    assert!(st.verify().is_empty());
    assert!(verify_dir(st.dir()).unwrap().is_empty());
}

#[test]
fn reads_are_zero_copy_views_of_the_mapping() {
    let (_dir, st) = store("zerocopy", EmbeddingDtype::Float16, &[4]);
    let sh = st.shard(0).unwrap();
    let file = sh.bytes().as_ptr_range();
    let inside = |b: &[u8]| file.contains(&b.as_ptr());
    assert!(inside(sh.image_emb_raw(3, 1)));
    assert!(inside(sh.text_emb_raw(2, 0)));
    assert!(inside(sh.image_bytes(3)));
    assert!(inside(sh.aug_bytes(1)));
    assert!(inside(sh.uid(2).as_bytes()));
    assert!(file.contains(&(sh.caption_tokens(1).as_ptr() as *const u8)));
}

#[test]
fn locate_maps_global_indices_and_checks_range() {
    let (_dir, st) = store("locate", EmbeddingDtype::Float16, &[2, 3]);
    let want = [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)];
    for (g, w) in want.iter().enumerate() {
        assert_eq!(st.locate(g).unwrap(), *w);
    }
    assert!(st.shard_location_of(2).unwrap().ends_with("shard-00001.arrow"));
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
    let st = st.shard(0).unwrap();
    let row = st.image_emb_raw(1, 2);
    let x = half::bf16::from_bits(u16::from_le_bytes([row[0], row[1]]));
    assert_eq!(x, half::bf16::from_f32(expected::emb(1, 2, 0)));

    let (_dir, st) = store("int8", EmbeddingDtype::Int8, &[2]);
    let st = st.shard(0).unwrap();
    assert_eq!(st.image_emb_raw(1, 2).len(), DIMS.row_len());
    let scales = st.image_emb_scale(1, 2);
    assert_eq!(scales.len(), DIMS.k);
    let q = st.image_emb_raw(1, 2)[0] as i8;
    let x = expected::emb(1, 2, 0);
    assert!((q as f32 * scales[0] - x).abs() <= scales[0] / 2.0 + 1e-6);
    assert_eq!(st.text_emb_scale(1, DIMS.s).len(), DIMS.k);
}

/// The error reading a broken store gives: at open (manifest) or when every shard is first used.
fn open_err(dir: &Path) -> String {
    let used = Store::open(dir).and_then(|st| (0..st.num_shards()).try_for_each(|n| st.shard(n).map(drop)));
    match used {
        Ok(()) => panic!("opened a broken store"),
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
    std::fs::write(
        &manifest_path,
        text.replace("\"embedding_dtype\": \"float16\"", "\"embedding_dtype\": \"bfloat16\""),
    )
    .unwrap();
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
        // Either first use refuses it, or verify reports it.
        let st = Store::open(dir.path()).unwrap();
        if st.shard(0).is_ok() {
            assert!(!st.verify().is_empty(), "flip at {at} went unnoticed");
        }
        assert!(!verify_dir(dir.path()).unwrap().is_empty());
    }
}

#[test]
fn open_reads_only_the_manifest_and_first_use_validates() {
    let dir = TempDir::new("lazy");
    write_store(dir.path(), DIMS, EmbeddingDtype::Float16, &[2, 3, 1]);
    let shard1 = dir.path().join("shard-00001.arrow");
    let good = std::fs::read(&shard1).unwrap();
    // Shard 1 gone, shard 2 not a shard at all: open still succeeds and maps nothing.
    std::fs::remove_file(&shard1).unwrap();
    std::fs::write(dir.path().join("shard-00002.arrow"), b"not arrow").unwrap();
    let st = Store::open(dir.path()).unwrap();
    assert_eq!((st.len(), st.num_shards(), st.shards_mapped()), (6, 3, 0));
    // Samples of an intact shard read back; only that shard is mapped.
    let (sh, r) = st.sample(1).unwrap();
    assert_eq!(sh.uid(r), expected::uid(1));
    assert_eq!(st.shards_mapped(), 1);
    st.sample(0).unwrap();
    assert_eq!(st.shards_mapped(), 1, "a mapped shard is reused");
    // First use of a broken shard names the file and what is wrong; it is retried next time.
    for _ in 0..2 {
        let msg = st.sample(3).map(drop).unwrap_err().to_string();
        assert!(msg.contains("shard-00001.arrow") && msg.contains("missing"), "{msg}");
    }
    let msg = st.sample(5).map(drop).unwrap_err().to_string();
    assert!(msg.contains("shard-00002.arrow") && msg.contains("manifest says"), "{msg}");
    // A bad augmentation record (validated at first use, not at open).
    std::fs::write(&shard1, &good).unwrap();
    let probe = Shard::open(&shard1, None).unwrap();
    let aug = probe.column_ranges().iter().find(|(n, _)| n == "aug").unwrap().1.clone();
    drop(probe);
    let mut bad = good.clone();
    bad[aug.start + 37] = 1; // a pad byte of record 0
    std::fs::write(&shard1, &bad).unwrap();
    let st = Store::open(dir.path()).unwrap();
    let msg = st.sample(2).map(drop).unwrap_err().to_string();
    assert!(msg.contains("shard-00001.arrow") && msg.contains("aug") && msg.contains("row 0"), "{msg}");
}

#[test]
fn a_schema_2_store_keeps_its_shards_own_names() {
    use super::testing::write_synthetic_shard;
    let dir = TempDir::new("named-v2");
    let names = ["00012345-000.arrow", "00012345-001.arrow", "00000007-000.arrow"];
    let (mut first, mut shards) = (0, Vec::new());
    for (name, size) in names.iter().zip([3, 5, 1]) {
        shards.push(write_synthetic_shard(&dir.path().join(name), DIMS, EmbeddingDtype::Float16, first, size));
        first += size;
    }
    let manifest =
        Manifest::new(DIMS, EmbeddingDtype::Float16, DEFAULT_TOKENIZER, shards, serde_json::json!({})).unwrap();
    manifest.write_version(dir.path(), 2).unwrap();
    let header: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(MANIFEST_FILE)).unwrap()).unwrap();
    assert_eq!(header["schema_version"], 2);
    assert_eq!(header["shard_index"]["names"], true);
    let st = Store::open(dir.path()).unwrap();
    for (n, name) in names.iter().enumerate() {
        assert_eq!(st.shard_file(n).unwrap(), *name);
        assert_eq!(st.shard_entry(n).unwrap().file, *name);
    }
    for g in 0..st.len() {
        let (sh, r) = st.sample(g).unwrap();
        assert_eq!(sh.uid(r), expected::uid(g));
    }
    assert!(verify_dir(dir.path()).unwrap().is_empty());
    // Positional names stay implied: no names section.
    let plain = TempDir::new("positional-v2");
    write_store(plain.path(), DIMS, EmbeddingDtype::Float16, &[2, 2]);
    Manifest::read(plain.path()).unwrap().write_version(plain.path(), 2).unwrap();
    assert!(!Manifest::read(plain.path()).unwrap().shard_index.unwrap().names);
}

/// A store of DIMS (S = 2) with shards written under `shard_sets` and a manifest listing `manifest_sets`.
fn caption_set_store(
    name: &str,
    shard_sets: Option<Vec<CaptionSet>>,
    manifest_sets: Option<Vec<CaptionSet>>,
) -> TempDir {
    use super::testing::write_synthetic_shard_with_sets;
    let dir = TempDir::new(name);
    let (mut first, mut shards) = (0, Vec::new());
    for (n, size) in [3, 2].into_iter().enumerate() {
        let path = dir.path().join(shard_file_name(n));
        let dtype = EmbeddingDtype::Float16;
        shards.push(write_synthetic_shard_with_sets(&path, DIMS, dtype, first, size, shard_sets.clone()));
        first += size;
    }
    Manifest::new(DIMS, EmbeddingDtype::Float16, DEFAULT_TOKENIZER, shards, serde_json::json!({}))
        .unwrap()
        .with_caption_sets(manifest_sets)
        .unwrap()
        .write_version(dir.path(), 2)
        .unwrap();
    dir
}

fn two_sets() -> Vec<CaptionSet> {
    vec![CaptionSet::new("syn_text", 1), CaptionSet::new("syn_text_dfn", 1)]
}

#[test]
fn a_two_set_store_lists_its_sets_in_manifest_and_shards() {
    let dir = caption_set_store("two-sets", Some(two_sets()), Some(two_sets()));
    let st = Store::open(dir.path()).unwrap();
    assert_eq!(st.caption_sets(), two_sets());
    let header: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(MANIFEST_FILE)).unwrap()).unwrap();
    assert_eq!(
        header["caption_sets"],
        serde_json::json!([{"name": "syn_text", "S": 1}, {"name": "syn_text_dfn", "S": 1}])
    );
    for g in 0..st.len() {
        let (sh, r) = st.sample(g).unwrap();
        assert_eq!(sh.caption_sets(), two_sets());
        assert_eq!(sh.syn_caption(r, 1), format!("syn {g}/1"));
    }
    assert!(verify_dir(dir.path()).unwrap().is_empty());
}

#[test]
fn one_set_is_written_as_the_plain_case() {
    let plain = caption_set_store("plain", None, None);
    let one = caption_set_store(
        "one-set",
        Some(vec![CaptionSet::new("syn_text", 2)]),
        Some(vec![CaptionSet::new("syn_text", 2)]),
    );
    for name in [MANIFEST_FILE, INDEX_FILE, "shard-00000.arrow", "shard-00001.arrow"] {
        assert_eq!(
            std::fs::read(plain.path().join(name)).unwrap(),
            std::fs::read(one.path().join(name)).unwrap(),
            "{name}"
        );
    }
    let st = Store::open(one.path()).unwrap();
    assert_eq!(st.caption_sets(), vec![CaptionSet::new(DEFAULT_CAPTION_SET, 2)]);
}

#[test]
fn shard_caption_sets_must_match_the_manifest() {
    let other = vec![CaptionSet::new("syn_text", 1), CaptionSet::new("syn_text_other", 1)];
    let cases = [
        ("sets-vs-none", Some(two_sets()), None),
        ("none-vs-sets", None, Some(two_sets())),
        ("sets-vs-other", Some(two_sets()), Some(other)),
    ];
    for (name, shard_sets, manifest_sets) in cases {
        let dir = caption_set_store(name, shard_sets, manifest_sets);
        let st = Store::open(dir.path()).unwrap();
        let err = st.sample(0).map(drop).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{name}: {err:?}");
        let msg = err.to_string();
        assert!(msg.contains("shard-00000.arrow") && msg.contains("caption sets"), "{name}: {msg}");
        let problems = verify_dir(dir.path()).unwrap();
        assert_eq!(problems.len(), 2, "{name}: {problems:?}");
        assert!(problems[0].message.contains("caption sets"), "{name}: {problems:?}");
    }
}

#[test]
fn a_writer_refuses_caption_sets_in_schema_1_and_bad_lists() {
    let dir = TempDir::new("writer-sets");
    let options = |schema_version, sets| StoreWriterOptions {
        dims: DIMS,
        dtype: EmbeddingDtype::Float16,
        target_shard_bytes: 1 << 20,
        metadata: serde_json::json!({}),
        overwrite: true,
        schema_version,
        caption_sets: Some(sets),
    };
    let err = StoreWriter::create(dir.path(), options(1, two_sets())).map(drop).unwrap_err().to_string();
    assert!(err.contains("schema_version 2"), "{err}");
    let err = StoreWriter::create(dir.path(), options(2, vec![CaptionSet::new("a", 2), CaptionSet::new("a", 0)]))
        .map(drop)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    // The same rules refuse a manifest written around the writer.
    let manifest = Manifest::new(DIMS, EmbeddingDtype::Float16, DEFAULT_TOKENIZER, vec![], serde_json::json!({}));
    let err = manifest.unwrap().with_caption_sets(Some(two_sets())).unwrap().write_version(dir.path(), 1).unwrap_err();
    assert!(err.to_string().contains("schema_version 2"), "{err}");
}
