//! One memory-mapped shard: parsed zero-copy with arrow-ipc's `FileDecoder`,
//! validated once at open, then served as plain slices of the mapping.

use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float16Type, Float32Type, Int8Type, UInt16Type, UInt32Type};
use arrow_array::{Array, ArrayRef, FixedSizeBinaryArray, LargeBinaryArray, RecordBatch, StringArray};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_data::ArrayData;
use arrow_ipc::reader::FileDecoder;
use arrow_schema::Schema;
use memmap2::{Advice, Mmap};

use super::caption_sets::{check_caption_sets, resolved_caption_sets, CaptionSet};
use super::checksum::{self, ShardChecksums};
use super::files::open_regular;
use super::layout::{read_layout, FileLayout};
use super::manifest::check_version_up_to;
use super::schema::{check_fields, col, meta_keys, MAGIC};
use super::{Dims, EmbeddingDtype};
use crate::aug::{AugParams, AUG_RECORD_SIZE};
use crate::error::{panic_message, Error, Result};

/// How the embedding columns will be read, for the kernel's read-ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessPattern {
    /// Rows in random order (training): no read-ahead. The default.
    Random,
    /// One pass in file order (export, full scans): aggressive read-ahead.
    Sequential,
    /// The kernel's default.
    Normal,
}

fn is_embedding_column(name: &str) -> bool {
    matches!(name, col::IMAGE_EMB | col::TEXT_EMB | col::IMAGE_EMB_SCALE | col::TEXT_EMB_SCALE)
}

/// What the manifest says a shard must be.
#[derive(Clone, Copy, Debug)]
pub struct ShardExpect<'a> {
    pub dims: Dims,
    pub dtype: EmbeddingDtype,
    /// The manifest's `caption_sets` (`None` when it has none): the shard's metadata must say the same.
    pub caption_sets: Option<&'a [CaptionSet]>,
    pub num_samples: usize,
    pub file_bytes: u64,
}

/// Token lists of one `list<uint16>` column (or the child of `syn_tokens`).
struct TokenLists {
    offsets: OffsetBuffer<i32>,
    values: ScalarBuffer<u16>,
}

impl TokenLists {
    fn get(&self, i: usize) -> &[u16] {
        let (start, end) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
        &self.values[start..end]
    }
}

/// An open, validated shard.
pub struct Shard {
    path: PathBuf,
    mmap: Arc<Mmap>,
    num_rows: usize,
    dims: Dims,
    dtype: EmbeddingDtype,
    /// The `caption_sets` of the schema metadata (`None`: the plain case, one set `syn_text`).
    caption_sets: Option<Vec<CaptionSet>>,
    column_ranges: Vec<(String, Range<usize>)>,
    uid: StringArray,
    image: LargeBinaryArray,
    width: ScalarBuffer<u32>,
    height: ScalarBuffer<u32>,
    orig_width: ScalarBuffer<u32>,
    orig_height: ScalarBuffer<u32>,
    caption: StringArray,
    caption_tokens: TokenLists,
    /// Child of the fixed-size list: entry `row * S + s`.
    syn_captions: StringArray,
    /// Child of the fixed-size list: entry `row * S + s`.
    syn_tokens: TokenLists,
    aug: Buffer,
    image_emb: Buffer,
    text_emb: Buffer,
    image_emb_scale: Option<ScalarBuffer<f32>>,
    text_emb_scale: Option<ScalarBuffer<f32>>,
    sha256: FixedSizeBinaryArray,
    flags: ScalarBuffer<u32>,
}

impl Shard {
    /// Map and validate a shard. With `expect`, it must also match the manifest;
    /// without, dims and dtype come from the shard's own schema metadata.
    pub fn open(path: &Path, expect: Option<&ShardExpect>) -> Result<Shard> {
        let file = open_regular(path, || Error::format(path, "shard file is missing"))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if let Some(x) = expect {
            if len != x.file_bytes {
                return Err(Error::format(
                    path,
                    format!("file is {len} bytes but the manifest says {} (truncated or replaced)", x.file_bytes),
                ));
            }
        }
        if len == 0 {
            return Err(Error::format(path, "file is empty"));
        }
        // SAFETY: a store is immutable once written; mapping a file that another
        // process truncates is undefined (SIGBUS), which FORMAT.md documents.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let mmap = Arc::new(mmap);
        // Arrow asserts (panics) on some malformed inputs; none may escape to the caller.
        let shard = match catch_unwind(AssertUnwindSafe(|| Shard::parse(path, mmap.clone(), expect))) {
            Ok(result) => result?,
            Err(panic) => return Err(Error::format(path, format!("malformed Arrow data ({})", panic_message(&panic)))),
        };
        shard.advise(AccessPattern::Random);
        Ok(shard)
    }

