//! A Python `Sample` as the core writer takes it: each field read once, arrays
//! borrowed as C-contiguous numpy buffers (no per-element Python work), so the
//! core can check and encode it with the GIL released.

use half::f16;
use numpy::{
    PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyString};

use crate::store::{Dims, EmbeddingInput, EmbeddingValues, SampleInput, TokenValues, TokensInput};

/// A numpy array kept borrowed (read-only) for as long as the core reads it.
enum Held<'py> {
    F16(PyReadonlyArrayDyn<'py, f16>),
    F32(PyReadonlyArrayDyn<'py, f32>),
    F64(PyReadonlyArrayDyn<'py, f64>),
    U16(PyReadonlyArrayDyn<'py, u16>),
    I8(PyReadonlyArrayDyn<'py, i8>),
    I64(PyReadonlyArrayDyn<'py, i64>),
    /// Another element type, by numpy's name for it.
    Other(String),
}

pub(crate) struct HeldArray<'py> {
    shape: Vec<usize>,
    data: Held<'py>,
}

fn numpy_fn<'py>(
    py: Python<'py>,
    name: &'static str,
    cell: &'static PyOnceLock<Py<PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(cell.get_or_try_init(py, || py.import("numpy")?.getattr(name).map(Bound::unbind))?.bind(py).clone())
}

/// `numpy.ascontiguousarray(obj)` (a no-op for a C-contiguous array), optionally cast.
fn contiguous<'py>(obj: &Bound<'py, PyAny>, dtype: Option<&str>) -> PyResult<Bound<'py, PyUntypedArray>> {
    static ASCONTIGUOUS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let f = numpy_fn(obj.py(), "ascontiguousarray", &ASCONTIGUOUS)?;
    let array = match dtype {
        Some(dt) => f.call1((obj, dt))?,
        None => f.call1((obj,))?,
    };
    Ok(array.cast_into::<PyUntypedArray>()?)
}

fn readonly<'py, T: numpy::Element>(a: &Bound<'py, PyUntypedArray>) -> PyResult<PyReadonlyArrayDyn<'py, T>> {
    Ok(a.cast::<PyArrayDyn<T>>()?.try_readonly()?)
}

impl<'py> HeldArray<'py> {
    /// `obj` as a C-contiguous array in native byte order, and its numpy kind and item size.
    fn native(obj: &Bound<'py, PyAny>) -> PyResult<(Bound<'py, PyUntypedArray>, u8, usize)> {
        let mut a = contiguous(obj, None)?;
        if a.dtype().is_native_byteorder() == Some(false) {
            let native = a.dtype().call_method1("newbyteorder", ("=",))?;
            a = contiguous(&a.call_method1("astype", (native,))?, None)?;
        }
        let (kind, size) = (a.dtype().kind(), a.dtype().itemsize());
        Ok((a, kind, size))
    }

    /// Borrow `obj` as embedding values (floats, uint16 bf16 bits or int8).
    pub(crate) fn embedding(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        let (a, kind, size) = Self::native(obj)?;
        let data = match (kind, size) {
            (b'f', 2) => Held::F16(readonly(&a)?),
            (b'f', 4) => Held::F32(readonly(&a)?),
            (b'f', 8) => Held::F64(readonly(&a)?),
            (b'f', _) => Held::F64(readonly(&contiguous(&a, Some("float64"))?)?), // long double
            (b'u', 2) => Held::U16(readonly(&a)?),
            (b'i', 1) => Held::I8(readonly(&a)?),
            _ => Held::Other(a.dtype().to_string()),
        };
        Ok(HeldArray { shape: a.shape().to_vec(), data })
    }

    /// Borrow `obj` as token ids (uint16, or another integer type widened to int64).
    pub(crate) fn token_ids(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        let (a, kind, size) = Self::native(obj)?;
        let data = match (kind, size) {
            (b'u', 2) => Held::U16(readonly(&a)?),
            (b'i' | b'u', _) => Held::I64(readonly(&contiguous(&a, Some("int64"))?)?),
            _ => Held::Other(a.dtype().to_string()),
        };
        Ok(HeldArray { shape: a.shape().to_vec(), data })
    }

    /// Borrow `obj` as float32 (cast when it is another type).
    pub(crate) fn f32(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        let a = contiguous(obj, Some("float32"))?;
        Ok(HeldArray { shape: a.shape().to_vec(), data: Held::F32(readonly(&a)?) })
    }

