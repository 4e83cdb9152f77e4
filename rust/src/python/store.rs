//! Python bindings of the DR store: the `Store` class (zero-copy numpy views that
//! keep the mapping alive), `verify_store` and `store_shard_info` (the writer's
//! checksum source).

use std::os::raw::c_int;
use std::path::PathBuf;
use std::ptr;
use std::sync::Arc;

use numpy::npyffi::{self, npy_intp, NpyTypes, PY_ARRAY_API};
use numpy::PyArrayDescr;
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use super::errors::IntoPyResult;
use crate::error::Error;
use crate::store::{hex64, AccessPattern, EmbeddingDtype, Shard, Store};

/// dtypes of the views, resolved once per Store.
struct Dtypes {
    uint8: Py<PyArrayDescr>,
    uint16: Py<PyArrayDescr>,
    float32: Py<PyArrayDescr>,
    embedding: Py<PyArrayDescr>,
    aug: Py<PyArrayDescr>,
}

/// A read-only, memory-mapped DR store (see docs/FORMAT.md).
///
/// Arrays it returns are zero-copy, read-only views into the mapped shard files;
/// each keeps this Store (and so the mapping) alive.
#[pyclass(name = "Store", module = "mobileclip_fastload", frozen)]
pub struct PyStore {
    inner: Arc<Store>,
    dtypes: Dtypes,
    sample_module: Py<PyModule>,
}

impl PyStore {
    /// The core store, for other bindings (the loader) to share.
    #[allow(dead_code)]
    pub(crate) fn store(&self) -> Arc<Store> {
        self.inner.clone()
    }

    /// Python-style index (negative counts from the end) -> checked global index.
    fn index(&self, i: isize) -> PyResult<usize> {
        let len = self.inner.len();
        let resolved = if i < 0 { i + len as isize } else { i };
        if resolved < 0 || resolved as usize >= len {
            return Err(Error::Index { index: i as i64, len }).py_err();
        }
        Ok(resolved as usize)
    }

    fn check_below(what: &str, value: usize, limit: usize) -> PyResult<()> {
        if value >= limit {
            return Err(PyIndexError::new_err(format!("{what} {value} out of range 0..{limit}")));
        }
        Ok(())
    }
}

/// A read-only numpy array over `bytes` (which must live as long as `owner`).
fn view<'py>(
    owner: &Bound<'py, PyStore>,
    bytes: &[u8],
    dtype: &Py<PyArrayDescr>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    let py = owner.py();
    let mut dims: Vec<npy_intp> = shape.iter().map(|&n| n as npy_intp).collect();
    // SAFETY: `bytes` points into the store's mapping, which lives as long as the
    // Store object that becomes the array's base. Flags 0 = not writeable; numpy
    // itself works out contiguity and alignment. NewFromDescr steals the descr
    // reference and SetBaseObject steals the owner reference.
    unsafe {
        let descr = dtype.clone_ref(py).into_ptr() as *mut npyffi::PyArray_Descr;
        let array = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            npyffi::get_type_object(py, NpyTypes::PyArray_Type),
            descr,
            dims.len() as c_int,
            dims.as_mut_ptr(),
            ptr::null_mut(),
            bytes.as_ptr() as *mut _,
            0,
            ptr::null_mut(),
        );
        if array.is_null() {
            return Err(PyErr::fetch(py));
        }
        let array = Bound::from_owned_ptr(py, array);
        let base = owner.clone().into_any().into_ptr();
        if PY_ARRAY_API.PyArray_SetBaseObject(py, array.as_ptr() as *mut npyffi::PyArrayObject, base) < 0 {
            return Err(PyErr::fetch(py));
        }
        Ok(array)
    }
}

fn as_bytes<T>(values: &[T]) -> &[u8] {
    // SAFETY: plain numeric values reinterpreted as their bytes.
    unsafe { std::slice::from_raw_parts(values.as_ptr() as *const u8, std::mem::size_of_val(values)) }
}

