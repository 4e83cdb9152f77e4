//! `shards.idx`: the schema-2 shard index (docs/FORMAT.md, "Schema version 2").
//!
//! Little-endian, columnar: a 32-byte header, the **head** (`starts[N+1]`, then
//! `file_bytes[N]`), read whole at open and covered by the manifest's `head_xxh3`,
//! then N fixed-size **entries** (whole-file and per-column xxh3 of one shard,
//! with the entry's own xxh3), each read only when its shard is first used.
//! Shard files are named by position (`shard_file_name(n)`), never stored.

use std::ops::Range;

use xxhash_rust::xxh3::xxh3_64;

/// The index file inside a schema-2 store.
pub const INDEX_FILE: &str = "shards.idx";
const INDEX_MAGIC: &[u8; 8] = b"MCFLIDX\0";
const INDEX_VERSION: u32 = 2;
const HEADER_BYTES: u64 = 32;

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
}

impl IndexShape {
    /// Header and head: what open reads.
    pub fn head_range(&self) -> Range<u64> {
        0..HEADER_BYTES + 8 * (2 * self.shards + 1)
    }
    pub fn entry_bytes(&self) -> u64 {
        8 * (self.columns as u64 + 2)
    }
    /// Entries `shards` (a range of shard numbers).
    pub fn entries_range(&self, shards: Range<u64>) -> Range<u64> {
        let base = self.head_range().end;
        base + shards.start * self.entry_bytes()..base + shards.end * self.entry_bytes()
    }
    pub fn file_bytes(&self) -> u64 {
        self.entries_range(0..self.shards).end
    }
    /// Byte size of an index of this shape, or `None` when it cannot be addressed
    /// (checked before anything is sized from a claimed shard count).
    pub fn checked_file_bytes(shards: u64, columns: u32) -> Option<u64> {
        let head = shards.checked_mul(2)?.checked_add(1)?.checked_mul(8)?.checked_add(HEADER_BYTES)?;
        let entries = shards.checked_mul(8 * (columns as u64 + 2))?;
        head.checked_add(entries)
    }
}

/// The bytes of an index: `sizes[n]` rows, `file_bytes[n]` bytes and `entries[n]` for shard n.
pub fn encode_index(sizes: &[u64], file_bytes: &[u64], entries: &[IndexEntry], columns: u32) -> Vec<u8> {
    assert!(sizes.len() == file_bytes.len() && sizes.len() == entries.len());
    assert!(entries.iter().all(|e| e.columns.len() == columns as usize));
    let shape = IndexShape { shards: sizes.len() as u64, columns };
    let mut out = Vec::with_capacity(shape.file_bytes() as usize);
    out.extend_from_slice(INDEX_MAGIC);
    out.extend_from_slice(&INDEX_VERSION.to_le_bytes());
    out.extend_from_slice(&columns.to_le_bytes());
    out.extend_from_slice(&shape.shards.to_le_bytes());
    out.extend_from_slice(&[0u8; 8]);
    let mut start = 0u64;
    out.extend_from_slice(&start.to_le_bytes());
    for &n in sizes {
        start += n;
        out.extend_from_slice(&start.to_le_bytes());
    }
    for &b in file_bytes {
        out.extend_from_slice(&b.to_le_bytes());
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
    debug_assert_eq!(out.len() as u64, shape.file_bytes());
    out
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
    if version != INDEX_VERSION || columns != shape.columns || shards != shape.shards {
        return Err(format!(
            "header says version {version}, {shards} shards, {columns} columns; the manifest says version \
             {INDEX_VERSION}, {} shards, {} columns",
            shape.shards, shape.columns
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
    Ok(IndexHead { starts, file_bytes })
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
        (encode_index(&sizes, &bytes, &entries, 2), IndexShape { shards: 3, columns: 2 })
    }

    #[test]
    fn round_trips() {
        let (idx, shape) = sample();
        assert_eq!(idx.len() as u64, shape.file_bytes());
        assert_eq!(IndexShape::checked_file_bytes(3, 2), Some(shape.file_bytes()));
        let head = parse_head(&idx[..shape.head_range().end as usize], shape, 8, 100).unwrap();
        assert_eq!(head.starts, vec![0, 3, 3, 8]);
        assert_eq!(head.file_bytes, vec![3000, 500, 5000]);
        let r = shape.entries_range(1..3);
        let entries = parse_entries(&idx[r.start as usize..r.end as usize], shape, 1).unwrap();
        assert_eq!(entries[1], IndexEntry { file_xxh3: 102, columns: vec![2, 3] });
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
        assert!(parse_head(head, IndexShape { shards: 4, columns: 2 }, 8, 100).is_err());
        assert_eq!(IndexShape::checked_file_bytes(u64::MAX / 4, 17), None);
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
