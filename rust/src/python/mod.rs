//! PyO3 bindings: one file per concept, each with a `register` function.

mod atomic;
mod aug;
mod bench;
mod embeddings;
mod errors;
mod format;
mod imaging;
mod loader;
mod sample_input;
mod sampler;
mod settings;
mod store;
mod writer;

use pyo3::prelude::*;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    aug::register(m)?;
    store::register(m)?;
    format::register(m)?;
    writer::register(m)?;
    embeddings::register(m)?;
    atomic::register(m)?;
    imaging::register(m)?;
    loader::register(m)?;
    bench::register(m)?;
    sampler::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
