//! The embedding encodings for Python (the rules live in `store::encode`): what
//! the writer stores for an array, and what a reader gets back from stored values.

use half::f16;
use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::format::dtype_of;
use super::sample_input::HeldArray;
use crate::store::{
    bf16_bits_to_f32, dequantize_int8 as dequantize, encode, f32_to_bf16_bits, named_error, quantize_int8 as quantize,
    EmbeddingDtype, Encoded,
};

type Array<'py, T> = Bound<'py, PyArrayDyn<T>>;

fn shaped<'py, T: numpy::Element>(py: Python<'py>, values: Vec<T>, shape: &[usize]) -> PyResult<Array<'py, T>> {
    values.into_pyarray(py).reshape(shape.to_vec())
}

/// (rows, K*D) of a 2-D embedding matrix whose rows split into `k` teachers.
fn rows_of(shape: &[usize], k: usize, what: &str) -> PyResult<usize> {
    match shape {
        [rows, kd] if k > 0 && kd % k == 0 => Ok(*rows),
        _ => Err(PyValueError::new_err(format!(
            "{what} must be [rows, K*D] with K={k}, got shape {}",
            crate::store::shape_repr(shape)
        ))),
    }
}

/// Embeddings [rows, K*D] as stored: (values, scales or None). float16 and bfloat16
/// round to nearest even (bfloat16 values are uint16 bits; uint16 input is taken
/// as bits); int8 is symmetric per (row, teacher) with float32 scales [rows, K]
/// (int8 input is taken with the given `scales`). ValueError on non-finite input,
/// overflow or a type the dtype does not take.
#[pyfunction]
#[pyo3(signature = (x, embedding_dtype, k, scales=None, *, what="embedding"))]
fn encode_embeddings<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    embedding_dtype: &str,
    k: usize,
    scales: Option<&Bound<'py, PyAny>>,
    what: &str,
) -> PyResult<(Bound<'py, PyAny>, Option<Bound<'py, PyAny>>)> {
    let dtype = dtype_of(embedding_dtype)?;
    let held = HeldArray::embedding(x)?;
    let rows = rows_of(held.shape(), k, what)?;
    let scales = scales.filter(|s| !s.is_none()).map(HeldArray::f32).transpose()?;
    let values = held.embedding_values();
    let given = scales.as_ref().and_then(|s| s.f32_values());
    let encoded = py
        .detach(|| encode(values, rows, k, dtype, given))
        .map_err(|m| PyValueError::new_err(named_error(what, &m)))?;
    let shape = held.shape().to_vec();
    Ok(match encoded {
        Encoded::Bits16(bits) if dtype == EmbeddingDtype::Float16 => {
            (shaped(py, bits.into_iter().map(f16::from_bits).collect(), &shape)?.into_any(), None)
        }
        Encoded::Bits16(bits) => (shaped(py, bits, &shape)?.into_any(), None),
        Encoded::Int8 { values, scales } => {
            (shaped(py, values, &shape)?.into_any(), Some(shaped(py, scales, &[rows, k])?.into_any()))
        }
    })
}

/// Stored embedding values -> float32 (exact for float16 and bfloat16 bits;
/// int8 as q * scale with `scales` [rows, K]).
#[pyfunction]
#[pyo3(signature = (values, embedding_dtype, scales=None))]
fn decode_embeddings<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
    embedding_dtype: &str,
    scales: Option<&Bound<'py, PyAny>>,
) -> PyResult<Array<'py, f32>> {
    match dtype_of(embedding_dtype)? {
        EmbeddingDtype::Float16 => {
            let held = HeldArray::embedding(values)?;
            match held.embedding_values() {
                crate::store::EmbeddingValues::F16(v) => {
                    shaped(py, v.iter().map(|x| x.to_f32()).collect(), held.shape())
                }
                _ => Err(PyValueError::new_err("float16 values must be a float16 array")),
            }
        }
        EmbeddingDtype::BFloat16 => bf16_bits_to_float32(py, values),
        EmbeddingDtype::Int8 => {
            let scales = scales.ok_or_else(|| PyValueError::new_err("int8 values need their scales"))?;
            dequantize_int8(py, values, scales)
        }
    }
}

/// float -> bfloat16 bit patterns (uint16), round to nearest even. Inputs must be finite.
#[pyfunction]
fn float_to_bf16_bits<'py>(py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Array<'py, u16>> {
    let held = HeldArray::f32(x)?;
    let v = held.f32_values().expect("held as float32");
    shaped(py, v.iter().map(|&x| f32_to_bf16_bits(x)).collect(), held.shape())
}

/// bfloat16 bit patterns (uint16) -> float32 (exact).
#[pyfunction]
fn bf16_bits_to_float32<'py>(py: Python<'py>, bits: &Bound<'py, PyAny>) -> PyResult<Array<'py, f32>> {
    let held = HeldArray::uint16(bits)?;
    let v = held.u16_values().expect("held as uint16");
    shaped(py, v.iter().map(|&b| bf16_bits_to_f32(b)).collect(), held.shape())
}

/// [rows, K*D] float -> (int8 [rows, K*D], float32 scales [rows, K]).
#[pyfunction]
fn quantize_int8<'py>(py: Python<'py>, x: &Bound<'py, PyAny>, k: usize) -> PyResult<(Array<'py, i8>, Array<'py, f32>)> {
    let held = HeldArray::f32(x)?;
    let rows = rows_of(held.shape(), k, "x")?;
    let v = held.f32_values().expect("held as float32");
    let d = if rows == 0 { 1 } else { v.len() / (rows * k) };
    let (values, scales) = py.detach(|| quantize(v, d));
    Ok((shaped(py, values, held.shape())?, shaped(py, scales, &[rows, k])?))
}

/// int8 [rows, K*D] and scales [rows, K] -> float32 [rows, K*D].
#[pyfunction]
fn dequantize_int8<'py>(
    py: Python<'py>,
    q: &Bound<'py, PyAny>,
    scales: &Bound<'py, PyAny>,
) -> PyResult<Array<'py, f32>> {
    let q_held = HeldArray::embedding(q)?;
    let s_held = HeldArray::f32(scales)?;
    let Some(values) = q_held.i8_values() else {
        return Err(PyValueError::new_err("int8 values must be an int8 array"));
    };
    let s = s_held.f32_values().expect("held as float32");
    let (rows, k) = match s_held.shape() {
        [rows, k] => (*rows, *k),
        other => {
            return Err(PyValueError::new_err(format!(
                "scales must be [rows, K], got shape {}",
                crate::store::shape_repr(other)
            )))
        }
    };
    if rows * k == 0 || values.len() % (rows * k) != 0 {
        if values.is_empty() {
            return shaped(py, Vec::new(), q_held.shape());
        }
        return Err(PyValueError::new_err(format!(
            "{} int8 values do not split into [{rows}, {k}] scales",
            values.len()
        )));
    }
    let d = values.len() / (rows * k);
    shaped(py, dequantize(values, s, d), q_held.shape())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode_embeddings, m)?)?;
    m.add_function(wrap_pyfunction!(decode_embeddings, m)?)?;
    m.add_function(wrap_pyfunction!(float_to_bf16_bits, m)?)?;
    m.add_function(wrap_pyfunction!(bf16_bits_to_float32, m)?)?;
    m.add_function(wrap_pyfunction!(quantize_int8, m)?)?;
    m.add_function(wrap_pyfunction!(dequantize_int8, m)?)?;
    Ok(())
}