    /// Borrow `obj` as uint16 (cast when it is another type).
    pub(crate) fn uint16(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        let a = contiguous(obj, Some("uint16"))?;
        Ok(HeldArray { shape: a.shape().to_vec(), data: Held::U16(readonly(&a)?) })
    }

    fn slice<'a, T: numpy::Element>(a: &'a PyReadonlyArrayDyn<'py, T>) -> &'a [T] {
        a.as_slice().expect("made C-contiguous above")
    }

    pub(crate) fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub(crate) fn embedding_values(&self) -> EmbeddingValues<'_> {
        match &self.data {
            Held::F16(a) => EmbeddingValues::F16(Self::slice(a)),
            Held::F32(a) => EmbeddingValues::F32(Self::slice(a)),
            Held::F64(a) => EmbeddingValues::F64(Self::slice(a)),
            Held::U16(a) => EmbeddingValues::U16(Self::slice(a)),
            Held::I8(a) => EmbeddingValues::I8(Self::slice(a)),
            Held::Other(name) => EmbeddingValues::Other(name),
            Held::I64(_) => EmbeddingValues::Other("int64"),
        }
    }

    pub(crate) fn f32_values(&self) -> Option<&[f32]> {
        match &self.data {
            Held::F32(a) => Some(Self::slice(a)),
            _ => None,
        }
    }

    pub(crate) fn u16_values(&self) -> Option<&[u16]> {
        match &self.data {
            Held::U16(a) => Some(Self::slice(a)),
            _ => None,
        }
    }

    pub(crate) fn i8_values(&self) -> Option<&[i8]> {
        match &self.data {
            Held::I8(a) => Some(Self::slice(a)),
            _ => None,
        }
    }

    fn tokens(&self) -> TokensInput<'_> {
        let values = match &self.data {
            Held::U16(a) => TokenValues::U16(Self::slice(a)),
            Held::I64(a) => TokenValues::I64(Self::slice(a)),
            Held::Other(name) => TokenValues::Other(name),
            _ => TokenValues::Other("not integers"),
        };
        TokensInput { values, shape: &self.shape }
    }
}

/// Bytes-like -> `bytes` (no copy when it already is one).
fn as_bytes<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    match obj.cast::<PyBytes>() {
        Ok(b) => Ok(b.clone()),
        Err(_) => Ok(obj.py().get_type::<PyBytes>().call1((obj,))?.cast_into::<PyBytes>()?),
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

/// One Python `Sample`, its fields held for the core.
pub(crate) struct HeldSample<'py> {
    uid: String,
    image: Bound<'py, PyBytes>,
    size: [i128; 4],
    caption: String,
    caption_tokens: HeldArray<'py>,
    syn_captions: Vec<String>,
    syn_tokens: Vec<HeldArray<'py>>,
    aug: Bound<'py, PyBytes>,
    image_emb: HeldArray<'py>,
    text_emb: HeldArray<'py>,
    image_scale: Option<HeldArray<'py>>,
    text_scale: Option<HeldArray<'py>>,
    sha256: Option<Bound<'py, PyBytes>>,
    flags: i128,
}

impl<'py> HeldSample<'py> {
    /// Read a `Sample`; a field of the wrong kind is a ValueError naming the sample.
    pub(crate) fn new(sample: &Bound<'py, PyAny>, dims: Dims, aug_dtype: &Bound<'py, PyAny>) -> PyResult<Self> {
        Self::read(sample, dims, aug_dtype).map_err(|e| {
            let py = sample.py();
            if !e.is_instance_of::<PyValueError>(py) && !e.is_instance_of::<pyo3::exceptions::PyTypeError>(py) {
                return e;
            }
            let uid =
                sample.getattr("uid").and_then(|u| u.repr()).map(|r| r.to_string()).unwrap_or_else(|_| "'?'".into());
            PyValueError::new_err(format!("sample {uid}: {}", e.value(py)))
        })
    }

