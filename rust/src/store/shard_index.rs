//! `shards.idx`: the schema-2 shard index (docs/FORMAT.md, "Schema version 2").
//!
//! Little-endian, columnar: a 32-byte header, the **head** (`starts[N+1]`, then
//! `file_bytes[N]`), read whole at open and covered by the manifest's `head_xxh3`,
//! then N fixed-size **entries** (whole-file and per-column xxh3 of one shard,
//! with the entry's own xxh3), each read only when its shard is first used; then,
//! optionally, the **names** section (shards' file names, a checksummed block of
//! `BLOCK` names at a time, read like the entries). Without it, shard files are
//! named by position (`shard_file_name(n)`).

use std::ops::Range;

use xxhash_rust::xxh3::xxh3_64;

/// The index file inside a schema-2 store.
pub const INDEX_FILE: &str = "shards.idx";
const INDEX_MAGIC: &[u8; 8] = b"MCFLIDX\0";
const INDEX_VERSION: u32 = 2;
const HEADER_BYTES: u64 = 32;
/// Header flag (bytes 24..32): the index has a names section.
const FLAG_NAMES: u64 = 1;
/// Shards per block of entries and of names: what one lazy read decodes.
pub const BLOCK: u64 = 1024;
/// Bytes of a name block beyond its names: a u32 length per name, the block's xxh3.
const NAME_LEN_BYTES: u64 = 4;
const NAME_BLOCK_HASH_BYTES: u64 = 8;

/// What an entry records about one shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub file_xxh3: u64,
    /// xxh3-64 of each column's byte range, in the shard schema's column order.
    pub columns: Vec<u64>,
}

/// Where things are in an index of `shards` shards with `columns` checksummed columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexShape {
    pub shards: u64,
    pub columns: u32,
    /// Whether the index stores the shards' file names (a names section).
    pub names: bool,
}

impl IndexShape {
    /// Blocks of `BLOCK` shards.
    pub fn blocks(&self) -> u64 {
        self.shards.div_ceil(BLOCK)
    }
    /// Shards of block `b`.
    pub fn block_shards(&self, b: u64) -> Range<u64> {
        b * BLOCK..((b + 1) * BLOCK).min(self.shards)
    }
    /// Header and head: what open reads (with names: the name blocks' offsets too).
    pub fn head_range(&self) -> Range<u64> {
        let name_blocks = if self.names { self.blocks() + 1 } else { 0 };
        0..HEADER_BYTES + 8 * (2 * self.shards + 1 + name_blocks)
    }
    pub fn entry_bytes(&self) -> u64 {
        8 * (self.columns as u64 + 2)
    }
    /// Entries `shards` (a range of shard numbers).
    pub fn entries_range(&self, shards: Range<u64>) -> Range<u64> {
        let base = self.head_range().end;
        base + shards.start * self.entry_bytes()..base + shards.end * self.entry_bytes()
    }
    /// Bytes before the names section (the whole index when it has none).
    pub fn fixed_bytes(&self) -> u64 {
        self.entries_range(0..self.shards).end
    }
    /// Name block `b`'s bytes in the file, from the head's name block offsets.
    pub fn names_range(&self, head: &IndexHead, b: u64) -> Range<u64> {
        let base = self.fixed_bytes();
        base + head.name_blocks[b as usize]..base + head.name_blocks[b as usize + 1]
    }
    /// `fixed_bytes` of this shape, or `None` when it cannot be addressed
    /// (checked before anything is sized from a claimed shard count).
    pub fn checked_fixed_bytes(&self) -> Option<u64> {
        let name_blocks = if self.names { self.shards.div_ceil(BLOCK) + 1 } else { 0 };
        let head =
            self.shards.checked_mul(2)?.checked_add(1 + name_blocks)?.checked_mul(8)?.checked_add(HEADER_BYTES)?;
        let entries = self.shards.checked_mul(8 * (self.columns as u64 + 2))?;
        head.checked_add(entries)
    }
}

