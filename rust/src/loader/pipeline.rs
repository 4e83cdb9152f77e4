//! The worker pipeline: N threads assemble whole batches in parallel, at most
//! `prefetch` batches ahead of the consumer; the consumer receives them in
//! order. Batch memory comes from a pool that the consumer's side refills as
//! batches are released, so steady state allocates nothing.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{unbounded, Receiver, Sender};

use super::batch::{Batch, BatchShape};
use super::fill::BatchFiller;
use super::sampler::rank_indices;
use super::LoaderConfig;
use crate::error::{Error, Result};
use crate::store::Store;

/// A sample that could not be used and what replaced it.
#[derive(Clone, Debug)]
pub struct SkippedSample {
    pub index: u64,
    pub uid: String,
    pub reason: String,
    pub replacement: u64,
}

/// Counters shared by all workers, readable at any time.
#[derive(Default)]
pub struct Stats {
    pub samples: AtomicUsize,
    pub skipped: Mutex<Vec<SkippedSample>>,
}

/// Returns released batch memory for reuse.
pub type PoolSender = Sender<Box<Batch>>;

/// Consumer-side progress that workers wait on (the prefetch window).
struct Window {
    delivered: Mutex<usize>,
    moved: Condvar,
}

/// One running pass over a range of batches of one epoch.
struct EpochRun {
    next: usize,
    end: usize,
    results: Receiver<(usize, Result<Box<Batch>>)>,
    reorder: BTreeMap<usize, Box<Batch>>,
    window: Arc<Window>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl EpochRun {
    fn shutdown(&mut self) {
        {
            // Set under the window lock so a worker cannot miss the wake-up
            // between checking `stop` and starting to wait.
            let _guard = self.window.delivered.lock().unwrap();
            self.stop.store(true, Ordering::SeqCst);
        }
        self.window.moved.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for EpochRun {
    fn drop(&mut self) {
        self.shutdown();
    }
}

pub struct Pipeline {
    store: Arc<Store>,
    cfg: LoaderConfig,
    shape: BatchShape,
    pool_tx: PoolSender,
    pool_rx: Receiver<Box<Batch>>,
    stats: Arc<Stats>,
    run: Option<EpochRun>,
    allocated: Arc<AtomicUsize>,
}

impl Pipeline {
    pub fn new(store: Arc<Store>, cfg: LoaderConfig, shape: BatchShape) -> Self {
        let (pool_tx, pool_rx) = unbounded();
        Pipeline {
            store,
            cfg,
            shape,
            pool_tx,
            pool_rx,
            stats: Arc::new(Stats::default()),
            run: None,
            allocated: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    pub fn pool_sender(&self) -> PoolSender {
        self.pool_tx.clone()
    }

    /// Batch buffers allocated so far (bounded by prefetch + batches the user holds).
    pub fn buffers_allocated(&self) -> usize {
        self.allocated.load(Ordering::SeqCst)
    }

    /// Start producing batches `start..end` of `epoch` (stopping any current pass).
    pub fn start(&mut self, epoch: u64, start: usize, end: usize) -> Result<()> {
        self.stop();
        let indices: Arc<Vec<u64>> = Arc::new(rank_indices(&self.cfg.sampler, epoch));
        let (tx, rx) = unbounded();
        let window = Arc::new(Window {
            delivered: Mutex::new(start),
            moved: Condvar::new(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let next_job = Arc::new(AtomicUsize::new(start));
        let mut threads = Vec::with_capacity(self.cfg.num_threads);
        for t in 0..self.cfg.num_threads {
            let mut filler = BatchFiller::new(self.store.clone(), self.cfg.clone(), self.stats.clone())?;
            let worker = Worker {
                epoch,
                end,
                indices: indices.clone(),
                next_job: next_job.clone(),
                window: window.clone(),
                stop: stop.clone(),
                results: tx.clone(),
                pool: self.pool_rx.clone(),
                shape: self.shape,
                prefetch: self.cfg.prefetch,
                allocated: self.allocated.clone(),
            };
            let handle = std::thread::Builder::new()
                .name(format!("fastload-worker-{t}"))
                .spawn(move || worker.run(&mut filler))
                .map_err(|e| Error::Internal(format!("cannot start worker thread: {e}")))?;
            threads.push(handle);
        }
        self.run = Some(EpochRun {
            next: start,
            end,
            results: rx,
            reorder: BTreeMap::new(),
            window,
            stop,
            threads,
        });
        Ok(())
    }

    /// The next batch in order, `None` at the end of the pass. Blocks.
    pub fn next_batch(&mut self) -> Result<Option<Box<Batch>>> {
        let Some(run) = self.run.as_mut() else {
            return Ok(None);
        };
        if run.next >= run.end {
            self.stop();
            return Ok(None);
        }
        loop {
            if let Some(batch) = run.reorder.remove(&run.next) {
                run.next += 1;
                *run.window.delivered.lock().unwrap() = run.next;
                run.window.moved.notify_all();
                return Ok(Some(batch));
            }
            match run.results.recv() {
                Ok((b, Ok(batch))) => {
                    run.reorder.insert(b, batch);
                }
                Ok((_, Err(e))) => {
                    self.stop();
                    return Err(e);
                }
                Err(_) => {
                    self.stop();
                    return Err(Error::Internal("all loader workers exited before the epoch ended".into()));
                }
            }
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut run) = self.run.take() {
            run.shutdown();
            // Batches produced but never delivered go back to the pool.
            for (_, b) in std::mem::take(&mut run.reorder) {
                let _ = self.pool_tx.send(b);
            }
            while let Ok((_, Ok(b))) = run.results.try_recv() {
                let _ = self.pool_tx.send(b);
            }
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Worker {
    epoch: u64,
    end: usize,
    indices: Arc<Vec<u64>>,
    next_job: Arc<AtomicUsize>,
    window: Arc<Window>,
    stop: Arc<AtomicBool>,
    results: Sender<(usize, Result<Box<Batch>>)>,
    pool: Receiver<Box<Batch>>,
    shape: BatchShape,
    prefetch: usize,
    allocated: Arc<AtomicUsize>,
}

impl Worker {
    fn run(self, filler: &mut BatchFiller) {
        loop {
            let b = self.next_job.fetch_add(1, Ordering::SeqCst);
            if b >= self.end || !self.wait_for_window(b) {
                return;
            }
            let mut batch = self.pool.try_recv().unwrap_or_else(|_| {
                self.allocated.fetch_add(1, Ordering::SeqCst);
                Box::new(Batch::new(self.shape))
            });
            let bs = self.shape.batch_size;
            let rows = &self.indices[b * bs..((b + 1) * bs).min(self.indices.len())];
            let outcome = catch_unwind(AssertUnwindSafe(|| filler.fill(&mut batch, self.epoch, b, rows)))
                .unwrap_or_else(|panic| {
                    let what = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "unknown panic".into());
                    Err(Error::Internal(format!("loader worker panicked on batch {b}: {what}")))
                });
            let failed = outcome.is_err();
            if self.results.send((b, outcome.map(|()| batch))).is_err() || failed {
                return;
            }
        }
    }

    /// Wait until batch `b` is within `prefetch` of the consumer; false when stopping.
    fn wait_for_window(&self, b: usize) -> bool {
        let mut delivered = self.window.delivered.lock().unwrap();
        while b >= *delivered + self.prefetch {
            if self.stop.load(Ordering::SeqCst) {
                return false;
            }
            delivered = self.window.moved.wait(delivered).unwrap();
        }
        !self.stop.load(Ordering::SeqCst)
    }
}
