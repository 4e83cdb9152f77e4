//! The worker pipeline of one pass over an epoch: N threads assemble whole
//! batches in parallel, at most `prefetch` batches ahead of the consumer; the
//! consumer receives them, and any error, strictly in batch order. Each pass
//! (`EpochRun`) is independent of any other pass of the same loader; they
//! share only the store, the statistics and the pool of batch memory, which
//! the consumer's side refills as batches are released, so steady state
//! allocates nothing.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{unbounded, Receiver, Sender};

use super::batch::{BatchMemory, BatchShape};
use super::fill::BatchFiller;
use super::sampler::EpochPlan;
use super::stats::Stats;
use super::LoaderConfig;
use crate::error::{panic_message, Error, Result};
use crate::store::Store;

/// Returns released batch memory for reuse.
pub type PoolSender = Sender<Box<BatchMemory>>;

/// Recycled batch memory, shared by every pass of a loader.
pub struct BatchPool {
    shape: BatchShape,
    tx: PoolSender,
    rx: Receiver<Box<BatchMemory>>,
    allocated: AtomicUsize,
}

impl BatchPool {
    pub fn new(shape: BatchShape) -> Self {
        let (tx, rx) = unbounded();
        BatchPool { shape, tx, rx, allocated: AtomicUsize::new(0) }
    }

    /// A free batch: a recycled one, else newly allocated (`Error::OutOfMemory` if that fails).
    pub fn take(&self) -> Result<Box<BatchMemory>> {
        if let Ok(b) = self.rx.try_recv() {
            return Ok(b);
        }
        let b = Box::new(BatchMemory::try_new(self.shape)?);
        self.allocated.fetch_add(1, Ordering::SeqCst);
        Ok(b)
    }

    pub fn give_back(&self, b: Box<BatchMemory>) {
        let _ = self.tx.send(b);
    }

    pub fn shape(&self) -> &BatchShape {
        &self.shape
    }

    pub fn sender(&self) -> PoolSender {
        self.tx.clone()
    }

    /// Batch buffers allocated so far (bounded by prefetch + batches the user holds).
    pub fn allocated(&self) -> usize {
        self.allocated.load(Ordering::SeqCst)
    }
}

/// Consumer-side progress that workers wait on (the prefetch window).
struct Window {
    delivered: Mutex<usize>,
    moved: Condvar,
}

type Outcome = (usize, Result<Box<BatchMemory>>);

/// One running pass over batches `start..end` of one epoch. Dropping it stops
/// its workers.
pub struct EpochRun {
    next: usize,
    end: usize,
    results: Receiver<Outcome>,
    /// Batches (or errors) that arrived before an earlier batch.
    reorder: BTreeMap<usize, Result<Box<BatchMemory>>>,
    window: Arc<Window>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    pool: Arc<BatchPool>,
}

impl EpochRun {
    /// Start producing batches `start..end` of `epoch`.
    pub fn start(
        store: &Arc<Store>,
        cfg: &LoaderConfig,
        stats: &Arc<Stats>,
        pool: &Arc<BatchPool>,
        epoch: u64,
        start: usize,
        end: usize,
    ) -> Result<EpochRun> {
        let plan = Arc::new(EpochPlan::new(&cfg.sampler, epoch));
        let (tx, rx) = unbounded();
        let window = Arc::new(Window { delivered: Mutex::new(start), moved: Condvar::new() });
        let stop = Arc::new(AtomicBool::new(false));
        let next_job = Arc::new(AtomicUsize::new(start));
        let mut run = EpochRun {
            next: start,
            end,
            results: rx,
            reorder: BTreeMap::new(),
            window: window.clone(),
            stop: stop.clone(),
            threads: Vec::new(),
            pool: pool.clone(),
        };
        // More workers than batches would only wait.
        let workers = cfg.num_threads.min(end.saturating_sub(start));
        for t in 0..workers {
            let mut filler = BatchFiller::new(store.clone(), cfg.clone(), stats.clone())?;
            let worker = Worker {
                epoch,
                end,
                batch_size: cfg.sampler.batch_size,
                plan: plan.clone(),
                next_job: next_job.clone(),
                window: window.clone(),
                stop: stop.clone(),
                results: tx.clone(),
                pool: pool.clone(),
                prefetch: cfg.prefetch,
            };
            let handle = std::thread::Builder::new()
                .name(format!("fastload-worker-{t}"))
                .spawn(move || worker.run(&mut filler))
                .map_err(|e| Error::Internal(format!("cannot start worker thread: {e}")))?;
            run.threads.push(handle);
        }
        Ok(run)
    }

