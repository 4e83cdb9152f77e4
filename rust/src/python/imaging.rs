//! Bindings for the exact image path: `decode_rgb` and `replay_augmentation`
//! (GIL released while decoding / resampling). Each Python thread reuses its
//! own `Replayer`, so repeated calls do not re-create the JPEG decoder.

use std::cell::RefCell;

use numpy::ndarray::{Array3, Array4};
use numpy::{IntoPyArray, PyArray3, PyArray4};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::errors::IntoPyResult;
use super::settings::Integer;
use crate::aug::AugParams;
use crate::error::Result;
use crate::imaging::{Interpolation, Replayer};
use crate::loader::settings::{self, output_side};

thread_local! {
    static REPLAYER: RefCell<Option<Replayer>> = const { RefCell::new(None) };
}

/// Run `f` with this thread's replayer.
fn with_replayer<T>(f: impl FnOnce(&mut Replayer) -> Result<T>) -> Result<T> {
    REPLAYER.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(Replayer::new()?);
        }
        f(slot.as_mut().expect("initialised above"))
    })
}

/// Decode JPEG/PNG bytes to an RGB array [H, W, 3] uint8, identical to
/// `np.asarray(PIL.Image.open(io.BytesIO(data)).convert("RGB"))`.
#[pyfunction]
#[pyo3(signature = (data, /, *, max_pixels = None))]
fn decode_rgb<'py>(py: Python<'py>, data: &[u8], max_pixels: Option<u64>) -> PyResult<Bound<'py, PyArray3<u8>>> {
    let (pixels, w, h) = py
        .detach(|| {
            with_replayer(|r| {
                let saved = r.max_pixels();
                if let Some(m) = max_pixels {
                    r.set_max_pixels(m);
                }
                let res = r.decode_rgb("<bytes>", data);
                r.set_max_pixels(saved);
                let (w, h) = res?;
                let (pixels, _, _) = r.decoded().expect("decoded whole just above");
                Ok((pixels.to_vec(), w, h))
            })
        })
        .py_err()?;
    let arr = Array3::from_shape_vec((h, w, 3), pixels)
        .map_err(|e| PyValueError::new_err(format!("internal shape error: {e}")))?;
    Ok(arr.into_pyarray(py))
}

/// Decode `data` and replay one stored augmentation: crop box (top, left,
/// height, width) in image pixels (may extend past the image: black padding),
/// resize to `size` x `size` with `interpolation` ("bicubic", the training
/// replay's resampling for students and teachers, or "bilinear"),
/// optional horizontal flip, then up to two RandAugment ops `(op_index,
/// magnitude)` in order. Returns [size, size, 3] uint8, bit-identical to the
/// Pillow 13.0.0 + torchvision 0.29.2 reference. `partial_decode=False`
/// decodes whole JPEGs (same pixels, slower; for benchmarking).
/// `dct_scaling=r` turns on the fast, NOT exact mode: a JPEG crop at least
/// `r * size * d` pixels on both sides is decoded at 1/d (d = 8, 4, 2).
#[pyfunction]
#[pyo3(signature = (data, top, left, height, width, ops, size, interpolation = Interpolation::Bicubic, hflip = false, *, partial_decode = true, dct_scaling = None))]
// The default shown as the name Python passes (pyo3 would show "...").
#[pyo3(
    text_signature = "(data, top, left, height, width, ops, size, interpolation='bicubic', hflip=False, *, partial_decode=True, dct_scaling=None)"
)]
#[allow(clippy::too_many_arguments)]
fn replay_augmentation<'py>(
    py: Python<'py>,
    data: &[u8],
    top: i32,
    left: i32,
    height: i32,
    width: i32,
    ops: Vec<(u8, f64)>,
    size: Integer,
    interpolation: Interpolation,
    hflip: bool,
    partial_decode: bool,
    dct_scaling: Option<f64>,
) -> PyResult<Bound<'py, PyArray3<u8>>> {
    let aug = parse_entry(top, left, height, width, &ops, hflip)?;
    let size = output_side("size", size.0).py_err()?;
    let dct_scaling = settings::dct_scaling(dct_scaling).py_err()?;
    let n = size * size * 3;
    let out = py
        .detach(|| {
            let mut out = vec![0u8; n];
            with_replayer(|r| {
                r.set_partial_decode(partial_decode);
                r.set_dct_scaling(dct_scaling);
                r.replay("<bytes>", data, &aug, size, interpolation, &mut out)
            })?;
            Ok(out)
        })
        .py_err()?;
    let arr = Array3::from_shape_vec((size, size, 3), out)
        .map_err(|e| PyValueError::new_err(format!("internal shape error: {e}")))?;
    Ok(arr.into_pyarray(py))
}