    /// Tell the kernel how the embedding columns will be read (best effort).
    /// `Random` (the default after open) turns off read-ahead there, so a row read
    /// from a cold cache fetches its own pages, not megabytes around them; the other
    /// columns (images, text) keep normal read-ahead.
    pub fn advise(&self, pattern: AccessPattern) {
        let advice = match pattern {
            AccessPattern::Random => Advice::Random,
            AccessPattern::Sequential => Advice::Sequential,
            AccessPattern::Normal => Advice::Normal,
        };
        for (name, range) in &self.column_ranges {
            if is_embedding_column(name) && !range.is_empty() {
                let _ = self.mmap.advise_range(advice, range.start, range.len());
            }
        }
    }

    fn parse(path: &Path, mmap: Arc<Mmap>, expect: Option<&ShardExpect>) -> Result<Shard> {
        let bad = |msg: String| Error::format(path, msg);
        let layout = read_layout(&mmap).map_err(bad)?;
        let (dims, dtype, caption_sets) = read_identity(&layout.schema, path)?;
        if let Some(x) = expect {
            if caption_sets.as_deref() != x.caption_sets {
                let show = |sets: Option<&[CaptionSet]>| format!("{:?}", resolved_caption_sets(sets, dims.s));
                return Err(bad(format!(
                    "shard has caption sets {}, the manifest says {}",
                    show(caption_sets.as_deref()),
                    show(x.caption_sets)
                )));
            }
            if dims != x.dims || dtype != x.dtype {
                return Err(bad(format!(
                    "shard has J={} S={} K={} D={} {}, the manifest says J={} S={} K={} D={} {}",
                    dims.j, dims.s, dims.k, dims.d, dtype, x.dims.j, x.dims.s, x.dims.k, x.dims.d, x.dtype
                )));
            }
            if layout.num_rows != x.num_samples {
                return Err(bad(format!("shard has {} rows, the manifest says {}", layout.num_rows, x.num_samples)));
            }
        }
        check_fields(&layout.schema, dims, dtype).map_err(bad)?;
        let column_ranges = checksum::column_ranges(&layout).map_err(bad)?;
        let batch = decode_batch(&mmap, &layout).map_err(|e| bad(format!("invalid record batch: {e}")))?;
        let mut shard = Columns { batch: &batch, path }.into_shard(path, mmap.clone(), dims, dtype, column_ranges)?;
        shard.caption_sets = caption_sets;
        Ok(shard)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn len(&self) -> usize {
        self.num_rows
    }
    pub fn is_empty(&self) -> bool {
        self.num_rows == 0
    }
    pub fn dims(&self) -> Dims {
        self.dims
    }
    pub fn dtype(&self) -> EmbeddingDtype {
        self.dtype
    }
    /// The shard's caption sets, as its schema metadata lists them (one set `syn_text` when it lists none).
    pub fn caption_sets(&self) -> Vec<CaptionSet> {
        resolved_caption_sets(self.caption_sets.as_deref(), self.dims.s)
    }
    /// The whole mapped file.
    pub fn bytes(&self) -> &[u8] {
        &self.mmap
    }
    pub fn column_ranges(&self) -> &[(String, Range<usize>)] {
        &self.column_ranges
    }
    pub fn checksums(&self) -> ShardChecksums {
        checksum::compute(&self.mmap, &self.column_ranges)
    }

    // Row accessors: `row < len()` is the caller's contract (checked in debug builds).
    pub fn uid(&self, row: usize) -> &str {
        self.uid.value(row)
    }
    pub fn image_bytes(&self, row: usize) -> &[u8] {
        self.image.value(row)
    }
    pub fn image_size(&self, row: usize) -> (u32, u32) {
        (self.width[row], self.height[row])
    }
    pub fn orig_size(&self, row: usize) -> (u32, u32) {
        (self.orig_width[row], self.orig_height[row])
    }
    pub fn caption(&self, row: usize) -> &str {
        self.caption.value(row)
    }
    pub fn caption_tokens(&self, row: usize) -> &[u16] {
        self.caption_tokens.get(row)
    }
    pub fn syn_caption(&self, row: usize, s: usize) -> &str {
        debug_assert!(s < self.dims.s);
        self.syn_captions.value(row * self.dims.s + s)
    }
    pub fn syn_tokens(&self, row: usize, s: usize) -> &[u16] {
        debug_assert!(s < self.dims.s);
        self.syn_tokens.get(row * self.dims.s + s)
    }
    /// All J records of a row, 40 bytes each.
    pub fn aug_bytes(&self, row: usize) -> &[u8] {
        let n = self.dims.j * AUG_RECORD_SIZE;
        &self.aug[row * n..(row + 1) * n]
    }
    pub fn aug(&self, row: usize, j: usize) -> AugParams {
        debug_assert!(j < self.dims.j);
        let at = (row * self.dims.j + j) * AUG_RECORD_SIZE;
        AugParams::decode(&self.aug[at..at + AUG_RECORD_SIZE]).expect("aug records are validated at open")
    }
    /// `rows` consecutive embedding rows starting at row `first` of a per-sample block.
    fn emb_rows<'a>(&self, buf: &'a Buffer, rows_per_sample: usize, row: usize, first: usize, rows: usize) -> &'a [u8] {
        let row_bytes = self.dims.row_len() * self.dtype.itemsize();
        let start = (row * rows_per_sample + first) * row_bytes;
        &buf[start..start + rows * row_bytes]
    }
    pub fn image_emb_raw(&self, row: usize, j: usize) -> &[u8] {
        debug_assert!(j < self.dims.j);
        self.emb_rows(&self.image_emb, self.dims.j, row, j, 1)
    }
    pub fn image_embs_raw(&self, row: usize) -> &[u8] {
        self.emb_rows(&self.image_emb, self.dims.j, row, 0, self.dims.j)
    }
    pub fn text_emb_raw(&self, row: usize, t: usize) -> &[u8] {
        debug_assert!(t <= self.dims.s);
        self.emb_rows(&self.text_emb, self.dims.text_rows(), row, t, 1)
    }
    pub fn text_embs_raw(&self, row: usize) -> &[u8] {
        self.emb_rows(&self.text_emb, self.dims.text_rows(), row, 0, self.dims.text_rows())
    }
    /// K scales of image row (row, j); empty unless the dtype is int8.
    pub fn image_emb_scale(&self, row: usize, j: usize) -> &[f32] {
        let k = self.dims.k;
        match &self.image_emb_scale {
            Some(s) => &s[(row * self.dims.j + j) * k..(row * self.dims.j + j + 1) * k],
            None => &[],
        }
    }
    pub fn text_emb_scale(&self, row: usize, t: usize) -> &[f32] {
        let (k, rows) = (self.dims.k, self.dims.text_rows());
        match &self.text_emb_scale {
            Some(s) => &s[(row * rows + t) * k..(row * rows + t + 1) * k],
            None => &[],
        }
    }
    /// All J*K image scales of a row (row-major [J, K]); empty unless int8.
    pub fn image_emb_scales(&self, row: usize) -> &[f32] {
        let n = self.dims.j * self.dims.k;
        self.image_emb_scale.as_ref().map_or(&[], |s| &s[row * n..(row + 1) * n])
    }
    /// All (1+S)*K text scales of a row (row-major [1+S, K]); empty unless int8.
    pub fn text_emb_scales(&self, row: usize) -> &[f32] {
        let n = self.dims.text_rows() * self.dims.k;
        self.text_emb_scale.as_ref().map_or(&[], |s| &s[row * n..(row + 1) * n])
    }
    pub fn sha256(&self, row: usize) -> Option<&[u8; 32]> {
        if self.sha256.is_null(row) {
            None
        } else {
            Some(self.sha256.value(row).try_into().expect("fixed_size_binary(32)"))
        }
    }
    pub fn flags(&self, row: usize) -> u32 {
        self.flags[row]
    }
}