/// The bytes of an index: `sizes[n]` rows, `file_bytes[n]` bytes and `entries[n]` for shard n,
/// and `names[n]` as its file name when given (checked: plain, unique; `None` = positional names).
pub fn encode_index(
    sizes: &[u64],
    file_bytes: &[u64],
    entries: &[IndexEntry],
    columns: u32,
    names: Option<&[String]>,
) -> Result<Vec<u8>, String> {
    assert!(sizes.len() == file_bytes.len() && sizes.len() == entries.len());
    assert!(entries.iter().all(|e| e.columns.len() == columns as usize));
    let shape = IndexShape { shards: sizes.len() as u64, columns, names: names.is_some() };
    let name_blocks = match names {
        Some(names) => {
            assert_eq!(names.len(), sizes.len());
            let mut seen = std::collections::HashSet::with_capacity(names.len());
            for (n, name) in names.iter().enumerate() {
                check_name(name, n as u64)?;
                if !seen.insert(name.as_str()) {
                    return Err(format!("shard {n}: file name {name:?} is listed twice"));
                }
            }
            (0..shape.blocks()).map(|b| encode_name_block(&names[range_usize(shape.block_shards(b))], b)).collect()
        }
        None => Vec::new(),
    };
    let mut out = Vec::with_capacity(shape.fixed_bytes() as usize);
    out.extend_from_slice(INDEX_MAGIC);
    out.extend_from_slice(&INDEX_VERSION.to_le_bytes());
    out.extend_from_slice(&columns.to_le_bytes());
    out.extend_from_slice(&shape.shards.to_le_bytes());
    out.extend_from_slice(&(if shape.names { FLAG_NAMES } else { 0 }).to_le_bytes());
    let mut start = 0u64;
    out.extend_from_slice(&start.to_le_bytes());
    for &n in sizes {
        start += n;
        out.extend_from_slice(&start.to_le_bytes());
    }
    for &b in file_bytes {
        out.extend_from_slice(&b.to_le_bytes());
    }
    if shape.names {
        let mut offset = 0u64;
        out.extend_from_slice(&offset.to_le_bytes());
        for block in &name_blocks {
            offset += block.len() as u64;
            out.extend_from_slice(&offset.to_le_bytes());
        }
    }
    for (n, e) in entries.iter().enumerate() {
        let at = out.len();
        out.extend_from_slice(&e.file_xxh3.to_le_bytes());
        for c in &e.columns {
            out.extend_from_slice(&c.to_le_bytes());
        }
        let own = entry_hash(&out[at..], n as u64);
        out.extend_from_slice(&own.to_le_bytes());
    }
    debug_assert_eq!(out.len() as u64, shape.fixed_bytes());
    for block in name_blocks {
        out.extend_from_slice(&block);
    }
    Ok(out)
}

fn range_usize(r: Range<u64>) -> Range<usize> {
    r.start as usize..r.end as usize
}

/// Name block `b`: a u32 byte length per name, the names' UTF-8 bytes, then the
/// xxh3 of those bytes followed by b as u64 (so a moved block is refused too).
fn encode_name_block(names: &[String], b: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for name in names {
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
    }
    for name in names {
        out.extend_from_slice(name.as_bytes());
    }
    let own = entry_hash(&out, b);
    out.extend_from_slice(&own.to_le_bytes());
    out
}

/// A stored shard name is a plain file name inside the store directory (the rule
/// schema 1 applies to its `file`s: `manifest::is_plain_file_name`).
fn check_name(name: &str, n: u64) -> Result<(), String> {
    if super::manifest::is_plain_file_name(name) {
        Ok(())
    } else {
        Err(format!("shard {n}: file name {name:?} must be a plain file name inside the store directory"))
    }
}

/// Check and decode name block `b` (`bytes` = `shape.names_range(head, b)` of the file):
/// its checksum and position, UTF-8, each name plain and unique within the block.
pub fn parse_names(bytes: &[u8], shape: IndexShape, b: u64) -> Result<Vec<String>, String> {
    let shards = shape.block_shards(b);
    let k = (shards.end - shards.start) as usize;
    let lens_end = k * NAME_LEN_BYTES as usize;
    if bytes.len() < lens_end + NAME_BLOCK_HASH_BYTES as usize {
        return Err(format!("name block {b} is {} bytes, too short for {k} names", bytes.len()));
    }
    let (body, own) = bytes.split_at(bytes.len() - NAME_BLOCK_HASH_BYTES as usize);
    if entry_hash(body, b) != u64_at(own, 0) {
        return Err(format!("name block {b} is damaged or out of place (its xxh3 does not match)"));
    }
    let mut names = Vec::with_capacity(k);
    let mut at = lens_end;
    let mut seen = std::collections::HashSet::with_capacity(k);
    for i in 0..k {
        let n = shards.start + i as u64;
        let len = u32::from_le_bytes(body[4 * i..4 * i + 4].try_into().expect("4 bytes")) as usize;
        let end = at.checked_add(len).filter(|&e| e <= body.len()).ok_or_else(|| {
            format!("name block {b}: the name of shard {n} runs past the block's {} bytes", body.len())
        })?;
        let name = std::str::from_utf8(&body[at..end])
            .map_err(|_| format!("shard {n}: file name is not valid UTF-8"))?
            .to_string();
        check_name(&name, n)?;
        if !seen.insert(name.clone()) {
            return Err(format!("shard {n}: file name {name:?} is listed twice"));
        }
        names.push(name);
        at = end;
    }
    if at != body.len() {
        return Err(format!("name block {b}: {} bytes after its last name", body.len() - at));
    }
    Ok(names)
}

