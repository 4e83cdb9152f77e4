//! Opening store files: only regular files are accepted, and checking that
//! never blocks (opening a FIFO for reading would wait for a writer forever).

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// What a non-regular file is, for the error message.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
    }
    if meta.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

/// Open `path` for reading if it is a regular file. `missing` is the error for
/// a file that does not exist (what that means depends on the file: an
/// incomplete store, or no store at all).
pub fn open_regular(path: &Path, missing: impl FnOnce() -> Error) -> Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        // Non-blocking open: returns at once for a FIFO without a writer; the
        // flag changes nothing for reading a regular file (or mapping it).
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| match e.kind() {
        // A path through a file (`<file>/manifest.json`) finds no store either.
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory => missing(),
        _ => Error::io(path, e),
    })?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::format(path, format!("not a regular file ({})", kind_of(&meta))));
    }
    Ok(file)
}

/// The whole text of a regular file of at most `limit` bytes (a larger file is a
/// format error, found after reading at most `limit + 1` bytes; text that is not
/// UTF-8 is a format error). `what_limit` says where the limit comes from.
pub fn read_regular_to_string(
    path: &Path,
    limit: u64,
    what_limit: &str,
    missing: impl FnOnce() -> Error,
) -> Result<String> {
    let file = open_regular(path, missing)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(Error::format(path, format!("larger than {limit} bytes ({what_limit})")));
    }
    String::from_utf8(bytes).map_err(|e| Error::format(path, format!("not UTF-8 text: {e}")))
}