/// Read magic, version, dims, dtype and caption sets from the shard's schema metadata.
fn read_identity(schema: &Schema, path: &Path) -> Result<(Dims, EmbeddingDtype, Option<Vec<CaptionSet>>)> {
    let bad = |msg: String| Error::format(path, msg);
    let meta = schema.metadata();
    let get = |key: &str| meta.get(key).ok_or_else(|| bad(format!("schema metadata lacks '{key}': not a store shard")));
    let magic = get(meta_keys::MAGIC)?;
    if magic != MAGIC {
        return Err(bad(format!("schema metadata magic is {magic:?}, expected {MAGIC:?}: not a store shard")));
    }
    let version_text = get(meta_keys::SCHEMA_VERSION)?;
    let version: u64 =
        version_text.parse().map_err(|_| bad(format!("schema_version {version_text:?} is not an integer")))?;
    // The shard layout has its own version (unchanged by the schema-2 manifest).
    check_version_up_to(version, super::schema::SHARD_SCHEMA_VERSION, path)?;
    let size = |key: &str| -> Result<usize> {
        let text = get(key)?;
        text.parse().map_err(|_| bad(format!("schema metadata {key}={text:?} is not a size")))
    };
    let dims = Dims { j: size(meta_keys::J)?, s: size(meta_keys::S)?, k: size(meta_keys::K)?, d: size(meta_keys::D)? };
    dims.check().map_err(bad)?;
    let dtype_text = get(meta_keys::EMBEDDING_DTYPE)?;
    let dtype = EmbeddingDtype::parse(dtype_text)
        .ok_or_else(|| bad(format!("embedding_dtype {dtype_text:?} is not one of float16, bfloat16, int8")))?;
    let caption_sets = match meta.get(meta_keys::CAPTION_SETS) {
        None => None,
        Some(text) => {
            let sets: Vec<CaptionSet> = serde_json::from_str(text)
                .map_err(|e| bad(format!("schema metadata caption_sets {text:?} is not a list of sets: {e}")))?;
            check_caption_sets(&sets, dims.s).map_err(|e| bad(format!("schema metadata: {e}")))?;
            Some(sets)
        }
    };
    Ok((dims, dtype, caption_sets))
}

