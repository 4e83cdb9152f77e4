//! `manifest.json`: the store's table of contents (dims, dtype, shards, checksums).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::atomic::write_bytes_atomic;
use super::caption_sets::{check_caption_sets, check_schema_holds, stored_caption_sets, CaptionSet};
use super::files::read_regular_to_string;
use super::schema::{column_names, MAGIC, SCHEMA_VERSION};
use super::{Dims, EmbeddingDtype};
use crate::error::{Error, Result};

pub const MANIFEST_FILE: &str = "manifest.json";

/// Default for the largest `manifest.json` a reader accepts (docs/FORMAT.md, "Bounds").
pub const DEFAULT_MAX_MANIFEST_BYTES: u64 = 64 << 20;
/// Environment variable that overrides `DEFAULT_MAX_MANIFEST_BYTES` (a byte count).
pub const MAX_MANIFEST_BYTES_ENV: &str = "MOBILECLIP_FASTLOAD_MAX_MANIFEST_BYTES";

/// The manifest size limit in force: `MOBILECLIP_FASTLOAD_MAX_MANIFEST_BYTES` or the default.
/// A value that is not a positive byte count is an `InvalidArgument` naming the variable.
pub fn max_manifest_bytes() -> Result<u64> {
    match std::env::var(MAX_MANIFEST_BYTES_ENV) {
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_MAX_MANIFEST_BYTES),
        Ok(v) => v.trim().parse::<u64>().ok().filter(|&n| n > 0).ok_or_else(|| {
            Error::InvalidArgument(format!("{MAX_MANIFEST_BYTES_ENV}={v:?} is not a positive number of bytes"))
        }),
        Err(e) => Err(Error::InvalidArgument(format!("{MAX_MANIFEST_BYTES_ENV}: {e}"))),
    }
}

/// How the limit is described in a refusal: its value and how to change it.
pub fn manifest_limit_hint(limit: u64) -> String {
    format!("the manifest size limit is {limit} bytes; set {MAX_MANIFEST_BYTES_ENV} to raise it")
}

/// One shard's entry: where it is and what its bytes must hash to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// File name inside the store directory (no directory part).
    pub file: String,
    pub num_samples: usize,
    pub file_bytes: u64,
    /// xxh3-64 of the whole file, 16 lowercase hex digits.
    pub file_xxh3: String,
    /// Column name -> xxh3-64 of that column's byte range (see `checksum`).
    pub columns: BTreeMap<String, String>,
}

/// Schema 2: where the shard index is and what its head hashes to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexRef {
    pub file: String,
    pub file_bytes: u64,
    /// xxh3-64 of the index's header and head (what open reads), 16 lowercase hex digits.
    pub head_xxh3: String,
    /// Whether the index stores the shards' file names (otherwise they are positional).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub names: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub magic: String,
    pub schema_version: u32,
    pub dims: Dims,
    /// Schema 2: the caption sets' names and sizes in storage order (docs/FORMAT.md, "Caption sets").
    /// Absent for the plain case (one set `syn_text`), so such a store is written as before.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present_list")]
    pub caption_sets: Option<Vec<CaptionSet>>,
    pub embedding_dtype: String,
    #[serde(default)]
    pub tokenizer: Option<String>,
    pub num_samples: usize,
    /// Schema 1: every shard's entry. Schema 2: empty and not written (the entries are in `shard_index`).
    #[serde(default)]
    pub shards: Vec<ShardEntry>,
    /// Schema 2: how many shards the index lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_shards: Option<u64>,
    /// Schema 2: the shard index file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_index: Option<IndexRef>,
    #[serde(default)]
    pub metadata: serde_json::Value,
}

