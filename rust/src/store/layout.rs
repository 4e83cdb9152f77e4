//! Where things are inside one Arrow IPC file: footer, schema, the single record
//! batch and its body buffers. Every offset read from the file is bounds-checked
//! here, before anything slices the bytes.

use std::ops::Range;

use arrow_ipc::{Block, MetadataVersion};
use arrow_schema::Schema;

const ARROW_MAGIC: &[u8; 6] = b"ARROW1";
/// Leading magic padded to 8 bytes, then at least a footer length and the trailing magic.
const MIN_FILE_LEN: usize = 8 + 4 + 6;

/// The parts of an IPC file the store needs.
#[derive(Debug)]
pub struct FileLayout {
    pub schema: Schema,
    pub version: MetadataVersion,
    /// The one record batch block (message + body).
    pub block: Block,
    /// Body buffers, as file byte ranges, in IPC order.
    pub buffers: Vec<Range<usize>>,
    /// Rows in the record batch, as its header says.
    pub num_rows: usize,
}

/// Locate the pieces of an IPC file, or say what is wrong with it.
pub fn read_layout(bytes: &[u8]) -> Result<FileLayout, String> {
    let n = bytes.len();
    if n < MIN_FILE_LEN {
        return Err(format!("file is {n} bytes: too short for an Arrow IPC file"));
    }
    if &bytes[..6] != ARROW_MAGIC {
        return Err("does not start with the Arrow IPC magic 'ARROW1'".into());
    }
    if &bytes[n - 6..] != ARROW_MAGIC {
        return Err("does not end with the Arrow IPC magic 'ARROW1' (truncated?)".into());
    }
    let footer_len = i32::from_le_bytes(bytes[n - 10..n - 6].try_into().unwrap());
    let footer_end = n - 10;
    let footer_start = usize::try_from(footer_len)
        .ok()
        .and_then(|len| footer_end.checked_sub(len))
        .filter(|&start| start >= 8)
        .ok_or_else(|| format!("footer length {footer_len} does not fit the file"))?;
    let footer = arrow_ipc::root_as_footer(&bytes[footer_start..footer_end])
        .map_err(|e| format!("footer is not a valid flatbuffer: {e}"))?;
    let fb_schema = footer.schema().ok_or("footer has no schema")?;
    let schema = arrow_ipc::convert::try_fb_to_schema(fb_schema).map_err(|e| format!("bad schema: {e}"))?;
    if footer.dictionaries().is_some_and(|d| !d.is_empty()) {
        return Err("has dictionary batches; a store shard has none".into());
    }
    let batches = footer.recordBatches().ok_or("footer lists no record batches")?;
    if batches.len() != 1 {
        return Err(format!("has {} record batches; a store shard has exactly one", batches.len()));
    }
    let block = *batches.get(0);
    let meta = checked_range(block.offset(), block.metaDataLength() as i64, footer_start).ok_or_else(|| {
        format!(
            "record batch metadata block is outside the file (offset {}, length {})",
            block.offset(),
            block.metaDataLength()
        )
    })?;
    let body = checked_range(meta.end as i64, block.bodyLength(), footer_start)
        .ok_or_else(|| format!("record batch body is outside the file (length {})", block.bodyLength()))?;
    let message = parse_message(&bytes[meta])?;
    let batch = message.header_as_record_batch().ok_or("first block is not a record batch")?;
    if batch.compression().is_some() {
        return Err("record batch is compressed; store shards must be uncompressed".into());
    }
    let num_rows = usize::try_from(batch.length()).map_err(|_| format!("negative row count {}", batch.length()))?;
    let fb_buffers = batch.buffers().ok_or("record batch lists no buffers")?;
    let mut buffers = Vec::with_capacity(fb_buffers.len());
    for (i, b) in fb_buffers.iter().enumerate() {
        let r = checked_range(b.offset(), b.length(), body.len()).ok_or_else(|| {
            format!("body buffer {i} (offset {}, length {}) is outside the record batch body", b.offset(), b.length())
        })?;
        buffers.push(body.start + r.start..body.start + r.end);
    }
    Ok(FileLayout { schema, version: footer.version(), block, buffers, num_rows })
}

/// `offset..offset+len` if both are non-negative and it ends at or before `limit`.
fn checked_range(offset: i64, len: i64, limit: usize) -> Option<Range<usize>> {
    let start = usize::try_from(offset).ok()?;
    let len = usize::try_from(len).ok()?;
    let end = start.checked_add(len)?;
    (end <= limit).then_some(start..end)
}

/// An encapsulated IPC message: optional continuation marker, i32 length, flatbuffer.
fn parse_message(buf: &[u8]) -> Result<arrow_ipc::Message<'_>, String> {
    let rest = match buf {
        [0xff, 0xff, 0xff, 0xff, rest @ ..] => rest,
        _ => buf,
    };
    if rest.len() < 4 {
        return Err("record batch message is truncated".into());
    }
    let len = i32::from_le_bytes(rest[..4].try_into().unwrap());
    let fb = usize::try_from(len)
        .ok()
        .and_then(|len| rest.get(4..4 + len))
        .ok_or_else(|| format!("record batch message length {len} does not fit its block"))?;
    arrow_ipc::root_as_message(fb).map_err(|e| format!("record batch message is not a valid flatbuffer: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_range_rejects_overflow_and_negatives() {
        assert_eq!(checked_range(2, 3, 5), Some(2..5));
        assert_eq!(checked_range(2, 4, 5), None);
        assert_eq!(checked_range(-1, 1, 5), None);
        assert_eq!(checked_range(1, -1, 5), None);
        assert_eq!(checked_range(i64::MAX, i64::MAX, 1 << 40), None);
    }

    #[test]
    fn rejects_short_and_unmagical_files() {
        assert!(read_layout(b"ARROW1").unwrap_err().contains("too short"));
        let mut f = vec![0u8; 64];
        assert!(read_layout(&f).unwrap_err().contains("start"));
        f[..6].copy_from_slice(ARROW_MAGIC);
        assert!(read_layout(&f).unwrap_err().contains("end"));
        let n = f.len();
        f[n - 6..].copy_from_slice(ARROW_MAGIC);
        f[n - 10..n - 6].copy_from_slice(&1000i32.to_le_bytes());
        assert!(read_layout(&f).unwrap_err().contains("footer length"));
    }
}
