//! Atomic file publishing for Python (`store::atomic` holds the one implementation):
//! the converter's done records, reports and export tars use the same temp names,
//! fsyncs and stale-temp cleanup as the store's shards and manifest.

use std::path::PathBuf;

use pyo3::prelude::*;

use super::errors::to_py;
use crate::store::{
    publish, remove_stale_temporaries as remove_stale, temp_path as core_temp_path, temp_target as core_temp_target,
    write_bytes_atomic, Durability,
};

/// A hidden, unique sibling of `final` to write before `publish_file` (same directory,
/// so the rename is atomic; the name carries this process's id).
#[pyfunction]
fn temp_path(final_path: PathBuf) -> PathBuf {
    core_temp_path(&final_path)
}

/// The final name a temp file named `name` is for (`temp_path`'s `.<name>.tmp-<pid>-<8 hex>` or the
/// older `<name>.tmp-<pid>`); None when `name` is not a temp name. The one temp-name rule, for Python too.
#[pyfunction]
fn temp_target(name: &str) -> Option<String> {
    core_temp_target(name).map(str::to_owned)
}

/// Move the complete file `tmp` to `final`: fsync it, rename, fsync the directory.
/// On failure `tmp` is removed.
#[pyfunction]
fn publish_file(py: Python<'_>, tmp: PathBuf, final_path: PathBuf) -> PyResult<()> {
    py.detach(|| publish(&tmp, &final_path, Durability::Durable)).map_err(to_py)
}

/// Write `data` to `final` atomically and durably (temp file, fsync, rename, directory fsync).
#[pyfunction]
fn write_file_atomic(py: Python<'_>, final_path: PathBuf, data: &[u8]) -> PyResult<()> {
    py.detach(|| write_bytes_atomic(&final_path, data)).map_err(to_py)
}

/// Remove the temp files in `directory` whose writing process no longer exists (left
/// by a killed writer); a live process's are kept. Returns the names removed.
#[pyfunction]
fn remove_stale_temporaries(py: Python<'_>, directory: PathBuf) -> PyResult<Vec<String>> {
    py.detach(|| remove_stale(&directory)).map_err(to_py)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(temp_path, m)?)?;
    m.add_function(wrap_pyfunction!(temp_target, m)?)?;
    m.add_function(wrap_pyfunction!(publish_file, m)?)?;
    m.add_function(wrap_pyfunction!(write_file_atomic, m)?)?;
    m.add_function(wrap_pyfunction!(remove_stale_temporaries, m)?)?;
    Ok(())
}
