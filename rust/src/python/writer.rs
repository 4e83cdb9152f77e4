//! Python bindings of the store writer: `StoreWriter`, `write_shard`,
//! `write_manifest`. Samples are read with the GIL held (their fields only, see
//! `sample_input`); checking, encoding and writing run with it released.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

// Errors (`errors::to_py`): bad input is a ValueError, a file problem a StoreIOError
// naming the path (StoreExistsError, a FileExistsError, for a directory in the way).
use super::errors::to_py;
use super::format::{caption_sets_of, caption_sets_py, dims_of, dtype_of, PyDims, PyShardInfo};
use super::sample_input::HeldSample;
use crate::store::{
    write_shard as core_write_shard, Dims, EmbeddingDtype, Manifest, StoreWriter, StoreWriterOptions,
    DEFAULT_WRITE_SCHEMA,
};

fn aug_dtype(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    py.import("mobileclip_fastload.store.sample")?.getattr("AUG_DTYPE")
}

/// Python metadata -> JSON (it goes into the manifest).
fn metadata_json(py: Python<'_>, metadata: Option<&Bound<'_, PyAny>>) -> PyResult<serde_json::Value> {
    let Some(m) = metadata.filter(|m| !m.is_none()) else {
        return Ok(serde_json::json!({}));
    };
    let dict = PyDict::new(py);
    dict.update(m.cast()?)?;
    let text: String = py.import("json")?.call_method1("dumps", (dict,))?.extract()?;
    serde_json::from_str(&text)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("metadata is not plain JSON: {e}")))
}

/// Write a store sample by sample, rolling to a new shard every ~`target_shard_bytes`.
///
/// The manifest is written by `close()` (on a clean `with` exit); a writer that
/// fails leaves no manifest, so a half-written directory never opens as a store.
#[pyclass(name = "StoreWriter", module = "mobileclip_fastload.store")]
pub struct PyStoreWriter {
    inner: StoreWriter,
    aug_dtype: Py<PyAny>,
}

#[pymethods]
impl PyStoreWriter {
    #[new]
    #[allow(non_snake_case, clippy::too_many_arguments)]
    #[pyo3(signature = (path, *, J, S, K, D, embedding_dtype="float16", target_shard_bytes=268_435_456, metadata=None, overwrite=false, schema_version=DEFAULT_WRITE_SCHEMA, caption_sets=None))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        J: i64,
        S: i64,
        K: i64,
        D: i64,
        embedding_dtype: &str,
        target_shard_bytes: i64,
        metadata: Option<&Bound<'_, PyAny>>,
        overwrite: bool,
        schema_version: u32,
        caption_sets: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        check_write_schema(schema_version)?;
        let dims = dims_of(PyTuple::new(py, [J, S, K, D])?.as_any())?;
        let dtype = dtype_of(embedding_dtype)?;
        if target_shard_bytes < 1 {
            return Err(pyo3::exceptions::PyValueError::new_err("target_shard_bytes must be positive"));
        }
        let options = StoreWriterOptions {
            dims,
            dtype,
            target_shard_bytes: target_shard_bytes as u64,
            metadata: metadata_json(py, metadata)?,
            overwrite,
            schema_version,
            caption_sets: caption_sets_of(caption_sets)?,
        };
        let inner = py.detach(|| StoreWriter::create(&path, options)).map_err(to_py)?;
        Ok(PyStoreWriter { inner, aug_dtype: aug_dtype(py)?.unbind() })
    }

    /// Validate and buffer one sample (ValueError names it); writes a shard when enough is buffered.
    fn add(&mut self, py: Python<'_>, sample: &Bound<'_, PyAny>) -> PyResult<()> {
        if self.inner.is_closed() {
            return Err(pyo3::exceptions::PyValueError::new_err("StoreWriter is closed"));
        }
        let held = HeldSample::new(sample, self.inner.options().dims, self.aug_dtype.bind(py))?;
        let input = held.input();
        let inner = &mut self.inner;
        py.detach(|| inner.add(&input)).map_err(to_py)
    }

    /// Write the last shard and the manifest; returns the store path.
    fn close(&mut self, py: Python<'_>) -> PyResult<PathBuf> {
        let inner = &mut self.inner;
        py.detach(|| inner.close()).map_err(to_py)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &mut self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        match exc_type {
            Some(t) if !t.is_none() => {
                self.inner.abort(); // leave no manifest: the directory is not a store
                Ok(())
            }
            _ => self.close(py).map(|_| ()),
        }
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.dir().to_path_buf()
    }
    #[getter]
    fn dims(&self) -> PyDims {
        PyDims(self.inner.options().dims)
    }
    #[getter]
    fn embedding_dtype(&self) -> &'static str {
        self.inner.options().dtype.name()
    }
    /// The caption sets as `(name, S)` pairs (`[("syn_text", S)]` unless given others).
    #[getter]
    fn caption_sets(&self) -> Vec<(String, usize)> {
        let o = self.inner.options();
        caption_sets_py(&crate::store::resolved_caption_sets(o.caption_sets.as_deref(), o.dims.s))
    }
    #[getter]
    fn target_shard_bytes(&self) -> u64 {
        self.inner.options().target_shard_bytes
    }
    #[getter]
    fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("json")?.call_method1("loads", (self.inner.options().metadata.to_string(),))
    }
    /// The shards written so far.
    #[getter]
    fn shards(&self) -> Vec<PyShardInfo> {
        self.inner.shards().iter().cloned().map(PyShardInfo).collect()
    }
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }
    /// Samples added so far (written or buffered).
    #[getter]
    fn num_samples(&self) -> usize {
        self.inner.num_samples()
    }
}