/// xxh3-64 of the whole head, as the manifest records it.
pub fn head_hash(head: &[u8]) -> u64 {
    xxh3_64(head)
}

fn entry_hash(fields: &[u8], n: u64) -> u64 {
    let mut bytes = fields.to_vec();
    bytes.extend_from_slice(&n.to_le_bytes());
    xxh3_64(&bytes)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// The head as read at open: cumulative starts and the shards' byte sizes.
#[derive(Clone, Debug)]
pub struct IndexHead {
    pub starts: Vec<u64>,
    pub file_bytes: Vec<u64>,
    /// With names: `blocks + 1` offsets of the name blocks within the names section
    /// (the last one is its size); empty without.
    pub name_blocks: Vec<u64>,
}

/// Check and decode the head (`bytes` = `shape.head_range()` of the file). The
/// header must name this shape; the counts must be those the manifest states and
/// each shard's rows within what its bytes can hold (`min_row_bytes`).
pub fn parse_head(bytes: &[u8], shape: IndexShape, num_samples: u64, min_row_bytes: u64) -> Result<IndexHead, String> {
    if bytes.len() as u64 != shape.head_range().end {
        return Err(format!("head is {} bytes, expected {}", bytes.len(), shape.head_range().end));
    }
    if &bytes[..8] != INDEX_MAGIC {
        return Err("does not start with the shard index magic".into());
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    let columns = u32::from_le_bytes(bytes[12..16].try_into().unwrap());
    let shards = u64_at(bytes, 16);
    let flags = u64_at(bytes, 24);
    let names = flags == FLAG_NAMES;
    if version != INDEX_VERSION || columns != shape.columns || shards != shape.shards || names != shape.names {
        return Err(format!(
            "header says version {version}, {shards} shards, {columns} columns, flags {flags}; the manifest says \
             version {INDEX_VERSION}, {} shards, {} columns, flags {}",
            shape.shards,
            shape.columns,
            if shape.names { FLAG_NAMES } else { 0 }
        ));
    }
    let n = shards as usize;
    let base = HEADER_BYTES as usize;
    let starts: Vec<u64> = (0..=n).map(|i| u64_at(bytes, base + 8 * i)).collect();
    let file_bytes: Vec<u64> = (0..n).map(|i| u64_at(bytes, base + 8 * (n + 1 + i))).collect();
    if starts[0] != 0 {
        return Err(format!("starts[0] is {}, not 0", starts[0]));
    }
    let mut total_bytes = 0u64;
    for i in 0..n {
        let rows = starts[i + 1]
            .checked_sub(starts[i])
            .ok_or_else(|| format!("shard {i}: starts decrease ({} then {})", starts[i], starts[i + 1]))?;
        super::manifest::check_claimed_rows(rows as usize, file_bytes[i], min_row_bytes)
            .map_err(|msg| format!("shard {i}: {msg}"))?;
        total_bytes = total_bytes
            .checked_add(file_bytes[i])
            .ok_or_else(|| format!("the shards' file_bytes overflow a 64-bit sum at shard {i}"))?;
    }
    if starts[n] != num_samples {
        return Err(format!("the shards hold {} samples, the manifest says num_samples {num_samples}", starts[n]));
    }
    let mut name_blocks = Vec::new();
    if shape.names {
        let at = base + 8 * (2 * n + 1);
        name_blocks = (0..=shape.blocks() as usize).map(|i| u64_at(bytes, at + 8 * i)).collect();
        if name_blocks[0] != 0 {
            return Err(format!("name block 0 starts at {}, not 0", name_blocks[0]));
        }
        for b in 0..shape.blocks() {
            let k = shape.block_shards(b).end - shape.block_shards(b).start;
            // Each name is at least one byte: a block smaller than that is refused before it is read.
            let least = k * (NAME_LEN_BYTES + 1) + NAME_BLOCK_HASH_BYTES;
            let (from, to) = (name_blocks[b as usize], name_blocks[b as usize + 1]);
            if to.checked_sub(from).is_none_or(|size| size < least) {
                return Err(format!("name block {b} spans bytes {from}..{to}, less than its {k} names need"));
            }
        }
    }
    Ok(IndexHead { starts, file_bytes, name_blocks })
}

/// Check and decode entries `first..first + k` from their bytes.
pub fn parse_entries(bytes: &[u8], shape: IndexShape, first: u64) -> Result<Vec<IndexEntry>, String> {
    let size = shape.entry_bytes() as usize;
    if bytes.len() % size != 0 {
        return Err(format!("{} bytes of entries are not a whole number of {size}-byte entries", bytes.len()));
    }
    bytes
        .chunks_exact(size)
        .enumerate()
        .map(|(i, rec)| {
            let n = first + i as u64;
            let own = u64_at(rec, size - 8);
            if entry_hash(&rec[..size - 8], n) != own {
                return Err(format!("entry of shard {n} is damaged or out of place (its xxh3 does not match)"));
            }
            let columns = (0..shape.columns as usize).map(|c| u64_at(rec, 8 + 8 * c)).collect();
            Ok(IndexEntry { file_xxh3: u64_at(rec, 0), columns })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<u8>, IndexShape) {
        let sizes = [3u64, 0, 5];
        let bytes = [3000u64, 500, 5000];
        let entries: Vec<IndexEntry> =
            (0..3).map(|n| IndexEntry { file_xxh3: 100 + n, columns: vec![n, n + 1] }).collect();
        (encode_index(&sizes, &bytes, &entries, 2, None).unwrap(), IndexShape { shards: 3, columns: 2, names: false })
    }

    #[test]
    fn round_trips() {
        let (idx, shape) = sample();
        assert_eq!(idx.len() as u64, shape.fixed_bytes());
        assert_eq!(shape.checked_fixed_bytes(), Some(shape.fixed_bytes()));
        let head = parse_head(&idx[..shape.head_range().end as usize], shape, 8, 100).unwrap();
        assert_eq!(head.starts, vec![0, 3, 3, 8]);
        assert_eq!(head.file_bytes, vec![3000, 500, 5000]);
        assert!(head.name_blocks.is_empty());
        let r = shape.entries_range(1..3);
        let entries = parse_entries(&idx[r.start as usize..r.end as usize], shape, 1).unwrap();
        assert_eq!(entries[1], IndexEntry { file_xxh3: 102, columns: vec![2, 3] });
    }

    /// An index of `names.len()` one-row shards with these names (2 columns).
    fn named(names: &[String]) -> Result<(Vec<u8>, IndexShape), String> {
        let k = names.len();
        let entries: Vec<IndexEntry> =
            (0..k as u64).map(|n| IndexEntry { file_xxh3: n, columns: vec![n, n] }).collect();
        let idx = encode_index(&vec![1; k], &vec![100; k], &entries, 2, Some(names))?;
        Ok((idx, IndexShape { shards: k as u64, columns: 2, names: true }))
    }

    fn task_names(k: usize) -> Vec<String> {
        (0..k).map(|n| format!("{:08}-{:03}.arrow", 7 * n, n % 3)).collect()
    }

    /// Decode every name of an index the way a reader does: the head, then block by block.
    fn read_names(idx: &[u8], shape: IndexShape) -> Result<Vec<String>, String> {
        let head = parse_head(&idx[..shape.head_range().end as usize], shape, shape.shards, 1)?;
        assert_eq!(shape.fixed_bytes() + head.name_blocks.last().unwrap(), idx.len() as u64);
        let mut all = Vec::new();
        for b in 0..shape.blocks() {
            let r = shape.names_range(&head, b);
            all.extend(parse_names(&idx[r.start as usize..r.end as usize], shape, b)?);
        }
        Ok(all)
    }

    #[test]
    fn names_round_trip_block_by_block() {
        for k in [1, 1023, 1024, 1025, 2500] {
            let names = task_names(k);
            let (idx, shape) = named(&names).unwrap();
            assert_eq!(shape.blocks(), (k as u64).div_ceil(BLOCK));
            assert_eq!(read_names(&idx, shape).unwrap(), names, "{k} shards");
        }
        // Non-ASCII UTF-8 names are names too.
        let names = vec!["é-0.arrow".to_string(), "日本-1.arrow".to_string()];
        assert_eq!(read_names(&named(&names).unwrap().0, named(&names).unwrap().1).unwrap(), names);
    }

    #[test]
    fn the_writer_refuses_bad_and_duplicate_names() {
        for bad in ["", ".", "..", "a/b.arrow", "../x.arrow", "a\\b", "a\0b"] {
            let mut names = task_names(3);
            names[1] = bad.to_string();
            assert!(named(&names).unwrap_err().contains("plain file name"), "{bad:?}");
        }
        let mut names = task_names(1500);
        names[1400] = names[3].clone(); // in another block
        assert!(named(&names).unwrap_err().contains("listed twice"));
    }

    /// Overwrite name `i` of block 0 (same length) and re-seal the block's checksum,
    /// as a crafted (not damaged) index would.
    fn craft(idx: &mut [u8], shape: IndexShape, i: usize, name: &[u8]) {
        let head = parse_head(&idx[..shape.head_range().end as usize], shape, shape.shards, 1).unwrap();
        let r = shape.names_range(&head, 0);
        let block = &mut idx[r.start as usize..r.end as usize];
        let k = shape.block_shards(0).end as usize;
        let lens: Vec<usize> =
            (0..k).map(|j| u32::from_le_bytes(block[4 * j..4 * j + 4].try_into().unwrap()) as usize).collect();
        assert_eq!(lens[i], name.len());
        let at = 4 * k + lens[..i].iter().sum::<usize>();
        block[at..at + name.len()].copy_from_slice(name);
        let body = block.len() - 8;
        let own = entry_hash(&block[..body], 0);
        block[body..].copy_from_slice(&own.to_le_bytes());
    }

    #[test]
    fn crafted_names_are_refused_when_read() {
        let names: Vec<String> = (0..4).map(|n| format!("0000{n}.arrow")).collect();
        let (idx, shape) = named(&names).unwrap();
        for (bad, why) in [
            (&b"../00.arrow"[..], "plain file name"),
            (b"a/b/c.arrow", "plain file name"),
            (b"0000\0.arrow", "plain file name"),
            (b"00002.arrow", "listed twice"),
            (b"\xff0001.arrow", "UTF-8"),
        ] {
            let mut crafted = idx.clone();
            craft(&mut crafted, shape, 1, bad);
            let err = read_names(&crafted, shape).unwrap_err();
            assert!(err.contains(why), "{:?}: {err}", String::from_utf8_lossy(bad));
        }
        // Damage without re-sealing: the block checksum refuses it.
        let mut damaged = idx.clone();
        let at = damaged.len() - 9;
        damaged[at] ^= 1;
        assert!(read_names(&damaged, shape).unwrap_err().contains("damaged or out of place"));
        // Block offsets that claim less than the names need are refused in the head.
        let mut short = idx.clone();
        let at = shape.head_range().end as usize - 8;
        short[at..at + 8].copy_from_slice(&3u64.to_le_bytes());
        let err = parse_head(&short[..shape.head_range().end as usize], shape, 4, 1).unwrap_err();
        assert!(err.contains("name block 0"), "{err}");
        // A header whose names flag disagrees with the manifest is refused.
        let head = &idx[..shape.head_range().end as usize];
        assert!(parse_head(head, IndexShape { names: false, ..shape }, 4, 1).is_err());
    }

    #[test]
    fn refuses_counts_beyond_the_bytes_and_wrong_totals() {
        let (idx, shape) = sample();
        let head = &idx[..shape.head_range().end as usize];
        assert!(parse_head(head, shape, 8, 1001).unwrap_err().contains("shard 0: claims 3 samples"));
        assert!(parse_head(head, shape, 9, 100).unwrap_err().contains("num_samples 9"));
        let mut bad = head.to_vec();
        bad[32 + 8..32 + 16].copy_from_slice(&(1u64 << 62).to_le_bytes());
        assert!(parse_head(&bad, shape, 8, 100).unwrap_err().contains("shard 0"));
        assert!(parse_head(head, IndexShape { shards: 4, ..shape }, 8, 100).is_err());
        assert_eq!(IndexShape { shards: u64::MAX / 4, columns: 17, names: true }.checked_fixed_bytes(), None);
    }

    #[test]
    fn a_moved_or_damaged_entry_is_refused() {
        let (idx, shape) = sample();
        let r = shape.entries_range(1..2);
        let entry = &idx[r.start as usize..r.end as usize];
        assert!(parse_entries(entry, shape, 1).is_ok());
        assert!(parse_entries(entry, shape, 2).unwrap_err().contains("shard 2"));
        let mut bad = entry.to_vec();
        bad[3] ^= 1;
        assert!(parse_entries(&bad, shape, 1).is_err());
    }
}
