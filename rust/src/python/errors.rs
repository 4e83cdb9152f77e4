//! Map core errors to a small Python exception hierarchy rooted at `FastloadError`.
//!
//! Errors Python users catch by their built-in kind are also that kind:
//! `SampleIndexError` is an `IndexError`; `StoreIOError` (the operating system
//! refused a file operation), `StoreNotFoundError` (no store at a path: a
//! `FileNotFoundError`), `StoreExistsError` (a writer's path is taken: a
//! `FileExistsError`) and `RemoteStoreError` are `OSError`s with `errno`,
//! `strerror` and `filename` set. Their `str()` stays the core's message
//! ("<path>: <what>"), like every other error of the package.

use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::create_exception;
use pyo3::exceptions::{
    PyBaseException, PyException, PyFileExistsError, PyFileNotFoundError, PyIndexError, PyMemoryError, PyOSError,
    PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

use crate::error::{panic_message, Error};

create_exception!(mobileclip_fastload, FastloadError, PyException, "Base class of every mobileclip-fastload error.");
create_exception!(
    mobileclip_fastload,
    StoreFormatError,
    FastloadError,
    "A store file or manifest is malformed, truncated or inconsistent."
);
create_exception!(
    mobileclip_fastload,
    SchemaVersionError,
    StoreFormatError,
    "The store was written with a newer schema than this reader supports."
);
create_exception!(
    mobileclip_fastload,
    ChecksumError,
    FastloadError,
    "A column chunk does not match its recorded checksum."
);
create_exception!(mobileclip_fastload, ImageDecodeError, FastloadError, "An image's bytes cannot be decoded.");

/// The exception classes with two bases (a `FastloadError` and a built-in kind),
/// which `create_exception!` cannot make; created once per interpreter.
struct TwoBaseErrors {
    sample_index: Py<PyType>,
    store_io: Py<PyType>,
    store_not_found: Py<PyType>,
    store_exists: Py<PyType>,
    remote_store: Py<PyType>,
}

static TWO_BASE_ERRORS: PyOnceLock<TwoBaseErrors> = PyOnceLock::new();

/// A new exception class `name` deriving from every class in `bases`; `keep_message`
/// gives it `BaseException.__str__`, so an `OSError` subclass prints its message
/// rather than "[Errno N] strerror: 'filename'".
fn new_exception(
    py: Python<'_>,
    name: &CStr,
    doc: &CStr,
    bases: &[Bound<'_, PyType>],
    keep_message: bool,
) -> PyResult<Py<PyType>> {
    let bases = PyTuple::new(py, bases)?;
    let dict = PyDict::new(py);
    if keep_message {
        dict.set_item("__str__", py.get_type::<PyBaseException>().getattr("__str__")?)?;
    }
    // SAFETY: a correct call of the C API (a tuple of bases is documented); it
    // returns a new reference to the class or NULL with an exception set.
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            pyo3::ffi::PyErr_NewExceptionWithDoc(name.as_ptr(), doc.as_ptr(), bases.as_ptr(), dict.as_ptr()),
        )
        .map(|t| t.cast_into_unchecked::<PyType>().unbind())
    }
}