    fn read(s: &Bound<'py, PyAny>, dims: Dims, aug_dtype: &Bound<'py, PyAny>) -> PyResult<Self> {
        let text = |name: &str| -> PyResult<String> {
            let v = s.getattr(name)?;
            match v.cast::<PyString>() {
                Ok(t) => Ok(t.to_str()?.to_string()),
                Err(_) => Err(PyValueError::new_err(format!("{name} must be str, got {}", type_name(&v)))),
            }
        };
        let uid = text("uid")?;
        let image = s.getattr("image")?;
        let is_array = image.cast::<PyUntypedArray>().is_ok();
        if !(is_array
            || image.is_instance_of::<PyBytes>()
            || image.is_instance_of::<pyo3::types::PyByteArray>()
            || image.is_instance_of::<pyo3::types::PyMemoryView>())
        {
            return Err(PyValueError::new_err(format!("image must be bytes, got {}", type_name(&image))));
        }
        let image = as_bytes(&image)?;
        let mut size = [0i128; 4];
        for (v, name) in size.iter_mut().zip(["width", "height", "orig_width", "orig_height"]) {
            *v = s
                .getattr(name)?
                .extract::<i128>()
                .map_err(|_| PyValueError::new_err(format!("{name} must fit uint32")))?;
        }
        let caption = text("caption")?;
        let syn = s.getattr("syn_captions")?;
        let syn_len = syn.len()?;
        let mut syn_captions = Vec::with_capacity(syn_len);
        for c in syn.try_iter()? {
            let c = c?;
            match c.cast::<PyString>() {
                Ok(t) => syn_captions.push(t.to_str()?.to_string()),
                Err(_) => {
                    return Err(PyValueError::new_err(format!(
                        "syn_captions must be {} strings, got {syn_len}",
                        dims.s
                    )))
                }
            }
        }
        let syn_tokens =
            s.getattr("syn_tokens")?.try_iter()?.map(|t| HeldArray::token_ids(&t?)).collect::<PyResult<Vec<_>>>()?;
        let aug = contiguous(&s.getattr("aug")?, None)?;
        if !aug.dtype().as_any().eq(aug_dtype)? {
            return Err(PyValueError::new_err(format!("aug must have dtype AUG_DTYPE, got {}", aug.dtype())));
        }
        if aug.shape() != [dims.j] {
            return Err(PyValueError::new_err(format!(
                "aug must have shape ({},), got {}",
                dims.j,
                crate::store::shape_repr(aug.shape())
            )));
        }
        let aug = aug.call_method0("tobytes")?.cast_into::<PyBytes>()?;
        let optional = |name: &str| -> PyResult<Option<Bound<'py, PyAny>>> {
            let v = s.getattr(name)?;
            Ok((!v.is_none()).then_some(v))
        };
        let sha256 = optional("sha256")?.map(|h| as_bytes(&h)).transpose()?;
        let flags =
            s.getattr("flags")?.extract::<i128>().map_err(|_| PyValueError::new_err("flags must fit uint32"))?;
        Ok(HeldSample {
            uid,
            image,
            size,
            caption,
            caption_tokens: HeldArray::token_ids(&s.getattr("caption_tokens")?)?,
            syn_captions,
            syn_tokens,
            aug,
            image_emb: HeldArray::embedding(&s.getattr("image_emb")?)?,
            text_emb: HeldArray::embedding(&s.getattr("text_emb")?)?,
            image_scale: optional("image_emb_scale")?.map(|a| HeldArray::f32(&a)).transpose()?,
            text_scale: optional("text_emb_scale")?.map(|a| HeldArray::f32(&a)).transpose()?,
            sha256,
            flags,
        })
    }

    /// The core's view of the sample (borrows the held buffers).
    pub(crate) fn input(&self) -> SampleInput<'_> {
        fn embedding<'a>(a: &'a HeldArray<'_>, scales: &'a Option<HeldArray<'_>>) -> EmbeddingInput<'a> {
            EmbeddingInput {
                values: a.embedding_values(),
                shape: &a.shape,
                scales: scales.as_ref().and_then(|s| s.f32_values()),
            }
        }
        SampleInput {
            uid: &self.uid,
            image: self.image.as_bytes(),
            size: self.size,
            caption: &self.caption,
            caption_tokens: self.caption_tokens.tokens(),
            syn_captions: self.syn_captions.iter().map(String::as_str).collect(),
            syn_tokens: self.syn_tokens.iter().map(HeldArray::tokens).collect(),
            aug: self.aug.as_bytes(),
            image_emb: embedding(&self.image_emb, &self.image_scale),
            text_emb: embedding(&self.text_emb, &self.text_scale),
            sha256: self.sha256.as_ref().map(|h| h.as_bytes()),
            flags: self.flags,
        }
    }
}
