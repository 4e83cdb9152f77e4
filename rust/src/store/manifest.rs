//! `manifest.json`: the store's table of contents (dims, dtype, shards, checksums).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::atomic::write_bytes_atomic;
use super::files::read_regular_to_string;
use super::schema::{column_names, MAGIC, SCHEMA_VERSION};
use super::{Dims, EmbeddingDtype};
use crate::error::{Error, Result};

pub const MANIFEST_FILE: &str = "manifest.json";

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

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub magic: String,
    pub schema_version: u32,
    pub dims: Dims,
    pub embedding_dtype: String,
    #[serde(default)]
    pub tokenizer: Option<String>,
    pub num_samples: usize,
    pub shards: Vec<ShardEntry>,
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
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let obj = value.as_object().ok_or_else(|| bad("not a JSON object".into()))?;
        match obj.get("magic").and_then(|m| m.as_str()) {
            Some(MAGIC) => {}
            Some(other) => return Err(bad(format!("magic is {other:?}, expected {MAGIC:?}: not a mobileclip-fastload store"))),
            None => return Err(bad("no \"magic\" field: not a mobileclip-fastload store".into())),
        }
        let version = obj
            .get("schema_version")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| bad("missing or non-integer \"schema_version\"".into()))?;
        check_version(version, path)?;
        let manifest: Manifest =
            serde_json::from_value(value).map_err(|e| bad(format!("invalid manifest: {e}")))?;
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
            schema_version: SCHEMA_VERSION,
            dims,
            embedding_dtype: dtype.name().into(),
            tokenizer: Some(tokenizer.into()),
            num_samples: shards.iter().map(|s| s.num_samples).sum(),
            shards,
            metadata,
        };
        manifest.validate(Path::new(MANIFEST_FILE)).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        Ok(manifest)
    }

    /// Write `dir/manifest.json` atomically. Writing it is what makes a directory
    /// a store: write it last.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(MANIFEST_FILE);
        let mut text = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
        let mut ser = serde_json::Serializer::with_formatter(&mut text, formatter);
        self.serialize(&mut ser).map_err(|e| Error::InvalidArgument(format!("manifest: {e}")))?;
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
        let text = read_regular_to_string(&path, || Error::StoreNotFound { dir: dir.to_path_buf() })?;
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
        let total: usize = self.shards.iter().map(|s| s.num_samples).sum();
        if total != self.num_samples {
            return Err(bad(format!("num_samples is {} but the shards hold {total}", self.num_samples)));
        }
        let want: Vec<&str> = column_names(dtype);
        let mut seen = std::collections::HashSet::new();
        for (n, shard) in self.shards.iter().enumerate() {
            let name = &shard.file;
            if !is_plain_file_name(name) {
                return Err(bad(format!("shard {n}: file {name:?} must be a plain file name inside the store directory")));
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

/// Version gate shared by the manifest and the shard schema metadata.
pub fn check_version(found: u64, path: &Path) -> Result<()> {
    if found > SCHEMA_VERSION as u64 {
        return Err(Error::Version {
            path: path.into(),
            found: found.min(u32::MAX as u64) as u32,
            supported: SCHEMA_VERSION,
        });
    }
    if found == 0 {
        return Err(Error::format(path, "schema_version 0 does not exist"));
    }
    Ok(())
}

fn is_plain_file_name(name: &str) -> bool {
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
               "shards": [{{"file": "shard-00000.arrow", "num_samples": 3, "file_bytes": 100,
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
        let text = sample_json(2, "float16", false).replace("\"metadata\"", "\"new_thing\": 1, \"metadata\"");
        match Manifest::parse(&text, Path::new("m.json")) {
            Err(Error::Version { found: 2, supported: 1, .. }) => {}
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
    fn num_samples_mismatch_is_reported() {
        let text = sample_json(1, "float16", false).replacen("\"num_samples\": 3", "\"num_samples\": 4", 1);
        let err = Manifest::parse(&text, Path::new("m.json")).unwrap_err();
        assert!(err.to_string().contains("num_samples is 4 but the shards hold 3"), "{err}");
    }
}
