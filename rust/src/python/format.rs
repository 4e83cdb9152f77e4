//! The store format's facts for Python: constants, `Dims`, `ShardInfo` (a manifest
//! entry) and the shard schema as Arrow IPC bytes (for the pyarrow interop module).
//! All of them come from `crate::store`; nothing here restates the format.

use std::collections::BTreeMap;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyMapping, PyTuple, PyType};

use super::errors::IntoPyResult;
use crate::error::Error;
use crate::store::{sample_flags, shard_file_name, shard_schema, CaptionSet, Dims, EmbeddingDtype, ShardEntry};

/// J augmentations, S synthetic captions, K teachers of D dimensions each.
#[pyclass(name = "Dims", module = "mobileclip_fastload.store", frozen, eq, hash)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PyDims(pub Dims);

/// A {"J","S","K","D"} mapping, a `Dims` or a 4-sequence -> checked `Dims`.
pub fn dims_of(obj: &Bound<'_, PyAny>) -> PyResult<Dims> {
    if let Ok(d) = obj.cast::<PyDims>() {
        return Ok(d.get().0);
    }
    let values: Vec<usize> = if let Ok(map) = obj.cast::<PyMapping>() {
        let mut v = Vec::with_capacity(4);
        for key in ["J", "S", "K", "D"] {
            if !map.contains(key)? {
                return Err(PyValueError::new_err(format!("dims must have keys J, S, K, D; missing '{key}'")));
            }
            v.push(map.get_item(key)?.extract::<i64>()?.max(0) as usize);
        }
        v
    } else {
        let v: Vec<i64> = obj.extract()?;
        v.into_iter().map(|x| x.max(0) as usize).collect()
    };
    let [j, s, k, d] = values[..] else {
        return Err(PyValueError::new_err(format!("dims must be 4 numbers J, S, K, D, got {}", values.len())));
    };
    let dims = Dims { j, s, k, d };
    dims.check().map_err(Error::InvalidArgument).py_err()?;
    Ok(dims)
}

/// `caption_sets`: `None`, or a sequence of `(name, S)` pairs in storage order. The core checks the rules.
pub fn caption_sets_of(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<CaptionSet>>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else { return Ok(None) };
    let bad = || PyValueError::new_err("caption_sets must be a sequence of (name, S) pairs, e.g. [(\"syn_text\", 5)]");
    if obj.is_instance_of::<pyo3::types::PyString>() {
        return Err(bad());
    }
    let mut sets = Vec::new();
    for item in obj.try_iter().map_err(|_| bad())? {
        let (name, s): (String, i64) = item?.extract().map_err(|_| bad())?;
        // A negative size reads as 0, which the core's rule refuses with the set's name.
        sets.push(CaptionSet::new(name, s.max(0) as usize));
    }
    Ok(Some(sets))
}

/// Caption sets as Python sees them: a list of `(name, S)` tuples.
pub fn caption_sets_py(sets: &[CaptionSet]) -> Vec<(String, usize)> {
    sets.iter().map(|c| (c.name.clone(), c.s)).collect()
}

pub fn dtype_of(name: &str) -> PyResult<EmbeddingDtype> {
    EmbeddingDtype::parse(name).ok_or_else(|| {
        PyValueError::new_err(format!("embedding_dtype must be one of {:?}, got {name:?}", embedding_dtype_names()))
    })
}

fn embedding_dtype_names() -> Vec<&'static str> {
    EmbeddingDtype::ALL.iter().map(EmbeddingDtype::name).collect()
}

#[pymethods]
impl PyDims {
    #[new]
    #[allow(non_snake_case)]
    fn new(J: i64, S: i64, K: i64, D: i64) -> PyResult<Self> {
        // A negative size reads as 0, which the check refuses.
        let [j, s, k, d] = [J, S, K, D].map(|x| x.max(0) as usize);
        let dims = Dims { j, s, k, d };
        dims.check().map_err(Error::InvalidArgument).py_err()?;
        Ok(PyDims(dims))
    }

    /// Accept a Dims, a {"J","S","K","D"} mapping (as `Store.dims` returns) or a 4-tuple.
    #[classmethod]
    fn of(_cls: &Bound<'_, PyType>, dims: &Bound<'_, PyAny>) -> PyResult<Self> {
        dims_of(dims).map(PyDims)
    }

    #[getter(J)]
    fn j(&self) -> usize {
        self.0.j
    }
    #[getter(S)]
    fn s(&self) -> usize {
        self.0.s
    }
    #[getter(K)]
    fn k(&self) -> usize {
        self.0.k
    }
    #[getter(D)]
    fn d(&self) -> usize {
        self.0.d
    }
    /// Elements of one embedding row: K*D.
    #[getter(KD)]
    fn kd(&self) -> usize {
        self.0.row_len()
    }

    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        dims_dict(py, self.0)
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.__getnewargs__(py)?.try_iter().map(Bound::into_any)
    }

    fn __len__(&self) -> usize {
        4
    }

    fn __getnewargs__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, [self.0.j, self.0.s, self.0.k, self.0.d])
    }

    fn __repr__(&self) -> String {
        let Dims { j, s, k, d } = self.0;
        format!("Dims(J={j}, S={s}, K={k}, D={d})")
    }
}

pub fn dims_dict(py: Python<'_>, d: Dims) -> PyResult<Bound<'_, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("J", d.j)?;
    dict.set_item("S", d.s)?;
    dict.set_item("K", d.k)?;
    dict.set_item("D", d.d)?;
    Ok(dict)
}

