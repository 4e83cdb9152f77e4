//! Rust core of mobileclip-fastload.
//!
//! The pure core (`aug`, `imaging`, `store`, `loader`, `error`) has no Python in it
//! and is what `cargo test` exercises; `python` holds the thin PyO3 bindings,
//! compiled only with the `python` feature that maturin turns on. The layers and
//! the data flow between them: docs/ARCHITECTURE.md.

pub mod aug;
pub mod error;
pub mod imaging;
pub mod loader;
pub mod store;

#[cfg(feature = "python")]
mod python;

#[cfg(feature = "python")]
use pyo3::prelude::*;

/// The compiled module `mobileclip_fastload._core`: it only registers the parts.
#[cfg(feature = "python")]
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    python::register(m)
}