impl Manifest {
    /// Parse and validate manifest text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest> {
        let bad = |msg: String| Error::format(path, msg);
        // serde_json keeps the last of two equal keys: a manifest that says two things is refused.
        if let Err(e) = super::json_keys::reject_duplicate_keys(text).map_err(bad) {
            if e.to_string().contains("duplicate key") {
                return Err(e);
            }
        }
        // Fast path (large manifests: one pass, no intermediate JSON tree); any
        // problem falls through to the careful path below for its message.
        if let Ok(manifest) = serde_json::from_str::<Manifest>(text) {
            if manifest.magic == MAGIC && manifest.schema_version >= 1 && manifest.schema_version <= SCHEMA_VERSION {
                manifest.validate(path)?;
                return Ok(manifest);
            }
        }
        // Check magic and version on the loose JSON first, so that a newer store
        // (whose fields this reader may not know) reports its version, not a parse error.
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let obj = value.as_object().ok_or_else(|| bad("not a JSON object".into()))?;
        match obj.get("magic").and_then(|m| m.as_str()) {
            Some(MAGIC) => {}
            Some(other) => {
                return Err(bad(format!("magic is {other:?}, expected {MAGIC:?}: not a mobileclip-fastload store")))
            }
            None => return Err(bad("no \"magic\" field: not a mobileclip-fastload store".into())),
        }
        let version = obj
            .get("schema_version")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| bad("missing or non-integer \"schema_version\"".into()))?;
        check_version(version, path)?;
        let manifest: Manifest = serde_json::from_value(value).map_err(|e| bad(format!("invalid manifest: {e}")))?;
        manifest.validate(path)?;
        Ok(manifest)
    }

    /// A manifest for these shards, listed in their global order. Checked as `parse`
    /// checks a manifest it reads (an invalid one is an `InvalidArgument`).
    pub fn new(
        dims: Dims,
        dtype: EmbeddingDtype,
        tokenizer: &str,
        shards: Vec<ShardEntry>,
        metadata: serde_json::Value,
    ) -> Result<Manifest> {
        let manifest = Manifest {
            magic: MAGIC.into(),
            schema_version: 1,
            dims,
            caption_sets: None,
            embedding_dtype: dtype.name().into(),
            tokenizer: Some(tokenizer.into()),
            num_samples: shards.iter().fold(0usize, |a, s| a.wrapping_add(s.num_samples)),
            shards,
            num_shards: None,
            shard_index: None,
            metadata,
        };
        manifest.validate(Path::new(MANIFEST_FILE)).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        Ok(manifest)
    }

    /// This manifest with the caption sets a writer was given: none or the one set `syn_text` is the
    /// plain case (no key); any other list is checked (`InvalidArgument` saying what is wrong) and listed.
    pub fn with_caption_sets(mut self, sets: Option<Vec<CaptionSet>>) -> Result<Manifest> {
        self.caption_sets = stored_caption_sets(sets, self.dims.s).map_err(Error::InvalidArgument)?;
        Ok(self)
    }

    /// The caption sets of this store: the stored list, or the one set `syn_text` of S captions.
    pub fn caption_sets(&self) -> Vec<CaptionSet> {
        super::caption_sets::resolved_caption_sets(self.caption_sets.as_deref(), self.dims.s)
    }

    /// Write the store's table of contents in `schema_version` (1: every entry in
    /// `manifest.json`; 2: `shards.idx`, then a small `manifest.json` naming it),
    /// atomically, manifest last. Schema 2 stores the shards' names in the index
    /// unless they are all positional (`shard_file_name(n)`, as `StoreWriter` names them).
    pub fn write_version(&self, dir: &Path, schema_version: u32) -> Result<PathBuf> {
        match schema_version {
            1 => self.write(dir),
            2 => self.indexed()?.write(dir),
            v => Err(Error::InvalidArgument(format!("schema_version must be 1 or 2, got {v}"))),
        }
    }

    /// This schema-1 manifest as schema 2, with its index written into `dir`... see `write_version`.
    fn indexed(&self) -> Result<IndexedManifest> {
        use super::shard_index::{encode_index, head_hash, IndexEntry, IndexShape, INDEX_FILE};
        let cols = column_names(self.dtype());
        let mut entries = Vec::with_capacity(self.shards.len());
        for e in &self.shards {
            let hex = |h: &str| u64::from_str_radix(h, 16).expect("validated");
            entries.push(IndexEntry {
                file_xxh3: hex(&e.file_xxh3),
                columns: cols.iter().map(|c| hex(&e.columns[*c])).collect(),
            });
        }
        let sizes: Vec<u64> = self.shards.iter().map(|e| e.num_samples as u64).collect();
        let bytes: Vec<u64> = self.shards.iter().map(|e| e.file_bytes).collect();
        let positional = self.shards.iter().enumerate().all(|(n, e)| e.file == super::shard_writer::shard_file_name(n));
        let names: Vec<String> = self.shards.iter().map(|e| e.file.clone()).collect();
        let names = (!positional).then_some(names.as_slice());
        let index = encode_index(&sizes, &bytes, &entries, cols.len() as u32, names).map_err(Error::InvalidArgument)?;
        let shape = IndexShape { shards: sizes.len() as u64, columns: cols.len() as u32, names: !positional };
        let head = &index[..shape.head_range().end as usize];
        let manifest = Manifest {
            schema_version: 2,
            shards: Vec::new(),
            num_shards: Some(shape.shards),
            shard_index: Some(IndexRef {
                file: INDEX_FILE.into(),
                file_bytes: index.len() as u64,
                head_xxh3: hex64(head_hash(head)),
                names: !positional,
            }),
            ..self.clone()
        };
        Ok(IndexedManifest { manifest, index })
    }

    /// Write `dir/manifest.json` atomically. Writing it is what makes a directory
    /// a store: write it last.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        check_schema_holds(self.caption_sets.as_deref(), self.schema_version).map_err(Error::InvalidArgument)?;
        let path = dir.join(MANIFEST_FILE);
        let mut text = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
        let mut ser = serde_json::Serializer::with_formatter(&mut text, formatter);
        let written = if self.schema_version >= 2 {
            // Schema 2 has no shard list (an empty one would be misread as "no shards").
            let mut value = serde_json::to_value(self).map_err(|e| Error::InvalidArgument(format!("manifest: {e}")))?;
            value.as_object_mut().map(|o| o.remove("shards"));
            value.serialize(&mut ser)
        } else {
            self.serialize(&mut ser)
        };
        written.map_err(|e| Error::InvalidArgument(format!("manifest: {e}")))?;
        text.push(b'\n');
        write_bytes_atomic(&path, &text)?;
        Ok(path)
    }

    pub fn read(dir: &Path) -> Result<Manifest> {
        let (text, path) = Manifest::read_text(dir)?;
        Manifest::parse(&text, &path)
    }

    /// The manifest file's text and path, unparsed.
    pub fn read_text(dir: &Path) -> Result<(String, PathBuf)> {
        let path = dir.join(MANIFEST_FILE);
        let limit = max_manifest_bytes()?;
        let text = read_regular_to_string(&path, limit, &manifest_limit_hint(limit), || Error::StoreNotFound {
            dir: dir.to_path_buf(),
        })?;
        Ok((text, path))
    }

    pub fn dims(&self) -> Dims {
        self.dims
    }

    /// Only valid after `parse` (which checks the name).
    pub fn dtype(&self) -> EmbeddingDtype {
        EmbeddingDtype::parse(&self.embedding_dtype).expect("validated at parse")
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let bad = |msg: String| Error::format(path, msg);
        self.dims().check().map_err(bad)?;
        let dtype = EmbeddingDtype::parse(&self.embedding_dtype).ok_or_else(|| {
            bad(format!("embedding_dtype {:?} is not one of float16, bfloat16, int8", self.embedding_dtype))
        })?;
        if let Some(sets) = &self.caption_sets {
            if self.schema_version < 2 {
                return Err(bad("\"caption_sets\" is schema 2; a schema-1 store has one caption set".into()));
            }
            check_caption_sets(sets, self.dims.s).map_err(bad)?;
        }
        if self.schema_version >= 2 {
            // The counts are checked against the index's head when it is read (ShardTable::indexed).
            let index = self.shard_index.as_ref().ok_or_else(|| bad("schema 2 needs \"shard_index\"".into()))?;
            if self.num_shards.is_none() || !self.shards.is_empty() {
                return Err(bad("schema 2 has \"num_shards\" and no \"shards\" list".into()));
            }
            if index.file != super::shard_index::INDEX_FILE {
                return Err(bad(format!(
                    "shard_index file is {:?}, expected {:?}",
                    index.file,
                    super::shard_index::INDEX_FILE
                )));
            }
            if !is_hex64(&index.head_xxh3) {
                return Err(bad(format!("shard_index head_xxh3 {:?} is not 16 hex digits", index.head_xxh3)));
            }
            return Ok(());
        }
        if self.num_shards.is_some() || self.shard_index.is_some() {
            return Err(bad(
                "schema 1 lists its shards in \"shards\"; \"num_shards\"/\"shard_index\" are schema 2".into()
            ));
        }
        let min_row =
            self.dims().min_row_bytes(dtype.itemsize()).ok_or_else(|| bad("dims overflow a row's size".into()))?;
        let (mut total, mut total_bytes) = (0usize, 0u64);
        for (n, shard) in self.shards.iter().enumerate() {
            check_claimed_rows(shard.num_samples, shard.file_bytes, min_row)
                .map_err(|msg| bad(format!("shard {n} ({:?}): {msg}", shard.file)))?;
            total = total.checked_add(shard.num_samples).ok_or_else(|| {
                bad(format!("the shards' num_samples overflow a 64-bit sum at shard {n} ({:?})", shard.file))
            })?;
            total_bytes = total_bytes.checked_add(shard.file_bytes).ok_or_else(|| {
                bad(format!("the shards' file_bytes overflow a 64-bit sum at shard {n} ({:?})", shard.file))
            })?;
        }
        if total != self.num_samples {
            return Err(bad(format!("num_samples is {} but the shards hold {total}", self.num_samples)));
        }
        let want: Vec<&str> = column_names(dtype);
        let mut seen = std::collections::HashSet::new();
        for (n, shard) in self.shards.iter().enumerate() {
            let name = &shard.file;
            if !is_plain_file_name(name) {
                return Err(bad(format!(
                    "shard {n}: file {name:?} must be a plain file name inside the store directory"
                )));
            }
            if shard.num_samples == 0 {
                return Err(bad(format!("{name}: num_samples is 0; a shard holds at least one sample")));
            }
            if !seen.insert(name.as_str()) {
                return Err(bad(format!("shard file {name:?} is listed twice")));
            }
            if !is_hex64(&shard.file_xxh3) {
                return Err(bad(format!("{name}: file_xxh3 {:?} is not 16 hex digits", shard.file_xxh3)));
            }
            let mut got: Vec<&str> = shard.columns.keys().map(|k| k.as_str()).collect();
            let mut want_sorted = want.clone();
            got.sort_unstable();
            want_sorted.sort_unstable();
            if got != want_sorted {
                return Err(bad(format!("{name}: checksummed columns {got:?}, expected {want_sorted:?}")));
            }
            if let Some((col, sum)) = shard.columns.iter().find(|(_, v)| !is_hex64(v)) {
                return Err(bad(format!("{name}: checksum of column '{col}' ({sum:?}) is not 16 hex digits")));
            }
        }
        Ok(())
    }
}

