//! Python bindings of the DR store: the `Store` class (zero-copy numpy views that
//! keep the mapping alive), `verify_store` and `store_shard_info` (the writer's
//! checksum source).

use std::collections::HashMap;
use std::os::raw::c_int;
use std::path::PathBuf;
use std::ptr;
use std::sync::Arc;

use numpy::npyffi::{self, npy_intp, NpyTypes, PY_ARRAY_API};
use numpy::PyArrayDescr;
use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use super::errors::IntoPyResult;
use super::format::{caption_sets_py, dims_dict};
use super::settings::Integer;
use crate::error::Error;
use crate::loader::settings::integer;
use crate::store::{hex64, open_location, AccessPattern, EmbeddingDtype, RemoteOptions, Shard, Store};

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
    /// Sample `i` (Python-style index): its shard, mapped on first use (a remote
    /// store may download it: the GIL is released meanwhile), and its row.
    fn row(&self, py: Python<'_>, i: isize) -> PyResult<(Arc<Shard>, usize)> {
        let g = self.index(i)?;
        let store = &self.inner;
        py.detach(|| store.sample(g)).py_err()
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

/// Keeps one mapped shard alive for as long as numpy views into it exist
/// (a remote store's cache may unmap the shard from the store meanwhile).
#[pyclass(name = "MappedShard", module = "mobileclip_fastload", frozen)]
struct MappedShard(#[allow(dead_code)] Arc<Shard>);

/// A remote store's download counters as a dict (None for a local store).
pub(crate) fn cache_stats<'py>(py: Python<'py>, store: &Store) -> PyResult<Option<Bound<'py, PyDict>>> {
    #[cfg(feature = "remote")]
    if let Some(s) = store.cache_stats() {
        let dict = PyDict::new(py);
        dict.set_item("bytes_downloaded", s.bytes_downloaded)?;
        dict.set_item("downloads", s.downloads)?;
        dict.set_item("failed_attempts", s.failed_attempts)?;
        dict.set_item("evictions", s.evictions)?;
        return Ok(Some(dict));
    }
    let _ = (py, store);
    Ok(None)
}

/// Remote-store options from the Python keywords (defaults where None), for
/// `Store` and the loader alike.
pub(crate) fn remote_options(
    cache_dir: Option<PathBuf>,
    cache_size: Option<Integer>,
    storage_options: Option<HashMap<String, String>>,
) -> PyResult<RemoteOptions> {
    let mut options = RemoteOptions { cache_dir, ..RemoteOptions::default() };
    if let Some(size) = cache_size {
        options.cache_size = integer("cache_size", size.0, 1).py_err()?;
    }
    options.object_store_options = storage_options.unwrap_or_default().into_iter().collect();
    Ok(options)
}

