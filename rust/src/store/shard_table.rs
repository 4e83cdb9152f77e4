//! The store's shards as the reader needs them, from either schema: counts and
//! byte sizes for every shard at open (small: 16 bytes a shard), each shard's
//! `ShardEntry` (name and checksums) on demand. A schema-1 manifest lists every
//! entry inline; a schema-2 store keeps them in `shards.idx`, read a block of
//! entries (and, when the index stores names, of names) at a time when one of
//! them is first needed (docs/FORMAT.md).

use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use super::manifest::{hex64, Manifest, ShardEntry};
use super::schema::column_names;
use super::shard_index::{head_hash, parse_entries, parse_head, parse_names, IndexHead, IndexShape, BLOCK, INDEX_FILE};
use super::shard_writer::shard_file_name;
use crate::error::{Error, Result};

/// Reads a byte range of `shards.idx` (a local file, or ranged GETs of an object).
pub(crate) type RangeReader = Box<dyn Fn(Range<u64>) -> Result<Vec<u8>> + Send + Sync>;

pub(crate) struct ShardTable {
    /// `starts[n]` is the global index of shard n's first row; `starts[shards]` is the total.
    starts: Vec<u64>,
    file_bytes: Vec<u64>,
    entries: Entries,
}

enum Entries {
    /// Schema 1: every entry, from the manifest.
    Inline(Vec<ShardEntry>),
    /// Schema 2: entries decoded on demand, a block at a time.
    Indexed {
        shape: IndexShape,
        /// Where the index is, for messages.
        location: String,
        read: RangeReader,
        /// The head's name block offsets (empty: positional names).
        head: IndexHead,
        columns: Vec<&'static str>,
        blocks: Vec<OnceLock<Arc<[ShardEntry]>>>,
        /// With names: each block's names, read on their own (opening a shard needs its name, not its
        /// entry's checksums).
        names: Vec<OnceLock<Arc<[String]>>>,
    },
}

impl ShardTable {
    /// The table of a schema-1 manifest (its entries move into the table).
    pub fn inline(manifest: &mut Manifest) -> ShardTable {
        let shards = std::mem::take(&mut manifest.shards);
        let mut starts = Vec::with_capacity(shards.len() + 1);
        let mut total = 0u64;
        for e in &shards {
            starts.push(total);
            total += e.num_samples as u64; // overflow-checked by Manifest::parse
        }
        starts.push(total);
        let file_bytes = shards.iter().map(|e| e.file_bytes).collect();
        ShardTable { starts, file_bytes, entries: Entries::Inline(shards) }
    }

    /// The table of a schema-2 store: reads and checks the index's head now
    /// (`location` names the index in messages), entries later.
    pub fn indexed(manifest: &Manifest, location: String, read: RangeReader) -> Result<ShardTable> {
        let bad = |msg: String| Error::format(&location, msg);
        let index = manifest.shard_index.as_ref().expect("schema 2 manifests have an index (validated)");
        let dtype = manifest.dtype();
        let columns = column_names(dtype);
        let shape =
            IndexShape { shards: manifest.num_shards.unwrap_or(0), columns: columns.len() as u32, names: index.names };
        // Without names the size is exact; names add a section whose size the head states (checked below).
        let fits = shape.checked_fixed_bytes().filter(|&fixed| {
            if shape.names {
                fixed <= index.file_bytes
            } else {
                fixed == index.file_bytes
            }
        });
        if fits.is_none() {
            return Err(bad(format!(
                "the manifest says the index is {} bytes; an index of {} shards {} {}",
                index.file_bytes,
                shape.shards,
                if shape.names { "with names is at least" } else { "is" },
                shape.checked_fixed_bytes().map_or("unaddressable".into(), |b| b.to_string())
            )));
        }
        let head = read(shape.head_range())?;
        let want = u64::from_str_radix(&index.head_xxh3, 16).expect("validated by Manifest::parse");
        if head_hash(&head) != want {
            return Err(bad(format!(
                "head checksum mismatch (expected {}, found {})",
                index.head_xxh3,
                hex64(head_hash(&head))
            )));
        }
        let min_row = manifest.dims().min_row_bytes(dtype.itemsize()).ok_or_else(|| bad("dims overflow".into()))?;
        let mut head = parse_head(&head, shape, manifest.num_samples as u64, min_row).map_err(bad)?;
        if shape.names && shape.fixed_bytes() + head.name_blocks.last().copied().unwrap_or(0) != index.file_bytes {
            return Err(bad(format!(
                "the names section ends at byte {}, the manifest says the index is {} bytes",
                shape.fixed_bytes() + head.name_blocks.last().copied().unwrap_or(0),
                index.file_bytes
            )));
        }
        let blocks = (0..shape.blocks()).map(|_| OnceLock::new()).collect();
        let names = (0..if shape.names { shape.blocks() } else { 0 }).map(|_| OnceLock::new()).collect();
        let (starts, file_bytes) = (std::mem::take(&mut head.starts), std::mem::take(&mut head.file_bytes));
        let entries = Entries::Indexed { shape, location, read, head, columns, blocks, names };
        Ok(ShardTable { starts, file_bytes, entries })
    }

    pub fn len(&self) -> usize {
        self.file_bytes.len()
    }

    pub fn starts(&self) -> &[u64] {
        &self.starts
    }