/// `caption_sets`, when present, is a list: `null` is refused rather than read as "absent".
/// Errors name the key (serde's own would not).
fn present_list<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<Vec<CaptionSet>>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    serde_json::from_value::<Vec<CaptionSet>>(value)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("\"caption_sets\": {e}")))
}

/// A schema-2 manifest with the bytes of its index, ready to write.
struct IndexedManifest {
    manifest: Manifest,
    index: Vec<u8>,
}

impl IndexedManifest {
    fn write(&self, dir: &Path) -> Result<PathBuf> {
        let index = self.manifest.shard_index.as_ref().expect("built with one");
        write_bytes_atomic(&dir.join(&index.file), &self.index)?;
        self.manifest.write(dir)
    }
}

/// A shard of `file_bytes` bytes holds at most `file_bytes / min_row_bytes` rows
/// (docs/FORMAT.md, "Bounds"): a claim of more is refused before anything is sized from it.
pub fn check_claimed_rows(num_samples: usize, file_bytes: u64, min_row_bytes: u64) -> Result<(), String> {
    let needed = (num_samples as u64).checked_mul(min_row_bytes);
    match needed {
        Some(needed) if needed <= file_bytes => Ok(()),
        _ => Err(format!(
            "claims {num_samples} samples, but {file_bytes} bytes hold at most {} \
             (every sample takes at least {min_row_bytes} bytes)",
            file_bytes / min_row_bytes.max(1)
        )),
    }
}