/// One augmentation from its Python parts, validated by the record's own rule.
pub(super) fn parse_entry(
    top: i32,
    left: i32,
    height: i32,
    width: i32,
    ops: &[(u8, f64)],
    hflip: bool,
) -> PyResult<AugParams> {
    let ops: Vec<(i64, f64)> = ops.iter().map(|&(index, m)| (index as i64, m)).collect();
    let crop = [top, left, height, width].map(i64::from);
    AugParams::new(crop, &ops, false, hflip).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// One entry of `replay_augmentations`: `None` (null: whole image, no ops) or
/// `(top, left, height, width, ops, hflip)`.
type PyEntry = Option<(i32, i32, i32, i32, Vec<(u8, f64)>, bool)>;

/// Decode `data` once and replay several augmentations of it (as reinforcement
/// does for its J entries): returns [len(entries), size, size, 3] uint8, entry
/// k bit-identical to `replay_augmentation(data, *entries[k][:5], size,
/// interpolation, entries[k][5])`; a `None` entry is the whole image resized.
#[pyfunction]
#[pyo3(signature = (data, entries, size, interpolation = Interpolation::Bicubic))]
#[pyo3(text_signature = "(data, entries, size, interpolation='bicubic')")]
fn replay_augmentations<'py>(
    py: Python<'py>,
    data: &[u8],
    entries: Vec<PyEntry>,
    size: Integer,
    interpolation: Interpolation,
) -> PyResult<Bound<'py, PyArray4<u8>>> {
    let size = output_side("size", size.0).py_err()?;
    let mut augs = Vec::with_capacity(entries.len());
    for e in &entries {
        augs.push(match e {
            None => AugParams::null(1, 1),
            Some((top, left, height, width, ops, hflip)) => parse_entry(*top, *left, *height, *width, ops, *hflip)?,
        });
    }
    let n = size * size * 3;
    let out = py
        .detach(|| {
            let mut out = vec![0u8; augs.len() * n];
            with_replayer(|r| {
                r.set_partial_decode(true);
                r.set_dct_scaling(None);
                r.replay_many("<bytes>", data, &augs, size, interpolation, &mut out)
            })?;
            Ok(out)
        })
        .py_err()?;
    let arr = Array4::from_shape_vec((augs.len(), size, size, 3), out)
        .map_err(|e| PyValueError::new_err(format!("internal shape error: {e}")))?;
    Ok(arr.into_pyarray(py))
}

/// Force the portable pixel kernels (`True`) or go back to the default
/// (`False`: the best the CPU supports, unless `MOBILECLIP_FASTLOAD_PORTABLE=1`
/// is set), process-wide; returns the kernel set now in use ("avx2" or
/// "portable"). For tests and benchmarks.
#[pyfunction]
fn set_portable_kernels(on: bool) -> &'static str {
    crate::imaging::simd::set_force_portable(on);
    crate::imaging::simd::kernel_level()
}

/// The pixel kernel set in use: "avx2" or "portable".
#[pyfunction]
fn kernel_level() -> &'static str {
    crate::imaging::simd::kernel_level()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(decode_rgb, m)?)?;
    m.add_function(wrap_pyfunction!(replay_augmentation, m)?)?;
    m.add_function(wrap_pyfunction!(replay_augmentations, m)?)?;
    m.add_function(wrap_pyfunction!(set_portable_kernels, m)?)?;
    m.add_function(wrap_pyfunction!(kernel_level, m)?)?;
    let reference = pyo3::types::PyDict::new(m.py());
    for (distribution, version) in crate::imaging::PIXEL_REFERENCE {
        reference.set_item(distribution, version)?;
    }
    m.add("PIXEL_REFERENCE", reference)?;
    m.add("DECODE_MAX_PIXELS", crate::imaging::DECODE_MAX_PIXELS)?;
    Ok(())
}