/// Write one shard file atomically and return its manifest entry.
///
/// The file appears at `path` only complete and validated (temp file in the same
/// directory, fsync, rename). `dims` is a `Dims` or {"J","S","K","D"}; samples are
/// checked against it (ValueError naming the sample). A shard may be empty. `caption_sets`: the
/// store's `(name, S)` pairs (None or the one set `syn_text`: the plain case), recorded in the schema metadata.
#[pyfunction]
#[pyo3(signature = (path, samples, *, dims, embedding_dtype="float16", caption_sets=None))]
fn write_shard(
    py: Python<'_>,
    path: PathBuf,
    samples: &Bound<'_, PyAny>,
    dims: &Bound<'_, PyAny>,
    embedding_dtype: &str,
    caption_sets: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyShardInfo> {
    let (dims, dtype): (Dims, EmbeddingDtype) = (dims_of(dims)?, dtype_of(embedding_dtype)?);
    let caption_sets = caption_sets_of(caption_sets)?;
    let aug = aug_dtype(py)?;
    let held = samples.try_iter()?.map(|s| HeldSample::new(&s?, dims, &aug)).collect::<PyResult<Vec<_>>>()?;
    let inputs: Vec<_> = held.iter().map(HeldSample::input).collect();
    py.detach(|| {
        let encoded = inputs.iter().map(|s| s.encode(dims, dtype)).collect::<Result<Vec<_>, _>>()?;
        core_write_shard(&path, &encoded, dims, dtype, caption_sets)
    })
    .map(PyShardInfo)
    .map_err(to_py)
}

/// Write `manifest.json` atomically; shards are listed in the given (global) order.
///
/// Writing the manifest is what makes a directory a store: write it last. `caption_sets` must be
/// the pairs the shards were written with.
#[pyfunction]
#[pyo3(signature = (store_dir, shard_infos, dims, embedding_dtype, metadata=None, *, tokenizer="openai-clip-bpe", schema_version=DEFAULT_WRITE_SCHEMA, caption_sets=None))]
#[allow(clippy::too_many_arguments)]
fn write_manifest(
    py: Python<'_>,
    store_dir: PathBuf,
    shard_infos: &Bound<'_, PyAny>,
    dims: &Bound<'_, PyAny>,
    embedding_dtype: &str,
    metadata: Option<&Bound<'_, PyAny>>,
    tokenizer: &str,
    schema_version: u32,
    caption_sets: Option<&Bound<'_, PyAny>>,
) -> PyResult<PathBuf> {
    check_write_schema(schema_version)?;
    let (dims, dtype) = (dims_of(dims)?, dtype_of(embedding_dtype)?);
    let shards =
        shard_infos.try_iter()?.map(|s| Ok(s?.cast::<PyShardInfo>()?.get().0.clone())).collect::<PyResult<Vec<_>>>()?;
    let metadata = metadata_json(py, metadata)?;
    let caption_sets = caption_sets_of(caption_sets)?;
    py.detach(|| {
        Manifest::new(dims, dtype, tokenizer, shards, metadata)?
            .with_caption_sets(caption_sets)?
            .write_version(&store_dir, schema_version)
    })
    .map_err(to_py)
}

fn check_write_schema(version: u32) -> PyResult<()> {
    match version {
        1 | 2 => Ok(()),
        v => Err(pyo3::exceptions::PyValueError::new_err(format!("schema_version must be 1 or 2, got {v}"))),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyStoreWriter>()?;
    m.add_function(wrap_pyfunction!(write_shard, m)?)?;
    m.add_function(wrap_pyfunction!(write_manifest, m)?)?;
    Ok(())
}
