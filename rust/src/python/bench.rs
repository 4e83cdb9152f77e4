//! Benchmark hook: the loader's per-sample image work (decode, crop+resize,
//! RandAugment ops, write of a batch row) timed stage by stage, on the
//! caller's samples. Used by `benches/bench_per_core.py`; no other use.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::errors::IntoPyResult;
use super::imaging::parse_entry;
use crate::imaging::Interpolation;
use crate::loader::stage_timing::time_stages;
use crate::loader::{ImageDtype, ImageOutput};

/// One case: (jpeg bytes, top, left, height, width, [(op, magnitude), ...]).
type Case = (Vec<u8>, i32, i32, i32, i32, Vec<(u8, f64)>);

/// Replay every case `rounds` times as the loader does (one reused replayer,
/// rows written into a 32-row batch in turn); returns seconds per sample of
/// each stage and of the whole ("total").
#[pyfunction]
#[pyo3(signature = (cases, size, interpolation, image_dtype, rounds))]
fn bench_stage_times<'py>(
    py: Python<'py>,
    cases: Vec<Case>,
    size: usize,
    interpolation: Interpolation,
    image_dtype: ImageDtype,
    rounds: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let image = match image_dtype {
        ImageDtype::Uint8 => ImageOutput::Uint8,
        ImageDtype::Float32 => ImageOutput::Float32 { mean: [0.0; 3], std: [1.0; 3] },
    };
    let mut timed = Vec::with_capacity(cases.len());
    for (jpeg, top, left, height, width, ops) in cases {
        let aug = parse_entry(top, left, height, width, &ops, false)?;
        timed.push((jpeg, aug));
    }
    let report = py.detach(|| time_stages(&timed, size, interpolation, image, rounds)).py_err()?;
    let d = PyDict::new(py);
    let per = |t: Duration| t.as_secs_f64() / report.samples.max(1) as f64;
    d.set_item("decode", per(report.decode))?;
    d.set_item("resize", per(report.resize))?;
    d.set_item("ops", per(report.ops))?;
    d.set_item("write", per(report.write))?;
    d.set_item("total", per(report.total))?;
    d.set_item("samples", report.samples.max(1))?;
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(bench_stage_times, m)?)?;
    Ok(())
}
