//! Integrity checksums: xxh3-64 of the whole file and of each column's byte range.
//!
//! A column's range runs from the first byte of its first non-empty body buffer
//! to the last byte of its last one (children included, IPC order), padding in
//! between included. Writer and verifier both call `shard_checksums`, so there is
//! exactly one definition.

use std::ops::Range;

use xxhash_rust::xxh3::{xxh3_64, Xxh3};

use super::layout::FileLayout;
use super::schema::ipc_buffer_count;

/// Checksums of one shard file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardChecksums {
    pub file_bytes: u64,
    pub file_xxh3: u64,
    /// (column name, xxh3-64) in file order.
    pub columns: Vec<(String, u64)>,
}

/// Byte range of each top-level column, in file order.
pub fn column_ranges(layout: &FileLayout) -> Result<Vec<(String, Range<usize>)>, String> {
    let mut next = 0;
    let mut out = Vec::with_capacity(layout.schema.fields().len());
    for field in layout.schema.fields() {
        let count = ipc_buffer_count(field.data_type())
            .ok_or_else(|| format!("column '{}' has unsupported type {}", field.name(), field.data_type()))?;
        let bufs = layout.buffers.get(next..next + count).ok_or_else(|| {
            format!("record batch has {} buffers, too few for column '{}'", layout.buffers.len(), field.name())
        })?;
        next += count;
        out.push((field.name().clone(), span(bufs)));
    }
    if next != layout.buffers.len() {
        return Err(format!("record batch has {} buffers, the schema accounts for {next}", layout.buffers.len()));
    }
    Ok(out)
}

/// Smallest range covering the non-empty buffers (empty when all are empty).
fn span(bufs: &[Range<usize>]) -> Range<usize> {
    let mut it = bufs.iter().filter(|b| !b.is_empty());
    match it.next() {
        None => 0..0,
        Some(first) => it.fold(first.clone(), |acc, b| acc.start.min(b.start)..acc.end.max(b.end)),
    }
}

/// Hash the whole file and each column range. When the ranges are ordered and
/// disjoint (any file our writer makes) this is one pass over the bytes.
pub fn compute(bytes: &[u8], ranges: &[(String, Range<usize>)]) -> ShardChecksums {
    debug_assert!(ranges.iter().all(|(_, r)| r.end <= bytes.len()));
    let ordered =
        ranges.iter().filter(|(_, r)| !r.is_empty()).collect::<Vec<_>>().windows(2).all(|w| w[0].1.end <= w[1].1.start);
    let (file_xxh3, columns) = if ordered {
        one_pass(bytes, ranges)
    } else {
        let cols = ranges.iter().map(|(n, r)| (n.clone(), xxh3_64(&bytes[r.clone()]))).collect();
        (xxh3_64(bytes), cols)
    };
    ShardChecksums { file_bytes: bytes.len() as u64, file_xxh3, columns }
}

fn one_pass(bytes: &[u8], ranges: &[(String, Range<usize>)]) -> (u64, Vec<(String, u64)>) {
    // Chunked so each piece is still in cache when the second hasher sees it.
    const CHUNK: usize = 1 << 20;
    let mut file = Xxh3::new();
    let mut pos = 0;
    let feed = |file: &mut Xxh3, col: Option<&mut Xxh3>, r: Range<usize>| {
        let mut col = col;
        for chunk in bytes[r].chunks(CHUNK) {
            file.update(chunk);
            if let Some(c) = col.as_deref_mut() {
                c.update(chunk);
            }
        }
    };
    let mut columns = Vec::with_capacity(ranges.len());
    for (name, r) in ranges {
        let mut col = Xxh3::new();
        if !r.is_empty() {
            feed(&mut file, None, pos..r.start);
            feed(&mut file, Some(&mut col), r.clone());
            pos = r.end;
        }
        columns.push((name.clone(), col.digest()));
    }
    feed(&mut file, None, pos..bytes.len());
    (file.digest(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes() -> Vec<u8> {
        (0..5_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
    }

    #[test]
    fn one_pass_equals_separate_hashes() {
        let b = bytes();
        let ranges = vec![
            ("a".to_string(), 10..1_500_000),
            ("empty".to_string(), 0..0),
            ("b".to_string(), 1_500_000..1_500_001),
            ("c".to_string(), 2_000_000..4_999_990),
        ];
        let got = compute(&b, &ranges);
        assert_eq!(got.file_xxh3, xxh3_64(&b));
        assert_eq!(got.file_bytes, b.len() as u64);
        for ((name, r), (gname, h)) in ranges.iter().zip(&got.columns) {
            assert_eq!(name, gname);
            assert_eq!(*h, xxh3_64(&b[r.clone()]), "column {name}");
        }
    }

    #[test]
    fn overlapping_ranges_fall_back_to_separate_hashes() {
        let b = bytes();
        let ranges = vec![("a".to_string(), 100..300), ("b".to_string(), 200..400)];
        let got = compute(&b, &ranges);
        assert_eq!(got.file_xxh3, xxh3_64(&b));
        assert_eq!(got.columns[1].1, xxh3_64(&b[200..400]));
    }

    #[test]
    fn span_skips_empty_buffers() {
        assert_eq!(span(&[0..0, 8..16, 40..40, 16..24]), 8..24);
        assert_eq!(span(std::slice::from_ref(&(5..5))), 0..0);
    }
}
