//! Bindings for the loader core. Batches reach Python as numpy arrays that
//! view Rust-owned memory; that memory returns to the loader's pool only when
//! the last array (or torch tensor made from it) is gone. Every entry point
//! runs under `guarded`: no Rust panic reaches Python.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use numpy::ndarray::{ArrayView1, ArrayView2, ArrayView4};
use numpy::{Element, PyArray};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::errors::{guarded, IntoPyResult};
use super::format::caption_sets_py;
use super::settings::Integer;
use super::store::{cache_stats, remote_options};
use crate::error::Error;
use crate::imaging::Interpolation;
use crate::loader::settings::integer;
use crate::loader::{
    BatchMemory, CaptionSetting, EmbeddingData, EmbeddingOutput, EpochRun, ImageData, ImageDtype, ImageOutput, Loader,
    LoaderConfig, LoaderSettings, Named, OnError, Order, OrderSetting, PoolSender, CONTEXT_LENGTH,
};
use crate::store::{is_url, open_location};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyLoaderCore>()?;
    m.add_class::<PyEpochRun>()?;
    m.add_class::<PyBatchMemory>()?;
    m.add("MAX_LOADER_THREADS", crate::loader::MAX_LOADER_THREADS)?;
    Ok(())
}

/// Owner of one batch's memory while Python holds views of it.
#[pyclass(name = "BatchMemory", module = "mobileclip_fastload._core", frozen)]
pub struct PyBatchMemory {
    batch: Option<Box<BatchMemory>>,
    pool: PoolSender,
}

#[pymethods]
impl PyBatchMemory {
    /// Address of the image buffer (lets tests check that tensors are views, not copies).
    #[getter]
    fn images_address(&self) -> usize {
        match self.batch.as_ref().map(|b| &b.images) {
            Some(ImageData::Uint8(v)) => v.as_ptr() as usize,
            Some(ImageData::Float32(v)) => v.as_ptr() as usize,
            None => 0,
        }
    }
}

impl Drop for PyBatchMemory {
    fn drop(&mut self) {
        if let Some(b) = self.batch.take() {
            // The loader may be gone already; then the memory is simply freed.
            let _ = self.pool.send(b);
        }
    }
}

#[pyclass(name = "LoaderCore", module = "mobileclip_fastload._core", frozen)]
pub struct PyLoaderCore {
    loader: Loader,
}

/// One independent pass over an epoch (the state of one Python iterator).
#[pyclass(name = "EpochRun", module = "mobileclip_fastload._core", frozen)]
pub struct PyEpochRun {
    run: Mutex<EpochRun>,
}

/// A zero-copy numpy view of `data` (shape `dims`), kept alive by `owner`.
fn view<'py, T: Element, const N: usize>(
    owner: &Bound<'py, PyBatchMemory>,
    data: &[T],
    dims: [usize; N],
) -> PyResult<Bound<'py, PyAny>> {
    let n: usize = dims.iter().product();
    let data = &data[..n];
    let any = owner.clone().into_any();
    // SAFETY: `data` lives inside the Box<BatchMemory> owned by `owner`, which never
    // mutates or moves it while alive, and numpy keeps `owner` as the array's base.
    let arr = unsafe {
        match N {
            1 => PyArray::borrow_from_array(&ArrayView1::from_shape(dims[0], data).unwrap(), any).into_any(),
            2 => PyArray::borrow_from_array(&ArrayView2::from_shape((dims[0], dims[1]), data).unwrap(), any).into_any(),
            4 => PyArray::borrow_from_array(
                &ArrayView4::from_shape((dims[0], dims[1], dims[2], dims[3]), data).unwrap(),
                any,
            )
            .into_any(),
            _ => unreachable!("unsupported rank"),
        }
    };
    Ok(arr)
}

fn embedding_view<'py>(
    owner: &Bound<'py, PyBatchMemory>,
    data: &EmbeddingData,
    rows: usize,
    width: usize,
) -> PyResult<Bound<'py, PyAny>> {
    match data {
        EmbeddingData::Float16(v) => view(owner, v, [rows, width]),
        EmbeddingData::Float32(v) => view(owner, v, [rows, width]),
    }
}

