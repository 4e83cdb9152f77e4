//! PyO3 bindings: one file per concept, each with a `register` function.

mod aug;
mod bench;
mod errors;
mod imaging;
mod loader;
mod settings;
mod store;

use pyo3::prelude::*;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    aug::register(m)?;
    store::register(m)?;
    imaging::register(m)?;
    loader::register(m)?;
    bench::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