/// Version gate of the manifest (`SCHEMA_VERSION`); shards use `check_version_up_to`
/// with `SHARD_SCHEMA_VERSION`.
pub fn check_version(found: u64, path: &Path) -> Result<()> {
    check_version_up_to(found, SCHEMA_VERSION, path)
}

/// `found` must be a version from 1 to `supported`.
pub fn check_version_up_to(found: u64, supported: u32, path: &Path) -> Result<()> {
    if found > supported as u64 {
        return Err(Error::Version { path: path.into(), found: found.min(u32::MAX as u64) as u32, supported });
    }
    if found == 0 {
        return Err(Error::format(path, "schema_version 0 does not exist"));
    }
    Ok(())
}

pub(crate) fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

pub fn is_hex64(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The checksum text form used in the manifest.
pub fn hex64(x: u64) -> String {
    format!("{x:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_json(version: u32, dtype: &str, extra_col: bool) -> String {
        let mut cols: Vec<String> = column_names(EmbeddingDtype::parse(dtype).unwrap_or(EmbeddingDtype::Float16))
            .iter()
            .map(|c| format!("\"{c}\": \"0123456789abcdef\""))
            .collect();
        if extra_col {
            cols.push("\"bogus\": \"0123456789abcdef\"".into());
        }
        format!(
            r#"{{"magic": "{MAGIC}", "schema_version": {version},
               "dims": {{"J": 2, "S": 5, "K": 2, "D": 8}}, "embedding_dtype": "{dtype}",
               "tokenizer": "openai-clip-bpe", "num_samples": 3,
               "shards": [{{"file": "shard-00000.arrow", "num_samples": 3, "file_bytes": 100000,
                            "file_xxh3": "00000000000000ff", "columns": {{{}}}}}],
               "metadata": {{"source": "test"}}}}"#,
            cols.join(", ")
        )
    }

    #[test]
    fn parses_a_good_manifest() {
        let m = Manifest::parse(&sample_json(1, "float16", false), Path::new("m.json")).unwrap();
        assert_eq!(m.dims(), Dims { j: 2, s: 5, k: 2, d: 8 });
        assert_eq!(m.dtype(), EmbeddingDtype::Float16);
        assert_eq!(m.shards[0].num_samples, 3);
        let m = Manifest::parse(&sample_json(1, "int8", false), Path::new("m.json")).unwrap();
        assert_eq!(m.dtype(), EmbeddingDtype::Int8);
    }

    #[test]
    fn newer_version_is_a_version_error_even_with_unknown_fields() {
        let text = sample_json(3, "float16", false).replace("\"metadata\"", "\"new_thing\": 1, \"metadata\"");
        match Manifest::parse(&text, Path::new("m.json")) {
            Err(Error::Version { found: 3, supported: 2, .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_bad_manifests() {
        let p = Path::new("m.json");
        let cases = [
            sample_json(1, "float16", false).replace(MAGIC, "something-else"),
            sample_json(1, "float64", false),
            sample_json(1, "float16", true),
            sample_json(1, "float16", false).replace("\"num_samples\": 3,\n", "\"num_samples\": 4,\n"),
            sample_json(1, "float16", false).replace("shard-00000.arrow", "../x.arrow"),
            sample_json(1, "float16", false).replace("00000000000000ff", "xyz"),
            sample_json(1, "float16", false).replace("\"J\": 2", "\"J\": 0"),
            sample_json(0, "float16", false),
            "[1, 2]".to_string(),
            "{".to_string(),
        ];
        for (n, text) in cases.iter().enumerate() {
            match Manifest::parse(text, p) {
                Err(Error::Format { .. }) => {}
                other => panic!("case {n}: {other:?}"),
            }
        }
    }

    #[test]
    fn crafted_counts_are_refused_before_use() {
        let p = Path::new("m.json");
        // min_row_bytes for J=2 S=5 K=2 D=8 float16: 2*40 + (2+6)*16*2 = 336; file_bytes 100 holds none.
        let base = sample_json(1, "float16", false).replace("\"file_bytes\": 100000", "\"file_bytes\": 1008");
        assert!(Manifest::parse(&base, p).is_ok());
        for claim in [4u64, 1 << 36, 1 << 62, u64::MAX] {
            let text = base.replace("\"num_samples\": 3", &format!("\"num_samples\": {claim}"));
            let err = Manifest::parse(&text, p).unwrap_err().to_string();
            assert!(err.contains(&format!("claims {claim} samples")), "{claim}: {err}");
        }
    }

    #[test]
    fn wrapping_sums_are_refused() {
        // Two shards whose counts wrap past 2^64 to the stated total 3; each within its (huge) file_bytes.
        let min_row = Dims { j: 2, s: 5, k: 2, d: 8 }.min_row_bytes(2).unwrap();
        let half = (u64::MAX / min_row) as usize;
        let wrapped = half.wrapping_add(half).wrapping_add(3);
        let bytes = half as u64 * min_row;
        let shard = |name: &str, n: usize| {
            let cols: Vec<String> = column_names(EmbeddingDtype::Float16)
                .iter()
                .map(|c| format!("\"{c}\": \"0123456789abcdef\""))
                .collect();
            format!(
                r#"{{"file": "{name}", "num_samples": {n}, "file_bytes": {bytes}, "file_xxh3": "00000000000000ff",
                   "columns": {{{}}}}}"#,
                cols.join(", ")
            )
        };
        let text = format!(
            r#"{{"magic": "{MAGIC}", "schema_version": 1, "dims": {{"J": 2, "S": 5, "K": 2, "D": 8}},
               "embedding_dtype": "float16", "num_samples": {wrapped}, "shards": [{}, {}]}}"#,
            shard("a.arrow", half),
            shard("b.arrow", half)
        );
        let err = Manifest::parse(&text, Path::new("m.json")).unwrap_err().to_string();
        assert!(err.contains("overflow a 64-bit sum"), "{err}");
    }

    #[test]
    fn num_samples_mismatch_is_reported() {
        let text = sample_json(1, "float16", false).replacen("\"num_samples\": 3", "\"num_samples\": 4", 1);
        let err = Manifest::parse(&text, Path::new("m.json")).unwrap_err();
        assert!(err.to_string().contains("num_samples is 4 but the shards hold 3"), "{err}");
    }

    fn v2_json(caption_sets: &str) -> String {
        format!(
            r#"{{"magic": "{MAGIC}", "schema_version": 2, "dims": {{"J": 2, "S": 5, "K": 2, "D": 8}},
               {caption_sets} "embedding_dtype": "float16", "num_samples": 3, "num_shards": 1,
               "shard_index": {{"file": "shards.idx", "file_bytes": 100, "head_xxh3": "0123456789abcdef"}}}}"#
        )
    }

    #[test]
    fn caption_sets_are_read_and_each_rule_refuses() {
        let p = Path::new("manifest.json");
        let m = Manifest::parse(&v2_json(""), p).unwrap();
        assert_eq!(m.caption_sets(), vec![CaptionSet::new("syn_text", 5)]);
        let two = r#""caption_sets": [{"name": "syn_text", "S": 3}, {"name": "syn_text_x", "S": 2}],"#;
        let m = Manifest::parse(&v2_json(two), p).unwrap();
        assert_eq!(m.caption_sets(), vec![CaptionSet::new("syn_text", 3), CaptionSet::new("syn_text_x", 2)]);
        let cases = [
            (r#""caption_sets": [{"name": "syn_text", "S": 5}],"#, "the plain case"),
            (r#""caption_sets": [],"#, "at least one"),
            (r#""caption_sets": null,"#, "invalid"),
            (r#""caption_sets": [{"name": "", "S": 3}, {"name": "b", "S": 2}],"#, "empty name"),
            (r#""caption_sets": [{"name": "a", "S": 3}, {"name": "b", "S": 2}],"#, "control character"),
            (r#""caption_sets": [{"name": "a", "S": 3}, {"name": "a", "S": 2}],"#, "listed twice"),
            (r#""caption_sets": [{"name": "a", "S": 0}, {"name": "b", "S": 5}],"#, "S=0"),
            (r#""caption_sets": [{"name": "a", "S": 3}, {"name": "b", "S": 3}],"#, "sum to 6, but dims S is 5"),
            (r#""caption_sets": [{"name": "a", "S": 3}, {"name": "b", "S": -2}],"#, "invalid"),
            (r#""caption_sets": [{"name": "a", "S": 3}, {"name": "b", "S": 2, "x": 1}],"#, "unknown field"),
            (r#""caption_sets": {"name": "a", "S": 5},"#, "invalid"),
        ];
        for (key, want) in cases {
            match Manifest::parse(&v2_json(key), p) {
                Err(e @ Error::Format { .. }) => {
                    let msg = e.to_string();
                    assert!(msg.contains("manifest.json") && msg.contains(want), "{key}: {msg}");
                }
                other => panic!("{key}: {other:?}"),
            }
        }
        // Schema 1 has one set: the key is refused there.
        let v1 = sample_json(1, "float16", false).replace(
            "\"embedding_dtype\"",
            r#""caption_sets": [{"name": "a", "S": 3}, {"name": "b", "S": 2}], "embedding_dtype""#,
        );
        let err = Manifest::parse(&v1, p).unwrap_err().to_string();
        assert!(err.contains("is schema 2"), "{err}");
    }
}