#[pymethods]
impl PyLoaderCore {
    /// Every keyword of `FastReinforcedLoader` except `pin_memory` (a torch
    /// concern), each required: the Python signature holds the defaults.
    /// `LoaderConfig::new` checks them all.
    #[new]
    #[pyo3(signature = (store, *, batch_size, image_size, interpolation, mean, std, image_dtype,
                        embedding_output_dtype, num_threads, seed, shuffle, drop_last, rank, world_size, caption_mode,
                        mix_probability, prefetch, on_error, dct_scaling, cache_dir, cache_size, storage_options, order,
                        shuffle_window, caption_sets))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        store: PathBuf,
        batch_size: Integer,
        image_size: Integer,
        interpolation: Interpolation,
        mean: Vec<f64>,
        std: Vec<f64>,
        image_dtype: ImageDtype,
        embedding_output_dtype: EmbeddingOutput,
        num_threads: Option<Integer>,
        seed: Integer,
        shuffle: bool,
        drop_last: bool,
        rank: Integer,
        world_size: Integer,
        caption_mode: CaptionSetting,
        mix_probability: f64,
        prefetch: Option<Integer>,
        on_error: OnError,
        dct_scaling: Option<f64>,
        cache_dir: Option<PathBuf>,
        cache_size: Option<Integer>,
        storage_options: Option<HashMap<String, String>>,
        order: OrderSetting,
        shuffle_window: Integer,
        caption_sets: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        guarded(|| {
            let location = store.to_string_lossy().into_owned();
            let mut settings = LoaderSettings {
                batch_size: batch_size.0,
                image_size: image_size.0,
                interpolation,
                image_dtype,
                mean,
                std,
                embedding_output_dtype,
                num_threads: num_threads.map(|n| n.0),
                prefetch: prefetch.map(|n| n.0),
                seed: seed.0,
                shuffle,
                drop_last,
                rank: rank.0,
                world_size: world_size.0,
                caption_mode,
                mix_probability,
                on_error,
                dct_scaling,
                order,
                shuffle_window: shuffle_window.0,
                caption_sets: None,
            };
            LoaderConfig::new(&settings, is_url(&location)).py_err()?; // every other setting, before the store opens
            let options = remote_options(cache_dir, cache_size, storage_options)?;
            let store = py.detach(|| open_location(&location, &options)).py_err()?;
            // The Python side turns names or a regex into set indices; it needs the store's names.
            if let Some(resolve) = caption_sets.filter(|c| !c.is_none()) {
                let names: Vec<String> = store.caption_sets().into_iter().map(|c| c.name).collect();
                let indices: Vec<Integer> = resolve.call1((names,))?.extract()?;
                settings.caption_sets = Some(indices.into_iter().map(|i| i.0).collect());
            }
            let cfg = LoaderConfig::new(&settings, is_url(&location)).py_err()?;
            let loader = py.detach(|| Loader::with_store(Arc::new(store), cfg)).py_err()?;
            Ok(PyLoaderCore { loader })
        })
    }

    /// The checked settings a resumed run must match, and those the Python
    /// side reports: batch_size, image_size, image_dtype, embedding_output_dtype,
    /// seed, shuffle, drop_last, rank, world_size, num_threads, prefetch, caption_sets (the indices
    /// of the store's caption sets drawn from).
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = &self.loader.cfg;
        let s = &c.sampler;
        let out = PyDict::new(py);
        out.set_item("batch_size", s.batch_size)?;
        out.set_item("image_size", c.image_size)?;
        let image_dtype = match c.image {
            ImageOutput::Uint8 => ImageDtype::Uint8,
            ImageOutput::Float32 { .. } => ImageDtype::Float32,
        };
        out.set_item("image_dtype", image_dtype.name())?;
        out.set_item("embedding_output_dtype", c.embedding.name())?;
        out.set_item("seed", s.seed)?;
        out.set_item("shuffle", s.shuffle)?;
        out.set_item("drop_last", s.drop_last)?;
        out.set_item("rank", s.rank)?;
        out.set_item("world_size", s.world_size)?;
        out.set_item("num_threads", c.num_threads)?;
        out.set_item("prefetch", c.prefetch)?;
        out.set_item("caption_sets", c.chosen_sets.iter().map(|s| s.set).collect::<Vec<_>>())?;
        Ok(out)
    }

    /// `epoch` as the loader counts epochs (ValueError unless in [0, 2**64 - 1]).
    fn check_epoch(&self, epoch: Integer) -> PyResult<u64> {
        integer("epoch", epoch.0, 0).py_err()
    }

    /// A remote store's download counters (see `Store.cache_stats`); None for a local store.
    fn cache_stats<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let store = self.loader.store.clone();
        cache_stats(py, &store)
    }

    /// The epoch order in use: "global" or "shard_block:<window>".
    fn order(&self) -> String {
        match self.loader.cfg.sampler.order {
            Order::Global => "global".to_string(),
            Order::ShardBlock { window } => format!("shard_block:{window}"),
        }
    }

    fn num_batches(&self) -> usize {
        self.loader.num_batches()
    }

    fn num_samples(&self) -> usize {
        self.loader.store.len()
    }

    /// Rows one batch buffer holds (batch_size, or this rank's samples per epoch if fewer).
    fn batch_capacity(&self) -> usize {
        self.loader.batch_capacity()
    }

    /// The store's caption sets as `(name, S)` pairs in storage order.
    fn caption_sets(&self) -> Vec<(String, usize)> {
        caption_sets_py(&self.loader.store.caption_sets())
    }

    /// {"J", "S", "K", "D"} of the store.
    fn dims<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        guarded(|| {
            let d = self.loader.store.dims();
            let out = PyDict::new(py);
            out.set_item("J", d.j)?;
            out.set_item("S", d.s)?;
            out.set_item("K", d.k)?;
            out.set_item("D", d.d)?;
            Ok(out)
        })
    }

    /// A new, independent pass over `epoch` from batch `start`: its own workers and cursor.
    fn start_epoch(&self, py: Python<'_>, epoch: Integer, start: usize) -> PyResult<PyEpochRun> {
        guarded(|| {
            let epoch = integer("epoch", epoch.0, 0).py_err()?;
            let run = py.detach(|| self.loader.start_epoch(epoch, start)).py_err()?;
            Ok(PyEpochRun { run: Mutex::new(run) })
        })
    }

    /// Samples replaced because their image did not decode (each once): list of dicts.
    fn skipped<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        guarded(|| {
            let skipped = self.loader.stats.skipped.lock().unwrap_or_else(|p| p.into_inner()).samples().to_vec();
            let out = PyList::empty(py);
            for s in skipped {
                let d = PyDict::new(py);
                d.set_item("index", s.index)?;
                d.set_item("uid", s.uid)?;
                d.set_item("reason", s.reason)?;
                d.set_item("replacement", s.replacement)?;
                out.append(d)?;
            }
            Ok(out)
        })
    }

    fn num_skipped(&self) -> usize {
        self.loader.stats.skipped.lock().unwrap_or_else(|p| p.into_inner()).samples().len()
    }

    fn samples_produced(&self) -> usize {
        self.loader.stats.samples.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn buffers_allocated(&self) -> usize {
        self.loader.pool.allocated()
    }
}

