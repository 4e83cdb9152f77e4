//! One error type for the whole core. Every variant says *where* (file, sample)
//! and *what*; the Python layer maps each variant to one exception class.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system refused an operation on `path` (Python: `StoreIOError`, an `OSError`).
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No store at `dir`: no such directory, or no manifest.json in it
    /// (Python: `StoreNotFoundError`, a `FileNotFoundError`).
    #[error("{dir}: no DR store here: no manifest.json (not a store directory, or its writer did not finish)")]
    StoreNotFound { dir: PathBuf },
    /// The bytes are not a valid store file / manifest (bad magic, truncated, inconsistent).
    #[error("{path}: {msg}")]
    Format { path: PathBuf, msg: String },
    /// The store was written by a newer schema than this reader understands.
    #[error("{path}: store schema version {found} is newer than the newest this reader supports ({supported}); upgrade mobileclip-fastload")]
    Version { path: PathBuf, found: u32, supported: u32 },
    /// A column chunk's checksum does not match the manifest.
    #[error("{path}: checksum mismatch in column '{column}' (expected {expected}, found {actual})")]
    Checksum { path: PathBuf, column: String, expected: String, actual: String },
    /// A remote store's object could not be fetched or cached (missing, a failed
    /// or corrupt download after retries, a cache too small or a full cache disk).
    #[error("{object}: {msg}")]
    Remote { object: String, msg: String },
    /// Global sample index out of range.
    #[error("sample index {index} out of range for a store of {len} samples")]
    Index { index: i64, len: usize },
    /// An image that cannot be decoded (or is not an image).
    #[error("sample {key}: cannot decode image: {msg}")]
    Decode { key: String, msg: String },
    /// A caller passed something invalid.
    #[error("{0}")]
    InvalidArgument(String),
    /// Memory for a requested buffer could not be had (reported, never an abort).
    #[error("{0}")]
    OutOfMemory(String),
    /// A bug or a broken invariant caught at a boundary (e.g. a worker thread panicked).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Format { path: path.into(), msg: msg.into() }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub fn decode(key: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Decode { key: key.into(), msg: msg.into() }
    }
}

/// The message of a caught panic (for turning it into an `Error::Internal` at a boundary).
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".into()
    }
}
