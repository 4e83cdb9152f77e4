//! Map core errors to a small Python exception hierarchy rooted at `FastloadError`.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyMemoryError, PyValueError};
use pyo3::prelude::*;

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{panic_message, Error};

create_exception!(mobileclip_fastload, FastloadError, PyException, "Base class of every mobileclip-fastload error.");
create_exception!(mobileclip_fastload, StoreFormatError, FastloadError, "A store file or manifest is malformed, truncated or inconsistent.");
create_exception!(mobileclip_fastload, SchemaVersionError, StoreFormatError, "The store was written with a newer schema than this reader supports.");
create_exception!(mobileclip_fastload, ChecksumError, FastloadError, "A column chunk does not match its recorded checksum.");
create_exception!(mobileclip_fastload, ImageDecodeError, FastloadError, "An image's bytes cannot be decoded.");
create_exception!(mobileclip_fastload, RemoteStoreError, FastloadError, "An object of a remote store could not be fetched or cached (named in the message).");
create_exception!(mobileclip_fastload, SampleIndexError, FastloadError, "A sample index is out of range.");

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("FastloadError", py.get_type::<FastloadError>())?;
    m.add("StoreFormatError", py.get_type::<StoreFormatError>())?;
    m.add("SchemaVersionError", py.get_type::<SchemaVersionError>())?;
    m.add("ChecksumError", py.get_type::<ChecksumError>())?;
    m.add("ImageDecodeError", py.get_type::<ImageDecodeError>())?;
    m.add("SampleIndexError", py.get_type::<SampleIndexError>())?;
    m.add("RemoteStoreError", py.get_type::<RemoteStoreError>())?;
    Ok(())
}

/// Convert a core error into the matching Python exception.
pub fn to_py(err: Error) -> PyErr {
    let msg = err.to_string();
    match err {
        Error::Io { .. } | Error::Format { .. } => StoreFormatError::new_err(msg),
        Error::Version { .. } => SchemaVersionError::new_err(msg),
        Error::Checksum { .. } => ChecksumError::new_err(msg),
        Error::Decode { .. } => ImageDecodeError::new_err(msg),
        Error::Index { .. } => SampleIndexError::new_err(msg),
        Error::Remote { .. } => RemoteStoreError::new_err(msg),
        Error::InvalidArgument(_) => PyValueError::new_err(msg),
        Error::OutOfMemory(_) => PyMemoryError::new_err(msg),
        Error::Internal(_) => FastloadError::new_err(msg),
    }
}

/// `?`-friendly conversion for binding code.
pub trait IntoPyResult<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for crate::error::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// Run a binding's body; a panic inside it (a bug) becomes a `FastloadError`
/// instead of pyo3's `PanicException`, which `except Exception` would miss.
pub fn guarded<T>(body: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(body))
        .unwrap_or_else(|panic| Err(FastloadError::new_err(format!("internal error: {}", panic_message(&panic)))))
}