#[pymethods]
impl PyStore {
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let inner = py.detach(|| Store::open(&path)).py_err()?;
        let sample_module = py.import("mobileclip_fastload.store.sample")?;
        let descr = |ob: Bound<'_, PyAny>| -> PyResult<Py<PyArrayDescr>> { Ok(PyArrayDescr::new(py, ob)?.unbind()) };
        let np_name = |name: &str| -> PyResult<Py<PyArrayDescr>> { Ok(PyArrayDescr::new(py, name)?.unbind()) };
        let embedding = match inner.embedding_dtype() {
            EmbeddingDtype::Float16 => "<f2",
            EmbeddingDtype::BFloat16 => "<u2",
            EmbeddingDtype::Int8 => "i1",
        };
        let dtypes = Dtypes {
            uint8: np_name("u1")?,
            uint16: np_name("<u2")?,
            float32: np_name("<f4")?,
            embedding: np_name(embedding)?,
            aug: descr(sample_module.getattr("AUG_DTYPE")?)?,
        };
        Ok(PyStore { inner: Arc::new(inner), dtypes, sample_module: sample_module.unbind() })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        let d = self.inner.dims();
        format!(
            "Store({:?}, samples={}, shards={}, J={}, S={}, K={}, D={}, embedding_dtype={})",
            self.inner.dir().display().to_string(),
            self.inner.len(),
            self.inner.num_shards(),
            d.j,
            d.s,
            d.k,
            d.d,
            self.inner.embedding_dtype()
        )
    }

    /// The store directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.dir().to_path_buf()
    }

    /// {"J": augmentations, "S": synthetic captions, "K": teachers, "D": dims per teacher}.
    #[getter]
    fn dims<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = self.inner.dims();
        let dict = PyDict::new(py);
        dict.set_item("J", d.j)?;
        dict.set_item("S", d.s)?;
        dict.set_item("K", d.k)?;
        dict.set_item("D", d.d)?;
        Ok(dict)
    }

    /// "float16", "bfloat16" (views are uint16 bit patterns) or "int8" (with scales).
    #[getter]
    fn embedding_dtype(&self) -> &'static str {
        self.inner.embedding_dtype().name()
    }

    #[getter]
    fn num_shards(&self) -> usize {
        self.inner.num_shards()
    }

    /// The parsed manifest.json.
    #[getter]
    fn manifest<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("json")?.call_method1("loads", (self.inner.manifest_text(),))
    }

    /// {column: bytes in the shard files}, summed over shards, in file order.
    fn column_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for (name, n) in self.inner.column_bytes() {
            dict.set_item(name, n)?;
        }
        Ok(dict)
    }

    /// Path of the shard file holding sample `i`.
    fn shard_path(&self, i: isize) -> PyResult<PathBuf> {
        Ok(self.inner.shard_path_of(self.index(i)?).to_path_buf())
    }

    fn uid(&self, i: isize) -> PyResult<&str> {
        Ok(self.inner.uid(self.index(i)?))
    }

    /// Encoded image bytes as a read-only uint8 view.
    fn image<'py>(slf: &Bound<'py, Self>, i: isize) -> PyResult<Bound<'py, PyAny>> {
        let me = slf.get();
        let bytes = me.inner.image_bytes(me.index(i)?);
        view(slf, bytes, &me.dtypes.uint8, &[bytes.len()])
    }

    /// (width, height) of the stored image.
    fn image_size(&self, i: isize) -> PyResult<(u32, u32)> {
        Ok(self.inner.image_size(self.index(i)?))
    }

    /// (width, height) of the original image.
    fn orig_size(&self, i: isize) -> PyResult<(u32, u32)> {
        Ok(self.inner.orig_size(self.index(i)?))
    }

    fn caption(&self, i: isize) -> PyResult<&str> {
        Ok(self.inner.caption(self.index(i)?))
    }

    /// Token ids of the real caption (uint16 view, unpadded).
    fn caption_tokens<'py>(slf: &Bound<'py, Self>, i: isize) -> PyResult<Bound<'py, PyAny>> {
        let me = slf.get();
        let tokens = me.inner.caption_tokens(me.index(i)?);
        view(slf, as_bytes(tokens), &me.dtypes.uint16, &[tokens.len()])
    }

    fn syn_captions(&self, i: isize) -> PyResult<Vec<&str>> {
        let i = self.index(i)?;
        Ok((0..self.inner.dims().s).map(|s| self.inner.syn_caption(i, s)).collect())
    }

    /// Token ids of synthetic caption `s` (uint16 view, unpadded).
    fn syn_tokens<'py>(slf: &Bound<'py, Self>, i: isize, s: usize) -> PyResult<Bound<'py, PyAny>> {
        let me = slf.get();
        let i = me.index(i)?;
        Self::check_below("synthetic caption", s, me.inner.dims().s)?;
        let tokens = me.inner.syn_tokens(i, s);
        view(slf, as_bytes(tokens), &me.dtypes.uint16, &[tokens.len()])
    }

    /// The J augmentation records as a structured AUG_DTYPE view, shape [J].
    fn aug<'py>(slf: &Bound<'py, Self>, i: isize) -> PyResult<Bound<'py, PyAny>> {
        let me = slf.get();
        view(slf, me.inner.aug_bytes(me.index(i)?), &me.dtypes.aug, &[me.inner.dims().j])
    }

    /// Image embedding row (i, j): [K*D] view in the store dtype.
    fn image_emb<'py>(slf: &Bound<'py, Self>, i: isize, j: usize) -> PyResult<Bound<'py, PyAny>> {
        let me = slf.get();
        let i = me.index(i)?;
        let d = me.inner.dims();
        Self::check_below("augmentation", j, d.j)?;
        view(slf, me.inner.image_emb_raw(i, j), &me.dtypes.embedding, &[d.row_len()])
    }

    /// All image embeddings of sample `i`: [J, K*D] view.
    fn image_embs<'py>(slf: &Bound<'py, Self>, i: isize) -> PyResult<Bound<'py, PyAny>> {
        let me = slf.get();
        let d = me.inner.dims();
        view(slf, me.inner.image_embs_raw(me.index(i)?), &me.dtypes.embedding, &[d.j, d.row_len()])
    }

    /// Text embeddings of sample `i`: [1+S, K*D] view; row 0 is the real caption.
    fn text_emb<'py>(slf: &Bound<'py, Self>, i: isize) -> PyResult<Bound<'py, PyAny>> {
        let me = slf.get();
        let d = me.inner.dims();
        view(slf, me.inner.text_embs_raw(me.index(i)?), &me.dtypes.embedding, &[d.text_rows(), d.row_len()])
    }

    /// int8 stores: per-(row, teacher) scales of the image embeddings, [J, K] float32; else None.
    fn image_emb_scales<'py>(slf: &Bound<'py, Self>, i: isize) -> PyResult<Option<Bound<'py, PyAny>>> {
        let me = slf.get();
        let i = me.index(i)?;
        let d = me.inner.dims();
        if !me.inner.embedding_dtype().has_scales() {
            return Ok(None);
        }
        view(slf, as_bytes(me.inner.image_emb_scales(i)), &me.dtypes.float32, &[d.j, d.k]).map(Some)
    }

    /// int8 stores: scales of the text embeddings, [1+S, K] float32; else None.
    fn text_emb_scales<'py>(slf: &Bound<'py, Self>, i: isize) -> PyResult<Option<Bound<'py, PyAny>>> {
        let me = slf.get();
        let i = me.index(i)?;
        let d = me.inner.dims();
        if !me.inner.embedding_dtype().has_scales() {
            return Ok(None);
        }
        view(slf, as_bytes(me.inner.text_emb_scales(i)), &me.dtypes.float32, &[d.text_rows(), d.k]).map(Some)
    }

    /// sha256 of the original image bytes, or None when unknown.
    fn sha256<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Option<Bound<'py, PyBytes>>> {
        Ok(self.inner.sha256(self.index(i)?).map(|h| PyBytes::new(py, h)))
    }

    fn flags(&self, i: isize) -> PyResult<u32> {
        Ok(self.inner.flags(self.index(i)?))
    }

    /// Everything about sample `i` as a `Sample` (arrays are read-only views).
    fn sample<'py>(slf: &Bound<'py, Self>, i: isize) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let me = slf.get();
        let g = me.index(i)?;
        let st = &me.inner;
        let (w, h) = st.image_size(g);
        let (ow, oh) = st.orig_size(g);
        let s = st.dims().s;
        let kw = PyDict::new(py);
        kw.set_item("uid", st.uid(g))?;
        kw.set_item("image", PyBytes::new(py, st.image_bytes(g)))?;
        kw.set_item("width", w)?;
        kw.set_item("height", h)?;
        kw.set_item("orig_width", ow)?;
        kw.set_item("orig_height", oh)?;
        kw.set_item("caption", st.caption(g))?;
        kw.set_item("caption_tokens", Self::caption_tokens(slf, i)?)?;
        kw.set_item("syn_captions", (0..s).map(|k| st.syn_caption(g, k)).collect::<Vec<_>>())?;
        let syn_tokens = (0..s).map(|k| Self::syn_tokens(slf, i, k)).collect::<PyResult<Vec<_>>>()?;
        kw.set_item("syn_tokens", PyList::new(py, syn_tokens)?)?;
        kw.set_item("aug", Self::aug(slf, i)?)?;
        kw.set_item("image_emb", Self::image_embs(slf, i)?)?;
        kw.set_item("text_emb", Self::text_emb(slf, i)?)?;
        kw.set_item("sha256", st.sha256(g).map(|h| PyBytes::new(py, h)))?;
        kw.set_item("flags", st.flags(g))?;
        kw.set_item("image_emb_scale", Self::image_emb_scales(slf, i)?)?;
        kw.set_item("text_emb_scale", Self::text_emb_scales(slf, i)?)?;
        me.sample_module.bind(py).getattr("Sample")?.call((), Some(&kw))
    }

    fn __getitem__<'py>(slf: &Bound<'py, Self>, i: isize) -> PyResult<Bound<'py, PyAny>> {
        Self::sample(slf, i)
    }

    /// Samples in order (SampleIndexError is not an IndexError, so the
    /// `__getitem__` iteration protocol would not stop by itself).
    fn __iter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let builtins = py.import("builtins")?;
        let indices = builtins.getattr("range")?.call1((slf.get().inner.len(),))?;
        builtins.getattr("map")?.call1((slf.getattr("sample")?, indices))
    }

    /// Read-ahead hint for the embedding columns: "random" (the default after
    /// opening: a cold row read fetches only its own pages), "sequential" (a
    /// full pass in order) or "normal" (the kernel's default).
    fn advise(&self, pattern: &str) -> PyResult<()> {
        let pattern = match pattern {
            "random" => AccessPattern::Random,
            "sequential" => AccessPattern::Sequential,
            "normal" => AccessPattern::Normal,
            other => return Err(PyValueError::new_err(format!("access pattern must be random, sequential or normal, not {other:?}"))),
        };
        self.inner.advise(pattern);
        Ok(())
    }

    /// Recompute every checksum against the manifest; one message per problem
    /// (empty when the store is intact).
    fn verify(&self, py: Python<'_>) -> Vec<String> {
        let store = self.inner.clone();
        py.detach(move || store.verify().iter().map(|p| p.to_string()).collect())
    }
}