/// A read-only numpy array over `bytes`, which must lie inside `shard`'s mapping.
fn view<'py>(
    py: Python<'py>,
    shard: &Arc<Shard>,
    bytes: &[u8],
    dtype: &Py<PyArrayDescr>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    let owner = Bound::new(py, MappedShard(shard.clone()))?;
    let mut dims: Vec<npy_intp> = shape.iter().map(|&n| n as npy_intp).collect();
    // SAFETY: `bytes` points into the shard's mapping, which lives as long as the
    // MappedShard object that becomes the array's base. Flags 0 = not writeable; numpy
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
        let base = owner.into_any().into_ptr();
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
    /// `path`: a store directory, or a URL (`s3://`, `gs://`, `az://`,
    /// `http(s)://`, `file://`) read through a local shard cache.
    #[new]
    #[pyo3(signature = (path, *, cache_dir=None, cache_size=None, storage_options=None))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        cache_dir: Option<PathBuf>,
        cache_size: Option<Integer>,
        storage_options: Option<HashMap<String, String>>,
    ) -> PyResult<Self> {
        let location = path.to_string_lossy().into_owned();
        let options = remote_options(cache_dir, cache_size, storage_options)?;
        let inner = py.detach(|| open_location(&location, &options)).py_err()?;
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
            self.inner.location(),
            self.inner.len(),
            self.inner.num_shards(),
            d.j,
            d.s,
            d.k,
            d.d,
            self.inner.embedding_dtype()
        )
    }

    /// The store directory or URL, as opened.
    #[getter]
    fn path(&self) -> String {
        self.inner.location().to_string()
    }

    /// The local directory the shard files are mapped from (a remote store's cache).
    #[getter]
    fn local_dir(&self) -> PathBuf {
        self.inner.dir().to_path_buf()
    }

    /// Download counters of a remote store's cache: {"bytes_downloaded", "downloads",
    /// "failed_attempts", "evictions"}; None for a local store.
    fn cache_stats<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        cache_stats(py, &self.inner)
    }

    /// Shard mappings made so far: 0 right after open, which reads only the manifest.
    #[getter]
    fn shards_mapped(&self) -> usize {
        self.inner.shards_mapped()
    }

    /// {"J": augmentations, "S": synthetic captions, "K": teachers, "D": dims per teacher}.
    #[getter]
    fn dims<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        dims_dict(py, self.inner.dims())
    }

    /// "float16", "bfloat16" (views are uint16 bit patterns) or "int8" (with scales).
    #[getter]
    fn embedding_dtype(&self) -> &'static str {
        self.inner.embedding_dtype().name()
    }

    /// The synthetic caption sets as `(name, S)` pairs in storage order (docs/FORMAT.md, "Caption
    /// sets"): set i holds synthetic positions S_0 + ... + S_{i-1} onwards. A plain store (no list, or
    /// schema 1) gives `[("syn_text", S)]`.
    #[getter]
    fn caption_sets(&self) -> Vec<(String, usize)> {
        caption_sets_py(&self.inner.caption_sets())
    }

    #[getter]
    fn num_shards(&self) -> usize {
        self.inner.num_shards()
    }

    /// Shard `n`'s entry: {"file", "num_samples", "file_bytes", "file_xxh3", "columns": {column: xxh3}}.
    /// A schema-2 store reads it from its shard index (a block of entries at a time).
    fn shard_entry<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyDict>> {
        if n >= self.inner.num_shards() {
            return Err(pyo3::exceptions::PyIndexError::new_err(format!(
                "shard {n} out of range for a store of {} shards",
                self.inner.num_shards()
            )));
        }
        let store = &self.inner;
        let entry = py.detach(|| store.shard_entry(n)).py_err()?;
        let dict = PyDict::new(py);
        dict.set_item("file", &entry.file)?;
        dict.set_item("num_samples", entry.num_samples)?;
        dict.set_item("file_bytes", entry.file_bytes)?;
        dict.set_item("file_xxh3", &entry.file_xxh3)?;
        let columns = PyDict::new(py);
        for (c, x) in &entry.columns {
            columns.set_item(c, x)?;
        }
        dict.set_item("columns", columns)?;
        Ok(dict)
    }

    /// Bytes of all shard files together, as the manifest (or shard index) states them.
    #[getter]
    fn file_bytes(&self) -> u64 {
        (0..self.inner.num_shards()).map(|n| self.inner.shard_file_bytes(n)).sum()
    }

    /// The parsed manifest.json (schema 2: the header; shard entries via `shard_entry`).
    #[getter]
    fn manifest<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("json")?.call_method1("loads", (self.inner.manifest_text(),))
    }

    /// {column: bytes in the shard files}, summed over shards, in file order.
    fn column_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        let store = &self.inner;
        for (name, n) in py.detach(|| store.column_bytes()).py_err()? {
            dict.set_item(name, n)?;
        }
        Ok(dict)
    }

    /// Where the shard holding sample `i` lives: its file, or its object URL for a remote store.
    fn shard_path(&self, i: isize) -> PyResult<String> {
        self.inner.shard_location_of(self.index(i)?).py_err()
    }

    fn uid(&self, py: Python<'_>, i: isize) -> PyResult<String> {
        let (sh, r) = self.row(py, i)?;
        Ok(sh.uid(r).to_string())
    }

    /// Encoded image bytes as a read-only uint8 view.
    fn image<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Bound<'py, PyAny>> {
        let (sh, r) = self.row(py, i)?;
        let bytes = sh.image_bytes(r);
        view(py, &sh, bytes, &self.dtypes.uint8, &[bytes.len()])
    }

    /// (width, height) of the stored image.
    fn image_size(&self, py: Python<'_>, i: isize) -> PyResult<(u32, u32)> {
        let (sh, r) = self.row(py, i)?;
        Ok(sh.image_size(r))
    }

    /// (width, height) of the original image.
    fn orig_size(&self, py: Python<'_>, i: isize) -> PyResult<(u32, u32)> {
        let (sh, r) = self.row(py, i)?;
        Ok(sh.orig_size(r))
    }

    fn caption(&self, py: Python<'_>, i: isize) -> PyResult<String> {
        let (sh, r) = self.row(py, i)?;
        Ok(sh.caption(r).to_string())
    }

    /// Token ids of the real caption (uint16 view, unpadded).
    fn caption_tokens<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Bound<'py, PyAny>> {
        let (sh, r) = self.row(py, i)?;
        let tokens = sh.caption_tokens(r);
        view(py, &sh, as_bytes(tokens), &self.dtypes.uint16, &[tokens.len()])
    }

    fn syn_captions(&self, py: Python<'_>, i: isize) -> PyResult<Vec<String>> {
        let (sh, r) = self.row(py, i)?;
        Ok((0..self.inner.dims().s).map(|s| sh.syn_caption(r, s).to_string()).collect())
    }

    /// Token ids of synthetic caption `s` (uint16 view, unpadded).
    fn syn_tokens<'py>(&self, py: Python<'py>, i: isize, s: usize) -> PyResult<Bound<'py, PyAny>> {
        Self::check_below("synthetic caption", s, self.inner.dims().s)?;
        let (sh, r) = self.row(py, i)?;
        let tokens = sh.syn_tokens(r, s);
        view(py, &sh, as_bytes(tokens), &self.dtypes.uint16, &[tokens.len()])
    }

    /// The J augmentation records as a structured AUG_DTYPE view, shape [J].
    fn aug<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Bound<'py, PyAny>> {
        let (sh, r) = self.row(py, i)?;
        view(py, &sh, sh.aug_bytes(r), &self.dtypes.aug, &[self.inner.dims().j])
    }

    /// Image embedding row (i, j): [K*D] view in the store dtype.
    fn image_emb<'py>(&self, py: Python<'py>, i: isize, j: usize) -> PyResult<Bound<'py, PyAny>> {
        let d = self.inner.dims();
        Self::check_below("augmentation", j, d.j)?;
        let (sh, r) = self.row(py, i)?;
        view(py, &sh, sh.image_emb_raw(r, j), &self.dtypes.embedding, &[d.row_len()])
    }

    /// All image embeddings of sample `i`: [J, K*D] view.
    fn image_embs<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Bound<'py, PyAny>> {
        let d = self.inner.dims();
        let (sh, r) = self.row(py, i)?;
        view(py, &sh, sh.image_embs_raw(r), &self.dtypes.embedding, &[d.j, d.row_len()])
    }

    /// Text embeddings of sample `i`: [1+S, K*D] view; row 0 is the real caption.
    fn text_emb<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Bound<'py, PyAny>> {
        let d = self.inner.dims();
        let (sh, r) = self.row(py, i)?;
        view(py, &sh, sh.text_embs_raw(r), &self.dtypes.embedding, &[d.text_rows(), d.row_len()])
    }

    /// int8 stores: per-(row, teacher) scales of the image embeddings, [J, K] float32; else None.
    fn image_emb_scales<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Option<Bound<'py, PyAny>>> {
        let d = self.inner.dims();
        let (sh, r) = self.row(py, i)?;
        if !self.inner.embedding_dtype().has_scales() {
            return Ok(None);
        }
        view(py, &sh, as_bytes(sh.image_emb_scales(r)), &self.dtypes.float32, &[d.j, d.k]).map(Some)
    }

    /// int8 stores: scales of the text embeddings, [1+S, K] float32; else None.
    fn text_emb_scales<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Option<Bound<'py, PyAny>>> {
        let d = self.inner.dims();
        let (sh, r) = self.row(py, i)?;
        if !self.inner.embedding_dtype().has_scales() {
            return Ok(None);
        }
        view(py, &sh, as_bytes(sh.text_emb_scales(r)), &self.dtypes.float32, &[d.text_rows(), d.k]).map(Some)
    }

    /// sha256 of the original image bytes, or None when unknown.
    fn sha256<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let (sh, r) = self.row(py, i)?;
        Ok(sh.sha256(r).map(|h| PyBytes::new(py, h)))
    }

    fn flags(&self, py: Python<'_>, i: isize) -> PyResult<u32> {
        let (sh, r) = self.row(py, i)?;
        Ok(sh.flags(r))
    }

    /// Everything about sample `i` as a `Sample` (arrays are read-only views).
    fn sample<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Bound<'py, PyAny>> {
        let (sh, r) = self.row(py, i)?;
        let (w, h) = sh.image_size(r);
        let (ow, oh) = sh.orig_size(r);
        let d = self.inner.dims();
        let dt = &self.dtypes;
        let kw = PyDict::new(py);
        kw.set_item("uid", sh.uid(r))?;
        kw.set_item("image", PyBytes::new(py, sh.image_bytes(r)))?;
        kw.set_item("width", w)?;
        kw.set_item("height", h)?;
        kw.set_item("orig_width", ow)?;
        kw.set_item("orig_height", oh)?;
        kw.set_item("caption", sh.caption(r))?;
        let tokens = sh.caption_tokens(r);
        kw.set_item("caption_tokens", view(py, &sh, as_bytes(tokens), &dt.uint16, &[tokens.len()])?)?;
        kw.set_item("syn_captions", (0..d.s).map(|k| sh.syn_caption(r, k)).collect::<Vec<_>>())?;
        let syn_tokens = (0..d.s)
            .map(|k| {
                let t = sh.syn_tokens(r, k);
                view(py, &sh, as_bytes(t), &dt.uint16, &[t.len()])
            })
            .collect::<PyResult<Vec<_>>>()?;
        kw.set_item("syn_tokens", PyList::new(py, syn_tokens)?)?;
        kw.set_item("aug", view(py, &sh, sh.aug_bytes(r), &dt.aug, &[d.j])?)?;
        kw.set_item("image_emb", view(py, &sh, sh.image_embs_raw(r), &dt.embedding, &[d.j, d.row_len()])?)?;
        kw.set_item("text_emb", view(py, &sh, sh.text_embs_raw(r), &dt.embedding, &[d.text_rows(), d.row_len()])?)?;
        kw.set_item("sha256", sh.sha256(r).map(|h| PyBytes::new(py, h)))?;
        kw.set_item("flags", sh.flags(r))?;
        let scales = self.inner.embedding_dtype().has_scales();
        let image_scales =
            scales.then(|| view(py, &sh, as_bytes(sh.image_emb_scales(r)), &dt.float32, &[d.j, d.k])).transpose()?;
        let text_scales = scales
            .then(|| view(py, &sh, as_bytes(sh.text_emb_scales(r)), &dt.float32, &[d.text_rows(), d.k]))
            .transpose()?;
        kw.set_item("image_emb_scale", image_scales)?;
        kw.set_item("text_emb_scale", text_scales)?;
        self.sample_module.bind(py).getattr("Sample")?.call((), Some(&kw))
    }

    fn __getitem__<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Bound<'py, PyAny>> {
        self.sample(py, i)
    }

    /// Samples in order (one range, not the `__getitem__` protocol's probe past the end).
    fn __iter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let builtins = py.import("builtins")?;
        let indices = builtins.getattr("range")?.call1((slf.get().inner.len(),))?;
        builtins.getattr("map")?.call1((slf.getattr("sample")?, indices))
    }

    /// Read-ahead hint for the embedding columns: "random" (the default after
    /// opening: a cold row read fetches only its own pages), "sequential" (a
    /// full pass in order) or "normal" (the kernel's default).
    fn advise(&self, pattern: AccessPattern) {
        self.inner.advise(pattern);
    }

    /// Recompute every checksum against the manifest; one message per problem
    /// (empty when the store is intact).
    fn verify(&self, py: Python<'_>) -> Vec<String> {
        let store = self.inner.clone();
        py.detach(move || store.verify().iter().map(|p| p.to_string()).collect())
    }

    /// The problems of shards whose file name repeats an earlier shard's (the whole-store part of
    /// `verify` that `verify_shards` leaves out; reads every name block of the index).
    fn repeated_shard_names(&self, py: Python<'_>) -> Vec<String> {
        let store = self.inner.clone();
        py.detach(move || store.repeated_shard_names().iter().map(|p| p.to_string()).collect())
    }

    /// `verify` for these shards only: one list of problem messages per shard, in the order given
    /// (a resumable verify runs it a block at a time; `mobileclip_fastload.store.verify_progress`).
    fn verify_shards(&self, py: Python<'_>, shards: Vec<usize>) -> Vec<Vec<String>> {
        let store = self.inner.clone();
        py.detach(move || {
            store.verify_shards(&shards).into_iter().map(|(_, p)| p.iter().map(|p| p.to_string()).collect()).collect()
        })
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
        .detach(|| {
            Shard::open(&path, None).map(|s| {
                let sums = s.checksums();
                (s, sums)
            })
        })
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
    dict.set_item("dims", dims_dict(py, shard.dims())?)?;
    dict.set_item("embedding_dtype", shard.dtype().name())?;
    dict.set_item("caption_sets", caption_sets_py(&shard.caption_sets()))?;
    Ok(dict)
}

/// Whether `location` is an object store URL (`scheme://...`) rather than a local path.
#[pyfunction]
fn is_url(location: &str) -> bool {
    crate::store::is_url(location)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(is_url, m)?)?;
    m.add_class::<PyStore>()?;
    m.add_class::<MappedShard>()?;
    m.add_function(wrap_pyfunction!(verify_store, m)?)?;
    m.add_function(wrap_pyfunction!(store_shard_info, m)?)?;
    Ok(())
}