fn two_base_errors(py: Python<'_>) -> PyResult<&TwoBaseErrors> {
    TWO_BASE_ERRORS.get_or_try_init(py, || {
        let base = py.get_type::<FastloadError>();
        let store_io = new_exception(
            py,
            c"mobileclip_fastload.StoreIOError",
            c"The operating system refused an operation on a store file (an OSError: errno, strerror, filename).",
            &[base.clone(), py.get_type::<PyOSError>()],
            true,
        )?;
        let store_not_found = new_exception(
            py,
            c"mobileclip_fastload.StoreNotFoundError",
            c"No DR store at the path: no such directory, or no manifest.json in it (a FileNotFoundError).",
            &[store_io.bind(py).clone(), py.get_type::<PyFileNotFoundError>()],
            true,
        )?;
        let store_exists = new_exception(
            py,
            c"mobileclip_fastload.StoreExistsError",
            c"A writer's path already holds files it must not replace (a FileExistsError).",
            &[store_io.bind(py).clone(), py.get_type::<PyFileExistsError>()],
            true,
        )?;
        Ok(TwoBaseErrors {
            sample_index: new_exception(
                py,
                c"mobileclip_fastload.SampleIndexError",
                c"A sample index is out of range (an IndexError).",
                &[base.clone(), py.get_type::<PyIndexError>()],
                false,
            )?,
            store_io,
            store_not_found,
            store_exists,
            remote_store: new_exception(
                py,
                c"mobileclip_fastload.RemoteStoreError",
                c"An object of a remote store could not be fetched or cached (an OSError; `filename` is its URL).",
                &[base, py.get_type::<PyOSError>()],
                true,
            )?,
        })
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("FastloadError", py.get_type::<FastloadError>())?;
    m.add("StoreFormatError", py.get_type::<StoreFormatError>())?;
    m.add("SchemaVersionError", py.get_type::<SchemaVersionError>())?;
    m.add("ChecksumError", py.get_type::<ChecksumError>())?;
    m.add("ImageDecodeError", py.get_type::<ImageDecodeError>())?;
    let two = two_base_errors(py)?;
    m.add("SampleIndexError", two.sample_index.bind(py))?;
    m.add("StoreIOError", two.store_io.bind(py))?;
    m.add("StoreNotFoundError", two.store_not_found.bind(py))?;
    m.add("StoreExistsError", two.store_exists.bind(py))?;
    m.add("RemoteStoreError", two.remote_store.bind(py))?;
    Ok(())
}

/// An `OSError` subclass instance whose message is `msg`, with the attributes set.
fn os_error(
    py: Python<'_>,
    ty: &Py<PyType>,
    msg: String,
    errno: Option<i32>,
    strerror: String,
    filename: String,
) -> PyResult<PyErr> {
    let err = ty.bind(py).call1((msg,))?;
    err.setattr("errno", errno)?;
    err.setattr("strerror", strerror)?;
    err.setattr("filename", filename)?;
    Ok(PyErr::from_value(err))
}

/// The C library's text for `errno` (Python's `os.strerror`).
fn strerror(py: Python<'_>, errno: i32) -> PyResult<String> {
    py.import("os")?.call_method1("strerror", (errno,))?.extract()
}

/// The exceptions built from a core error's parts (they need the interpreter).
fn to_py_with_parts(py: Python<'_>, err: Error) -> PyResult<PyErr> {
    let two = two_base_errors(py)?;
    let msg = err.to_string();
    Ok(match err {
        Error::Io { path, source } => {
            // An error the core raises itself (no OS code) still carries its kind.
            let exists = source.kind() == std::io::ErrorKind::AlreadyExists;
            let errno = source.raw_os_error().or(exists.then_some(libc::EEXIST));
            let text = match errno {
                Some(code) => strerror(py, code)?,
                None => source.to_string(),
            };
            let ty = if exists { &two.store_exists } else { &two.store_io };
            os_error(py, ty, msg, errno, text, path.display().to_string())?
        }
        Error::StoreNotFound { dir } => {
            let errno = libc::ENOENT;
            os_error(py, &two.store_not_found, msg, Some(errno), strerror(py, errno)?, dir.display().to_string())?
        }
        Error::Remote { object, msg: what } => os_error(py, &two.remote_store, msg, None, what, object)?,
        Error::Index { .. } => PyErr::from_type(two.sample_index.bind(py).clone(), (msg,)),
        _ => unreachable!("only called for the errors matched in to_py"),
    })
}

/// Convert a core error into the matching Python exception.
pub fn to_py(err: Error) -> PyErr {
    let msg = err.to_string();
    match err {
        Error::Io { .. } | Error::StoreNotFound { .. } | Error::Remote { .. } | Error::Index { .. } => {
            Python::attach(|py| to_py_with_parts(py, err).unwrap_or_else(|e| e))
        }
        Error::Format { .. } => StoreFormatError::new_err(msg),
        Error::Version { .. } => SchemaVersionError::new_err(msg),
        Error::Checksum { .. } => ChecksumError::new_err(msg),
        Error::Decode { .. } => ImageDecodeError::new_err(msg),
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
