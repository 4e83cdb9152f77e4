//! Benchmark hook: the loader's per-sample image work (decode, crop+resize,
//! RandAugment ops, write of a batch row) timed stage by stage, on the
//! caller's samples. Used by `benches/bench_per_core.py`; no other use.

use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::errors::IntoPyResult;
use crate::aug::{AugParams, Op};
use crate::error::Result;
use crate::imaging::{Interpolation, Replayer};
use crate::loader::{Batch, BatchShape, EmbeddingOutput, ImageOutput};

/// One case: (jpeg bytes, top, left, height, width, [(op, magnitude), ...]).
type Case = (Vec<u8>, i32, i32, i32, i32, Vec<(u8, f64)>);

/// Replay every case `rounds` times as the loader does (one reused replayer,
/// rows written into a 32-row batch in turn); returns seconds per sample of
/// each stage and of the whole ("total").
#[pyfunction]
#[pyo3(signature = (cases, size, interpolation, output, rounds))]
fn bench_stage_times<'py>(
    py: Python<'py>,
    cases: Vec<Case>,
    size: usize,
    interpolation: &str,
    output: &str,
    rounds: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let interp = Interpolation::from_name(interpolation)
        .ok_or_else(|| PyValueError::new_err(format!("bad interpolation {interpolation:?}")))?;
    let image = match output {
        "uint8" => ImageOutput::Uint8,
        "float32" => ImageOutput::Float32 {
            mean: [0.0; 3],
            std: [1.0; 3],
        },
        _ => return Err(PyValueError::new_err(format!("bad output {output:?}"))),
    };
    let mut augs = Vec::with_capacity(cases.len());
    for (_, top, left, height, width, ops) in &cases {
        let mut pairs = [(Op::Identity, 0.0); 2];
        for (slot, &(i, m)) in pairs.iter_mut().zip(ops) {
            *slot = (
                Op::from_index(i).ok_or_else(|| PyValueError::new_err(format!("bad op {i}")))?,
                m,
            );
        }
        augs.push(AugParams {
            top: *top,
            left: *left,
            height: *height,
            width: *width,
            ops: pairs,
            n_ops: ops.len().min(2) as u8,
            is_null: false,
            hflip: false,
        });
    }
    let (times, write, total, n) = py
        .detach(|| -> Result<_> {
            let shape = BatchShape {
                batch_size: 32,
                image_size: size,
                emb_width: 1,
                image,
                embedding: EmbeddingOutput::Float16,
            };
            let mut batch = Batch::try_new(shape)?;
            let mut hwc = vec![0u8; size * size * 3];
            let mut r = Replayer::new()?;
            r.set_stage_timing(true);
            let (mut write, mut n) = (Duration::ZERO, 0usize);
            let start = Instant::now();
            for _ in 0..rounds {
                for (case, aug) in cases.iter().zip(&augs) {
                    r.replay("bench", &case.0, aug, size, interp, &mut hwc)?;
                    let t0 = Instant::now();
                    batch.put_image(n % 32, &hwc);
                    write += t0.elapsed();
                    n += 1;
                }
            }
            Ok((
                r.stage_times().expect("timing on"),
                write,
                start.elapsed(),
                n.max(1),
            ))
        })
        .py_err()?;
    let d = PyDict::new(py);
    let per = |t: Duration| t.as_secs_f64() / n as f64;
    d.set_item("decode", per(times.decode))?;
    d.set_item("resize", per(times.resize))?;
    d.set_item("ops", per(times.ops))?;
    d.set_item("write", per(write))?;
    d.set_item("total", per(total))?;
    d.set_item("samples", n)?;
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(bench_stage_times, m)?)?;
    Ok(())
}