/// Verify a store directory without opening it (a shard that no longer opens is
/// reported, not raised). Returns one message per problem.
#[pyfunction]
fn verify_store(py: Python<'_>, path: PathBuf) -> PyResult<Vec<String>> {
    let problems = py.detach(|| crate::store::verify_dir(&path)).py_err()?;
    Ok(problems.iter().map(|p| p.to_string()).collect())
}

/// Validate one written shard file and compute what its manifest entry records:
/// {"num_samples", "file_bytes", "file_xxh3", "columns": {name: xxh3 hex},
/// "dims": {"J", "S", "K", "D"}, "embedding_dtype"}.
#[pyfunction]
fn store_shard_info<'py>(py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyDict>> {
    let (shard, sums) = py
        .detach(|| Shard::open(&path, None).map(|s| {
            let sums = s.checksums();
            (s, sums)
        }))
        .py_err()?;
    let dict = PyDict::new(py);
    dict.set_item("num_samples", shard.len())?;
    dict.set_item("file_bytes", sums.file_bytes)?;
    dict.set_item("file_xxh3", hex64(sums.file_xxh3))?;
    let columns = PyDict::new(py);
    for (name, h) in &sums.columns {
        columns.set_item(name, hex64(*h))?;
    }
    dict.set_item("columns", columns)?;
    let d = shard.dims();
    let dims = PyDict::new(py);
    dims.set_item("J", d.j)?;
    dims.set_item("S", d.s)?;
    dims.set_item("K", d.k)?;
    dims.set_item("D", d.d)?;
    dict.set_item("dims", dims)?;
    dict.set_item("embedding_dtype", shard.dtype().name())?;
    Ok(dict)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyStore>()?;
    m.add_function(wrap_pyfunction!(verify_store, m)?)?;
    m.add_function(wrap_pyfunction!(store_shard_info, m)?)?;
    Ok(())
}