    /// The next batch in order, `None` at the end of the pass. Blocks. An error
    /// is returned only after every batch before it was delivered, and ends the pass.
    pub fn next_batch(&mut self) -> Result<Option<Box<BatchMemory>>> {
        if self.next >= self.end {
            self.stop();
            return Ok(None);
        }
        loop {
            match self.reorder.remove(&self.next) {
                Some(Ok(batch)) => {
                    self.next += 1;
                    *self.window.delivered.lock().unwrap() = self.next;
                    self.window.moved.notify_all();
                    return Ok(Some(batch));
                }
                Some(Err(e)) => {
                    self.end = self.next; // the pass ends here
                    self.stop();
                    return Err(e);
                }
                None => {}
            }
            match self.results.recv() {
                Ok((b, outcome)) => {
                    self.reorder.insert(b, outcome);
                }
                Err(_) => {
                    self.end = self.next;
                    self.stop();
                    return Err(Error::Internal("all loader workers exited before the epoch ended".into()));
                }
            }
        }
    }

    /// Where released batches of this pass go.
    pub fn pool_sender(&self) -> PoolSender {
        self.pool.sender()
    }

    /// Stop the workers and return undelivered batches to the pool (idempotent).
    pub fn stop(&mut self) {
        {
            // Set under the window lock so a worker cannot miss the wake-up
            // between checking `stop` and starting to wait.
            let _guard = self.window.delivered.lock().unwrap_or_else(|p| p.into_inner());
            self.stop.store(true, Ordering::SeqCst);
        }
        self.window.moved.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        for (_, outcome) in std::mem::take(&mut self.reorder) {
            if let Ok(b) = outcome {
                self.pool.give_back(b);
            }
        }
        while let Ok((_, outcome)) = self.results.try_recv() {
            if let Ok(b) = outcome {
                self.pool.give_back(b);
            }
        }
    }
}

impl Drop for EpochRun {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Worker {
    epoch: u64,
    end: usize,
    batch_size: usize,
    /// This rank's epoch order, evaluated a batch at a time.
    plan: Arc<EpochPlan>,
    next_job: Arc<AtomicUsize>,
    window: Arc<Window>,
    stop: Arc<AtomicBool>,
    results: Sender<Outcome>,
    pool: Arc<BatchPool>,
    prefetch: usize,
}

impl Worker {
    fn run(self, filler: &mut BatchFiller) {
        let mut rows: Vec<u64> = Vec::with_capacity(self.batch_size.min(self.plan.len()));
        loop {
            let b = self.next_job.fetch_add(1, Ordering::SeqCst);
            if b >= self.end || !self.wait_for_window(b) {
                return;
            }
            let outcome = self.pool.take().and_then(|mut batch| {
                let bs = self.batch_size;
                rows.clear();
                self.plan.extend(b.saturating_mul(bs)..(b + 1).saturating_mul(bs), &mut rows);
                let filled = catch_unwind(AssertUnwindSafe(|| filler.fill(&mut batch, self.epoch, b, &rows)))
                    .unwrap_or_else(|panic| {
                        Err(Error::Internal(format!("loader worker panicked on batch {b}: {}", panic_message(&panic))))
                    });
                match filled {
                    Ok(()) => Ok(batch),
                    Err(e) => {
                        // Back to the pool, not freed: its memory may be page-locked, and a later
                        // allocation at the same address would be taken for the registered one.
                        self.pool.give_back(batch);
                        Err(e)
                    }
                }
            });
            let failed = outcome.is_err();
            // After a failure this worker stops: every batch before `b` is already
            // claimed by another worker, and the error ends the pass at `b`.
            if self.results.send((b, outcome)).is_err() || failed {
                return;
            }
        }
    }

    /// Wait until batch `b` is within `prefetch` of the consumer; false when stopping.
    fn wait_for_window(&self, b: usize) -> bool {
        let mut delivered = self.window.delivered.lock().unwrap_or_else(|p| p.into_inner());
        while b >= delivered.saturating_add(self.prefetch) {
            if self.stop.load(Ordering::SeqCst) {
                return false;
            }
            delivered = self.window.moved.wait(delivered).unwrap_or_else(|p| p.into_inner());
        }
        !self.stop.load(Ordering::SeqCst)
    }
}