/// `ShardInfo(*args)` rebuilds one: (file, num_samples, file_bytes, file_xxh3, columns), as pickle stores it.
type ShardInfoArgs = (String, usize, u64, String, BTreeMap<String, String>);

/// What the manifest records about one shard.
#[pyclass(name = "ShardInfo", module = "mobileclip_fastload.store", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyShardInfo(pub ShardEntry);

#[pymethods]
impl PyShardInfo {
    #[new]
    #[pyo3(signature = (file, num_samples, file_bytes, file_xxh3, columns=None))]
    fn new(
        file: String,
        num_samples: usize,
        file_bytes: u64,
        file_xxh3: String,
        columns: Option<BTreeMap<String, String>>,
    ) -> Self {
        PyShardInfo(ShardEntry { file, num_samples, file_bytes, file_xxh3, columns: columns.unwrap_or_default() })
    }

    #[getter]
    fn file(&self) -> &str {
        &self.0.file
    }
    #[getter]
    fn num_samples(&self) -> usize {
        self.0.num_samples
    }
    #[getter]
    fn file_bytes(&self) -> u64 {
        self.0.file_bytes
    }
    #[getter]
    fn file_xxh3(&self) -> &str {
        &self.0.file_xxh3
    }
    /// Column name -> xxh3-64 of its byte range (16 hex digits).
    #[getter]
    fn columns(&self) -> BTreeMap<String, String> {
        self.0.columns.clone()
    }

    /// The manifest entry as a JSON-ready dict.
    fn to_json<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("file", &self.0.file)?;
        d.set_item("num_samples", self.0.num_samples)?;
        d.set_item("file_bytes", self.0.file_bytes)?;
        d.set_item("file_xxh3", &self.0.file_xxh3)?;
        d.set_item("columns", self.columns())?;
        Ok(d)
    }

    #[classmethod]
    fn from_json(_cls: &Bound<'_, PyType>, d: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self::new(
            d.get_item("file")?.extract()?,
            d.get_item("num_samples")?.extract()?,
            d.get_item("file_bytes")?.extract()?,
            d.get_item("file_xxh3")?.extract()?,
            Some(d.get_item("columns")?.extract()?),
        ))
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyType>, ShardInfoArgs)> {
        let e = &slf.get().0;
        Ok((slf.get_type(), (e.file.clone(), e.num_samples, e.file_bytes, e.file_xxh3.clone(), e.columns.clone())))
    }

    fn __repr__(&self) -> String {
        let e = &self.0;
        format!(
            "ShardInfo(file={:?}, num_samples={}, file_bytes={}, file_xxh3={:?}, columns={{{} columns}})",
            e.file,
            e.num_samples,
            e.file_bytes,
            e.file_xxh3,
            e.columns.len()
        )
    }
}

/// The name of shard `n` in a store directory ("shard-00000.arrow").
#[pyfunction(name = "shard_file_name")]
fn py_shard_file_name(n: usize) -> String {
    shard_file_name(n)
}

/// The Arrow schema every shard with these dims, dtype and caption sets has (metadata included),
/// as an Arrow IPC file holding no rows: `pyarrow.ipc.open_file(...).schema` reads it.
#[pyfunction]
#[pyo3(signature = (dims, embedding_dtype, caption_sets=None))]
fn shard_schema_ipc<'py>(
    py: Python<'py>,
    dims: &Bound<'py, PyAny>,
    embedding_dtype: &str,
    caption_sets: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let (dims, dtype) = (dims_of(dims)?, dtype_of(embedding_dtype)?);
    let sets = crate::store::stored_caption_sets(caption_sets_of(caption_sets)?, dims.s)
        .map_err(Error::InvalidArgument)
        .py_err()?;
    let schema = shard_schema(dims, dtype, sets.as_deref());
    let mut out = Vec::new();
    let fail = |e: arrow_schema::ArrowError| Error::Internal(format!("cannot write the schema: {e}"));
    let mut writer = arrow_ipc::writer::FileWriter::try_new(&mut out, &schema).map_err(fail).py_err()?;
    writer.finish().map_err(fail).py_err()?;
    drop(writer);
    Ok(PyBytes::new(py, &out))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    use crate::store::{DEFAULT_WRITE_SCHEMA, INDEX_FILE, MAGIC, MANIFEST_FILE, MAX_TOKENS, SCHEMA_VERSION};
    m.add("MAGIC", MAGIC)?;
    m.add("SCHEMA_VERSION", SCHEMA_VERSION)?;
    m.add("MANIFEST_FILE", MANIFEST_FILE)?;
    m.add("INDEX_FILE", INDEX_FILE)?;
    m.add("DEFAULT_WRITE_SCHEMA", DEFAULT_WRITE_SCHEMA)?;
    m.add("MAX_TOKENS", MAX_TOKENS)?;
    m.add("DEFAULT_CAPTION_SET", crate::store::DEFAULT_CAPTION_SET)?;
    m.add("EMBEDDING_DTYPES", PyTuple::new(m.py(), embedding_dtype_names())?)?;
    m.add("FLAG_BOXES_RESCALED", sample_flags::BOXES_RESCALED)?;
    m.add("FLAG_SHA256_VERIFIED", sample_flags::SHA256_VERIFIED)?;
    m.add("FLAG_IMAGE_TRANSCODED", sample_flags::IMAGE_TRANSCODED)?;
    m.add_class::<PyDims>()?;
    m.add_class::<PyShardInfo>()?;
    m.add_function(wrap_pyfunction!(py_shard_file_name, m)?)?;
    m.add_function(wrap_pyfunction!(shard_schema_ipc, m)?)?;
    Ok(())
}