#[pymethods]
impl PyEpochRun {
    /// The next batch as a dict of numpy arrays, or None at the end of the pass.
    fn next_batch<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        guarded(|| {
            let batch = py
                .detach(|| {
                    let mut run =
                        self.run.lock().map_err(|_| Error::Internal("this iterator failed earlier".into()))?;
                    run.next_batch().map(|b| b.map(|b| (b, run.pool_sender())))
                })
                .py_err()?;
            let Some((batch, pool)) = batch else { return Ok(None) };
            batch_dict(py, batch, pool).map(Some)
        })
    }

    /// Stop this pass's workers now (also done when it is dropped).
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        guarded(|| {
            py.detach(|| {
                if let Ok(mut run) = self.run.lock() {
                    run.stop();
                }
            });
            Ok(())
        })
    }
}

/// A delivered batch as a dict of zero-copy numpy views owned by a `BatchMemory`.
fn batch_dict(py: Python<'_>, batch: Box<BatchMemory>, pool: PoolSender) -> PyResult<Bound<'_, PyDict>> {
    let owner = Bound::new(py, PyBatchMemory { batch: Some(batch), pool })?;
    let b = owner.get().batch.as_ref().expect("set just above");
    let (n, size, width) = (b.len, b.shape.image_size, b.shape.emb_width);
    let out = PyDict::new(py);
    match &b.images {
        ImageData::Uint8(v) => out.set_item("images", view(&owner, v, [n, 3, size, size])?)?,
        ImageData::Float32(v) => out.set_item("images", view(&owner, v, [n, 3, size, size])?)?,
    }
    out.set_item("text", view(&owner, &b.text, [n, CONTEXT_LENGTH])?)?;
    out.set_item("syn_text", view(&owner, &b.syn_text, [n, CONTEXT_LENGTH])?)?;
    out.set_item("image_emb", embedding_view(&owner, &b.image_emb, n, width)?)?;
    out.set_item("text_emb", embedding_view(&owner, &b.text_emb, n, width)?)?;
    out.set_item("syn_text_emb", embedding_view(&owner, &b.syn_text_emb, n, width)?)?;
    out.set_item("index", view(&owner, &b.index, [n])?)?;
    out.set_item("aug_index", view(&owner, &b.aug_index, [n])?)?;
    out.set_item("syn_index", view(&owner, &b.syn_index, [n])?)?;
    out.set_item("caption_set", view(&owner, &b.caption_set, [n])?)?;
    out.set_item("text_is_syn", view(&owner, &b.text_is_syn, [n])?)?;
    out.set_item("epoch", b.epoch)?;
    out.set_item("batch_number", b.batch_number)?;
    out.set_item("memory", owner)?;
    Ok(out)
}