/// Zero-copy decode: the arrays' buffers point into the mapping, which they keep alive.
fn decode_batch(mmap: &Arc<Mmap>, layout: &FileLayout) -> std::result::Result<RecordBatch, arrow_schema::ArrowError> {
    let ptr = NonNull::new(mmap.as_ptr() as *mut u8).expect("a mapping is never null");
    // SAFETY: the pointer and length describe the mapping, and the Arc keeps it mapped
    // for as long as any Buffer derived from it lives.
    let whole = unsafe { Buffer::from_custom_allocation(ptr, mmap.len(), mmap.clone()) };
    let block = &layout.block;
    let block_len = block.metaDataLength() as usize + block.bodyLength() as usize;
    let data = whole.slice_with_length(block.offset() as usize, block_len);
    // Alignment is required rather than repaired so that reads stay zero-copy.
    let decoder = FileDecoder::new(Arc::new(layout.schema.clone()), layout.version).with_require_alignment(true);
    decoder.read_record_batch(block, &data)?.ok_or_else(|| arrow_schema::ArrowError::IpcError("empty message".into()))
}

/// Column extraction and the store-specific checks Arrow's own validation does not make.
struct Columns<'a> {
    batch: &'a RecordBatch,
    path: &'a Path,
}

impl Columns<'_> {
    fn bad(&self, msg: String) -> Error {
        Error::format(self.path, msg)
    }

    fn get(&self, name: &str, nullable: bool) -> Result<&ArrayRef> {
        let array = self.batch.column_by_name(name).ok_or_else(|| self.bad(format!("no column '{name}'")))?;
        let data = array.to_data();
        let top_nulls = data.null_count();
        if (!nullable && top_nulls > 0) || data.child_data().iter().any(has_nulls) {
            return Err(self.bad(format!("column '{name}' contains nulls where the format allows none")));
        }
        if array.offset() != 0 {
            return Err(self.bad(format!("column '{name}' has a non-zero array offset")));
        }
        Ok(array)
    }

    fn u32s(&self, name: &str) -> Result<ScalarBuffer<u32>> {
        Ok(self.get(name, false)?.as_primitive::<UInt32Type>().values().clone())
    }

    fn tokens(&self, array: &ArrayRef) -> TokenLists {
        let list = array.as_list::<i32>();
        TokenLists {
            offsets: list.offsets().clone(),
            values: list.values().as_primitive::<UInt16Type>().values().clone(),
        }
    }

    /// The flat child of a fixed-size list column, which must hold exactly rows*size entries.
    fn fixed_child(&self, name: &str, rows: usize) -> Result<ArrayRef> {
        let list = self.get(name, false)?.as_fixed_size_list();
        let want = rows * list.value_length() as usize;
        let child = list.values().clone();
        if child.len() != want || child.offset() != 0 {
            return Err(self.bad(format!("column '{name}' holds {} values, expected {want}", child.len())));
        }
        Ok(child)
    }

    /// Raw little-endian bytes of a fixed-size list of embedding elements.
    fn emb_bytes(&self, name: &str, rows: usize, dtype: EmbeddingDtype) -> Result<Buffer> {
        let child = self.fixed_child(name, rows)?;
        Ok(match dtype {
            EmbeddingDtype::Float16 => child.as_primitive::<Float16Type>().values().inner().clone(),
            EmbeddingDtype::BFloat16 => child.as_primitive::<UInt16Type>().values().inner().clone(),
            EmbeddingDtype::Int8 => child.as_primitive::<Int8Type>().values().inner().clone(),
        })
    }

    fn scales(&self, name: &str, rows: usize, dtype: EmbeddingDtype) -> Result<Option<ScalarBuffer<f32>>> {
        if !dtype.has_scales() {
            return Ok(None);
        }
        let child = self.fixed_child(name, rows)?;
        let scales = child.as_primitive::<Float32Type>().values().clone();
        if let Some(i) = scales.iter().position(|s| !s.is_finite() || *s < 0.0) {
            return Err(
                self.bad(format!("column '{name}': value {i} ({}) is not a finite non-negative scale", scales[i]))
            );
        }
        Ok(Some(scales))
    }

    fn into_shard(
        self,
        path: &Path,
        mmap: Arc<Mmap>,
        dims: Dims,
        dtype: EmbeddingDtype,
        column_ranges: Vec<(String, Range<usize>)>,
    ) -> Result<Shard> {
        let rows = self.batch.num_rows();
        let syn_captions = self.fixed_child(col::SYN_CAPTIONS, rows)?.as_string::<i32>().clone();
        let syn_tokens = self.tokens(&self.fixed_child(col::SYN_TOKENS, rows)?);
        let aug_array = self.get(col::AUG, false)?.as_fixed_size_binary();
        let aug = aug_array.values().clone();
        if aug.len() != rows * dims.j * AUG_RECORD_SIZE {
            return Err(self.bad(format!(
                "column 'aug' holds {} bytes, expected {}",
                aug.len(),
                rows * dims.j * AUG_RECORD_SIZE
            )));
        }
        check_aug_records(&aug, dims.j).map_err(|m| self.bad(format!("column 'aug': {m}")))?;
        let shard = Shard {
            path: path.to_path_buf(),
            num_rows: rows,
            dims,
            dtype,
            caption_sets: None, // set by `parse` from the schema metadata
            column_ranges,
            uid: self.get(col::UID, false)?.as_string::<i32>().clone(),
            image: self.get(col::IMAGE, false)?.as_binary::<i64>().clone(),
            width: self.u32s(col::WIDTH)?,
            height: self.u32s(col::HEIGHT)?,
            orig_width: self.u32s(col::ORIG_WIDTH)?,
            orig_height: self.u32s(col::ORIG_HEIGHT)?,
            caption: self.get(col::CAPTION, false)?.as_string::<i32>().clone(),
            caption_tokens: self.tokens(self.get(col::CAPTION_TOKENS, false)?),
            syn_captions,
            syn_tokens,
            aug,
            image_emb: self.emb_bytes(col::IMAGE_EMB, rows, dtype)?,
            text_emb: self.emb_bytes(col::TEXT_EMB, rows, dtype)?,
            image_emb_scale: self.scales(col::IMAGE_EMB_SCALE, rows, dtype)?,
            text_emb_scale: self.scales(col::TEXT_EMB_SCALE, rows, dtype)?,
            sha256: self.get(col::SHA256, true)?.as_fixed_size_binary().clone(),
            flags: self.u32s(col::FLAGS)?,
            mmap,
        };
        Ok(shard)
    }
}

fn has_nulls(data: &ArrayData) -> bool {
    data.null_count() > 0 || data.child_data().iter().any(has_nulls)
}

/// Every record must be valid (`AugParams::validate`: every byte, padding included).
pub(crate) fn check_aug_records(bytes: &[u8], j: usize) -> std::result::Result<(), String> {
    for (n, rec) in bytes.chunks_exact(AUG_RECORD_SIZE).enumerate() {
        if let Err(why) = AugParams::validate(rec) {
            return Err(format!("row {} record {} is not a valid augmentation record: {why}", n / j, n % j));
        }
    }
    Ok(())
}