    pub fn num_samples(&self, n: usize) -> usize {
        (self.starts[n + 1] - self.starts[n]) as usize
    }

    pub fn file_bytes(&self, n: usize) -> u64 {
        self.file_bytes[n]
    }

    /// Shard n's file name (schema 2: from the index's names, read with its block;
    /// without names, implied by its position).
    pub fn file_name(&self, n: usize) -> Result<String> {
        match &self.entries {
            Entries::Inline(e) => Ok(e[n].file.clone()),
            Entries::Indexed { shape, .. } if shape.names => {
                let b = n as u64 / BLOCK;
                Ok(self.name_block(b)?[(n as u64 - b * BLOCK) as usize].clone())
            }
            Entries::Indexed { .. } => Ok(shard_file_name(n)),
        }
    }

    /// Shard n for messages: its file name, or its number when the name cannot be read.
    pub fn label(&self, n: usize) -> String {
        self.file_name(n).unwrap_or_else(|_| format!("shard {n}"))
    }

    /// Shard n's file name in the remote cache: its own name for schema 1, its
    /// positional name for schema 2, so that the cache's folder scan finds a
    /// file's shard (`cache_position_of`) without reading the index's names.
    #[cfg_attr(not(feature = "remote"), allow(dead_code))]
    pub fn cache_name(&self, n: usize) -> String {
        match &self.entries {
            Entries::Inline(e) => e[n].file.clone(),
            Entries::Indexed { .. } => shard_file_name(n),
        }
    }

    /// Which shard the cache file `name` holds (`cache_name`), if any.
    #[cfg_attr(not(feature = "remote"), allow(dead_code))]
    pub fn cache_position_of(&self, name: &str) -> Option<usize> {
        match &self.entries {
            Entries::Inline(e) => e.iter().position(|e| e.file == name),
            Entries::Indexed { .. } => {
                let digits = name.strip_prefix("shard-")?.strip_suffix(".arrow")?;
                let n: usize = digits.parse().ok()?;
                (n < self.len() && shard_file_name(n) == name).then_some(n)
            }
        }
    }

    /// Shard n's full entry (name, counts, checksums); reads its index block on first use.
    pub fn entry(&self, n: usize) -> Result<ShardEntry> {
        match &self.entries {
            Entries::Inline(e) => Ok(e[n].clone()),
            Entries::Indexed { shape, location, read, columns, blocks, .. } => {
                let b = n as u64 / BLOCK;
                let block = match blocks[b as usize].get() {
                    Some(block) => block.clone(),
                    None => {
                        let range = shape.block_shards(b);
                        let bytes = read(shape.entries_range(range.clone()))?;
                        let decoded =
                            parse_entries(&bytes, *shape, range.start).map_err(|m| Error::format(location, m))?;
                        let names: Vec<String> = match shape.names {
                            true => self.name_block(b)?.to_vec(),
                            false => range.clone().map(|m| shard_file_name(m as usize)).collect(),
                        };
                        let mut names = names.into_iter();
                        let entries: Arc<[ShardEntry]> = decoded
                            .into_iter()
                            .enumerate()
                            .map(|(i, e)| {
                                let m = (range.start as usize) + i;
                                ShardEntry {
                                    file: names.next().expect("one name per entry"),
                                    num_samples: self.num_samples(m),
                                    file_bytes: self.file_bytes[m],
                                    file_xxh3: hex64(e.file_xxh3),
                                    columns: columns
                                        .iter()
                                        .zip(&e.columns)
                                        .map(|(c, x)| (c.to_string(), hex64(*x)))
                                        .collect(),
                                }
                            })
                            .collect();
                        blocks[b as usize].get_or_init(|| entries).clone()
                    }
                };
                Ok(block[(n as u64 - b * BLOCK) as usize].clone())
            }
        }
    }

    /// Name block `b` of an index with names: read and checked on first use, then kept.
    fn name_block(&self, b: u64) -> Result<Arc<[String]>> {
        let Entries::Indexed { shape, location, read, head, names, .. } = &self.entries else {
            unreachable!("only indexed tables with names have name blocks")
        };
        if let Some(block) = names[b as usize].get() {
            return Ok(block.clone());
        }
        let bytes = read(shape.names_range(head, b))?;
        let decoded: Arc<[String]> = parse_names(&bytes, *shape, b).map_err(|m| Error::format(location, m))?.into();
        Ok(names[b as usize].get_or_init(|| decoded).clone())
    }
}

/// Read byte ranges of a local index file of `file_bytes` bytes (positioned reads:
/// only what is asked is read).
pub(crate) fn local_range_reader(path: &Path, file_bytes: u64) -> Result<RangeReader> {
    use std::os::unix::fs::FileExt;
    let file = super::files::open_regular(path, || {
        Error::format(path, format!("{INDEX_FILE} listed in the manifest is missing"))
    })?;
    let actual = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if actual != file_bytes {
        return Err(Error::format(path, format!("file is {actual} bytes, the manifest says {file_bytes}")));
    }
    let path = path.to_path_buf();
    Ok(Box::new(move |range: Range<u64>| {
        let mut buf = vec![0u8; (range.end - range.start) as usize];
        file.read_exact_at(&mut buf, range.start).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                Error::format(&path, format!("truncated: bytes {range:?} are missing"))
            }
            _ => Error::io(&path, e),
        })?;
        Ok(buf)
    }))
}
