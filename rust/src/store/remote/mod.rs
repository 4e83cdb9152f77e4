//! Remote stores: shards of an object store (s3://, gs://, az://, http(s)://,
//! file://) downloaded whole into a bounded local cache and mapped from there.
//!
//! - A shard is downloaded on first use, or ahead of use when the loader has
//!   given its epoch plan (`set_plan`): reading a shard at plan position p
//!   (further than any before) starts the downloads of the next `prefetch_shards`.
//! - A download streams into a hidden temp file in the cache, is checked against
//!   the manifest's size and whole-file xxh3, then renamed into place (atomic).
//!   A dropped connection or a checksum mismatch is retried (`max_attempts`,
//!   with backoff; `object_store`'s own `RetryConfig` retries failed requests
//!   underneath); a missing object, a full cache disk or the last failed
//!   attempt becomes an `Error::Remote` naming the object.
//! - The cache holds at most `cache_size` bytes of this store's shards; to make
//!   room it evicts, among the shards nobody is reading, one the epoch has
//!   passed already, least recently used first (the
//!   store's slot for it is released and the file removed; a mapping still
//!   held elsewhere stays valid until dropped, as unlinked files do on Linux).
//! - Files left in the cache by an earlier run, or placed by another process,
//!   are checked against the manifest's xxh3 before their first use.
//! - Several processes may share one cache folder (the ranks of a node): they
//!   coordinate through a lock file per shard (`.locks/<shard>.lock`, `flock`).
//!   A process holds a shared lock on every shard file it has checked and may
//!   read; a download, or a removal, takes the exclusive lock, and only after
//!   re-checking whether the file is already there (another process downloaded
//!   it: it is checked, not downloaded again). So a file is never removed under
//!   a process that may still map it, and a shard is downloaded once per host.
//!   `cache_size` bounds what each process keeps: the shards it holds plus the
//!   files nobody holds; files other processes hold are theirs (so P processes
//!   keep at most P x cache_size together). Temporaries are removed only when
//!   the process that wrote them is gone.

mod client;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use xxhash_rust::xxh3::xxh3_64;

use self::client::ObjectClient;
use super::atomic::{publish, remove_stale_temporaries, temp_name_pid, temp_path, Durability};
use super::location::RemoteOptions;
use super::manifest::{manifest_limit_hint, max_manifest_bytes, Manifest, MANIFEST_FILE};
use super::reader::Slot;
use super::shard_table::{RangeReader, ShardTable};
use crate::error::{Error, Result};

/// How long a download waits for room held by shards in use before it fails.
const ROOM_WAIT: Duration = Duration::from_secs(10);

/// The folder (inside a store's cache folder) of the per-shard lock files.
const LOCK_DIR: &str = ".locks";

/// How often a process retries a shard's lock that another process holds.
const LOCK_POLL: Duration = Duration::from_millis(20);

/// How long a damaged cached file held by another process is waited for before failing.
const DAMAGED_WAIT: Duration = Duration::from_secs(600);

#[derive(Clone, Debug, PartialEq)]
enum Status {
    /// Not in the cache.
    Absent,
    /// In the cache from an earlier run: checked before first use.
    Unchecked,
    /// Being downloaded (or checked); its bytes are reserved.
    Fetching,
    /// In the cache and checked.
    Ready,
    /// The last attempt failed; the next use tries again.
    Failed(String),
}

struct CacheState {
    status: Vec<Status>,
    /// Bytes this process keeps in the cache: the files it holds (`Ready`),
    /// reservations of its downloads under way, and files nobody holds (`Unchecked`).
    used: u64,
    plan: Arc<Vec<usize>>,
    /// The shared lock this process holds on each `Ready` shard's file.
    held: HashMap<usize, File>,
}

/// Counters for benches and tests.
#[derive(Default, Debug, Clone, Copy)]
pub struct CacheStats {
    pub bytes_downloaded: u64,
    pub downloads: u64,
    pub failed_attempts: u64,
    pub evictions: u64,
}

pub struct RemoteShards {
    client: Arc<ObjectClient>,
    options: RemoteOptions,
    cache_dir: PathBuf,
    /// Names, sizes and (read on demand) checksums of the shards.
    table: Arc<ShardTable>,
    state: Mutex<CacheState>,
    changed: Condvar,
    /// Last use of each shard (a logical clock), for LRU eviction.
    last_use: Vec<AtomicU64>,
    /// 1 + position of each shard in the current epoch plan (0: not in it).
    plan_position: Vec<AtomicUsize>,
    /// 1 + furthest plan position read so far (prefetch runs ahead of it; 0: none yet).
    reached: AtomicUsize,
    /// Plan positions behind the furthest one that may still be read (the shuffle
    /// window and the batches in flight): prefetching never evicts those.
    keep_behind: AtomicUsize,
    clock: AtomicU64,
    slots: OnceLock<Arc<[Slot]>>,
    permits: Arc<tokio::sync::Semaphore>,
    bytes_downloaded: AtomicU64,
    downloads: AtomicU64,
    failed_attempts: AtomicU64,
    evictions: AtomicU64,
}

impl RemoteShards {
    /// Connect, read the manifest and prepare the cache directory. The
    /// downloads run on `runtime`, which the caller owns.
    pub fn open(
        url: &str,
        options: &RemoteOptions,
        runtime: &DownloadRuntime,
    ) -> Result<(RemoteShards, Manifest, String, Arc<ShardTable>)> {
        let url = url.trim_end_matches('/');
        let client = Arc::new(ObjectClient::new(url, &options.object_store_options, runtime.handle())?);
        let manifest_url = client.object_url(MANIFEST_FILE);
        let limit = max_manifest_bytes()?;
        let bytes = client.get_bounded(MANIFEST_FILE, limit, &manifest_limit_hint(limit))?;
        let text = String::from_utf8(bytes).map_err(|_| Error::format(&manifest_url, "not valid UTF-8"))?;
        let mut manifest = Manifest::parse(&text, Path::new(&manifest_url))?;
        let table = Arc::new(match manifest.shard_index.clone() {
            None => ShardTable::inline(&mut manifest),
            Some(index) => {
                let reader = client.clone();
                let name = index.file.clone();
                let read: RangeReader = Box::new(move |range| reader.get_range(&name, range));
                ShardTable::indexed(&manifest, client.object_url(&index.file), read)?
            }
        });
        let root = match &options.cache_dir {
            // An empty path would be the working directory: a mistake, not a choice.
            Some(dir) if dir.as_os_str().is_empty() => {
                return Err(Error::InvalidArgument("cache_dir is empty: give a folder, or None for the default".into()))
            }
            Some(dir) => dir.clone(),
            None => default_cache_root(),
        };
        // One directory per store URL, so that stores can share a cache root.
        let cache_dir = root.join(format!("{:016x}", xxh3_64(url.as_bytes())));
        std::fs::create_dir_all(cache_dir.join(LOCK_DIR)).map_err(|e| Error::io(&cache_dir, e))?;
        let mut status = vec![Status::Absent; table.len()];
        let mut used = 0;
        for item in std::fs::read_dir(&cache_dir).map_err(|e| Error::io(&cache_dir, e))? {
            let item = item.map_err(|e| Error::io(&cache_dir, e))?;
            let name = item.file_name().to_string_lossy().into_owned();
            let Ok(meta) = item.metadata() else { continue };
            if meta.is_dir() || temp_name_pid(&name).is_some() {
                continue; // the lock folder; downloads of other processes (stale ones go below)
            }
            match table.cache_position_of(&name) {
                Some(n) if meta.len() == table.file_bytes(n) => {
                    status[n] = Status::Unchecked;
                    used += meta.len();
                }
                // Files of another version of the store (never a partial download: those are temporaries).
                _ => {
                    let _ = std::fs::remove_file(item.path());
                }
            }
        }
        // Temporaries of downloads whose process is gone (a live process's are its own).
        remove_stale_temporaries(&cache_dir)?;
        let shards = table.len();
        let remote = RemoteShards {
            client,
            options: options.clone(),
            cache_dir,
            table: table.clone(),
            state: Mutex::new(CacheState { status, used, plan: Arc::new(Vec::new()), held: HashMap::new() }),
            changed: Condvar::new(),
            last_use: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            plan_position: (0..shards).map(|_| AtomicUsize::new(0)).collect(),
            reached: AtomicUsize::new(0),
            keep_behind: AtomicUsize::new(0),
            clock: AtomicU64::new(1),
            slots: OnceLock::new(),
            permits: Arc::new(tokio::sync::Semaphore::new(options.max_concurrent_downloads.max(1))),
            bytes_downloaded: AtomicU64::new(0),
            downloads: AtomicU64::new(0),
            failed_attempts: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        };
        Ok((remote, manifest, text, table))
    }

    /// The store's shard slots, which eviction releases.
    pub(crate) fn attach(&self, slots: Arc<[Slot]>) {
        let _ = self.slots.set(slots);
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    pub fn object_url(&self, n: usize) -> String {
        self.client.object_url(&self.table.label(n))
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            bytes_downloaded: self.bytes_downloaded.load(Ordering::Relaxed),
            downloads: self.downloads.load(Ordering::Relaxed),
            failed_attempts: self.failed_attempts.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn path(&self, n: usize) -> PathBuf {
        self.cache_dir.join(self.table.cache_name(n))
    }

    fn lock_path(&self, n: usize) -> PathBuf {
        self.cache_dir.join(LOCK_DIR).join(format!("{}.lock", self.table.cache_name(n)))
    }

    /// Bring this process's view of the cache up to date with the folder, which
    /// other processes share: files they placed and nobody holds count (and may
    /// be evicted); files they hold are theirs; files gone are absent.
    fn rescan(&self, st: &mut CacheState) {
        let mut on_disk = vec![false; self.table.len()];
        if let Ok(items) = std::fs::read_dir(&self.cache_dir) {
            for item in items.flatten() {
                let name = item.file_name();
                if let Some(n) = name.to_str().and_then(|name| self.table.cache_position_of(name)) {
                    on_disk[n] = item.metadata().is_ok_and(|m| m.is_file() && m.len() == self.table.file_bytes(n));
                }
            }
        }
        let mut used = 0;
        for (n, present) in on_disk.into_iter().enumerate() {
            let bytes = self.table.file_bytes(n);
            match st.status[n] {
                Status::Ready | Status::Fetching => used += bytes,
                Status::Failed(_) => {}
                Status::Absent | Status::Unchecked if present => {
                    if lock_file(&self.lock_path(n), libc::LOCK_EX).is_some() {
                        st.status[n] = Status::Unchecked;
                        used += bytes;
                    } else {
                        st.status[n] = Status::Absent; // held by another process
                    }
                }
                Status::Absent | Status::Unchecked => st.status[n] = Status::Absent,
            }
        }
        st.used = used;
    }

    /// The order in which this process will read shards this epoch (prefetch follows it).
    /// `keep_behind`: how many plan positions behind the furthest one read may
    /// still be read (prefetching does not evict them).
    pub fn set_plan(&self, plan: Vec<usize>, keep_behind: usize) {
        let mut st = self.lock();
        self.keep_behind.store(keep_behind, Ordering::Relaxed);
        for p in &self.plan_position {
            p.store(0, Ordering::Relaxed);
        }
        for (p, &n) in plan.iter().enumerate() {
            self.plan_position[n].store(p + 1, Ordering::Relaxed);
        }
        self.reached.store(0, Ordering::Relaxed);
        st.plan = Arc::new(plan);
    }

    /// Shard `n` is being read (called on every access, so it stays cheap):
    /// note it for LRU and, when it is further along the plan than any shard
    /// before, download the shards that follow it.
    pub fn touched(self: &Arc<Self>, n: usize) {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        self.last_use[n].store(now, Ordering::Relaxed);
        let p = self.plan_position[n].load(Ordering::Relaxed);
        if p > self.reached.load(Ordering::Relaxed) && self.reached.fetch_max(p, Ordering::Relaxed) < p {
            self.prefetch_after(p - 1);
        }
    }

    /// Start downloading the `prefetch_shards` shards after plan position `p`.
    fn prefetch_after(self: &Arc<Self>, p: usize) {
        let mut st = self.lock();
        let plan = st.plan.clone();
        for &next in plan.iter().skip(p + 1).take(self.options.prefetch_shards) {
            if matches!(st.status[next], Status::Absent | Status::Unchecked | Status::Failed(_)) {
                // Best effort: no room now means no prefetch, not an error.
                if self.table.file_bytes(next) <= self.options.cache_size && self.fits(&mut st, next, true) {
                    self.start(&mut st, next);
                }
            }
        }
    }

    /// The checked cache file of shard `n`, downloading it if needed. Blocks
    /// until it is there (or failed); the caller holds shard `n`'s slot.
    pub fn fetch(self: &Arc<Self>, n: usize) -> Result<PathBuf> {
        // The object's name (read from the index when it stores names): a bad one is the index's error.
        self.table.file_name(n)?;
        let mut st = self.lock();
        loop {
            match st.status[n].clone() {
                Status::Ready => {
                    return Ok(self.path(n));
                }
                Status::Failed(msg) => {
                    st.status[n] = Status::Absent;
                    return Err(Error::Remote { object: self.object_url(n), msg });
                }
                Status::Fetching => st = self.changed.wait(st).unwrap_or_else(|e| e.into_inner()),
                Status::Absent | Status::Unchecked => {
                    st = self.make_room(st, n)?;
                    self.start(&mut st, n);
                }
            }
        }
    }

    /// Evict until shard `n` fits, waiting a while for shards in use to be released.
    fn make_room<'a>(&'a self, mut st: MutexGuard<'a, CacheState>, n: usize) -> Result<MutexGuard<'a, CacheState>> {
        let limit = self.options.cache_size;
        if self.table.file_bytes(n) > limit {
            return Err(Error::Remote {
                object: self.object_url(n),
                msg: format!(
                    "the cache cannot hold this shard: it is {} bytes, cache_size is {limit} bytes ({})",
                    self.table.file_bytes(n),
                    self.cache_dir.display()
                ),
            });
        }
        let deadline = Instant::now() + ROOM_WAIT;
        while !self.fits(&mut st, n, false) {
            if Instant::now() >= deadline {
                return Err(Error::Remote {
                    object: self.object_url(n),
                    msg: format!(
                        "no room in the cache: {} of cache_size {limit} bytes are held by shards in use or being downloaded, this shard needs {} ({})",
                        st.used,
                        self.table.file_bytes(n),
                        self.cache_dir.display()
                    ),
                });
            }
            st = self.changed.wait_timeout(st, Duration::from_millis(50)).unwrap_or_else(|e| e.into_inner()).0;
        }
        Ok(st)
    }

    /// Evict until shard `n` fits now; false when what is left is in use (or,
    /// with `done_only`, may still be read this epoch). An `Unchecked` shard's
    /// bytes are counted already.
    fn fits(&self, st: &mut CacheState, n: usize, done_only: bool) -> bool {
        if st.used + self.table.file_bytes(n) > self.options.cache_size {
            self.rescan(st);
        }
        let need = if st.status[n] == Status::Unchecked { 0 } else { self.table.file_bytes(n) };
        while st.used + need > self.options.cache_size {
            if !self.evict_one(st, n, done_only) {
                return false;
            }
        }
        true
    }

    /// Evict one cached shard nobody is reading (never `keep`); with
    /// `done_only`, only one this epoch will not read again.
    fn evict_one(&self, st: &mut CacheState, keep: usize, done_only: bool) -> bool {
        let Some(slots) = self.slots.get() else { return false };
        let reached = self.reached.load(Ordering::Relaxed);
        let keep_behind = self.keep_behind.load(Ordering::Relaxed);
        let done = |m: usize| {
            let p = self.plan_position[m].load(Ordering::Relaxed);
            p == 0 || p + keep_behind < reached
        };
        let mut candidates: Vec<usize> = (0..self.table.len())
            .filter(|&m| m != keep && matches!(st.status[m], Status::Ready | Status::Unchecked))
            .filter(|&m| !done_only || done(m))
            .collect();
        // Shards this epoch has yet to reach go last (they were fetched ahead of
        // need); among the rest, the least recently used first.
        candidates.sort_by_key(|&m| {
            (self.plan_position[m].load(Ordering::Relaxed) > reached, self.last_use[m].load(Ordering::Relaxed))
        });
        for m in candidates {
            if slots[m].release_if_unused() {
                // Our shared lock goes first; the file goes only if nobody else holds it
                // (else it is theirs now, and no longer counts as ours).
                st.held.remove(&m);
                if let Some(_exclusive) = lock_file(&self.lock_path(m), libc::LOCK_EX) {
                    let _ = std::fs::remove_file(self.path(m));
                    self.evictions.fetch_add(1, Ordering::Relaxed);
                }
                st.status[m] = Status::Absent;
                st.used = st.used.saturating_sub(self.table.file_bytes(m));
                return true;
            }
        }
        false
    }

    /// Start fetching shard `n` in the background (room has been made).
    fn start(self: &Arc<Self>, st: &mut CacheState, n: usize) {
        if st.status[n] != Status::Unchecked {
            st.used += self.table.file_bytes(n);
        }
        st.status[n] = Status::Fetching;
        // Counts as a use: a shard fetched ahead of need is not the first to go.
        self.last_use[n].store(self.clock.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        // The expected checksum, read here on the caller's thread (a schema-2 index
        // read blocks, which a download task must not do).
        let want = self.table.entry(n).map(|e| u64::from_str_radix(&e.file_xxh3, 16).expect("validated"));
        let this = self.clone();
        self.client.runtime().spawn(async move {
            let result = match want {
                Ok(want) => this.fill(n, want).await,
                Err(e) => Err(e.to_string()),
            };
            let mut st = this.lock();
            match result {
                Ok(shared) => {
                    st.status[n] = Status::Ready;
                    st.held.insert(n, shared);
                }
                Err(msg) => {
                    st.status[n] = Status::Failed(msg);
                    st.used = st.used.saturating_sub(this.table.file_bytes(n));
                }
            }
            drop(st);
            this.changed.notify_all();
        });
    }

    /// Put a checked copy of shard `n` at its cache path and return the shared
    /// lock that keeps it there: a copy another process placed is checked and
    /// used; otherwise this process downloads it under the exclusive lock (any
    /// other process wanting it waits, then finds it there).
    async fn fill(&self, n: usize, want: u64) -> std::result::Result<File, String> {
        let (path, lock_path) = (self.path(n), self.lock_path(n));
        let intact = |path: &Path| {
            std::fs::metadata(path).is_ok_and(|m| m.len() == self.table.file_bytes(n))
                && file_xxh3(path).is_ok_and(|h| h == want)
        };
        let mut damaged_since: Option<Instant> = None;
        loop {
            if let Some(shared) = lock_file(&lock_path, libc::LOCK_SH) {
                if std::fs::metadata(&path).is_ok() {
                    if intact(&path) {
                        return Ok(shared);
                    }
                    // Damaged: replacing it needs the exclusive lock, once its other readers let go.
                    let since = *damaged_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > DAMAGED_WAIT {
                        return Err(format!(
                            "the cached copy {} is damaged and another process keeps it open",
                            path.display()
                        ));
                    }
                }
            }
            if let Some(exclusive) = lock_file(&lock_path, libc::LOCK_EX) {
                if std::fs::metadata(&path).is_ok() && !intact(&path) {
                    let _ = std::fs::remove_file(&path);
                }
                if std::fs::metadata(&path).is_err() {
                    self.download(n, want).await?;
                }
                // Exclusive -> shared is not atomic (flock drops, then takes): check it is still there.
                // SAFETY: flock on a file descriptor we own.
                if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&exclusive), libc::LOCK_SH | libc::LOCK_NB) }
                    == 0
                    && std::fs::metadata(&path).is_ok()
                {
                    return Ok(exclusive);
                }
                continue;
            }
            // Another process downloads or removes it right now.
            tokio::time::sleep(LOCK_POLL).await;
        }
    }

    /// Download shard `n` to its cache path (checked on the way, retried); the
    /// caller holds its exclusive lock.
    async fn download(&self, n: usize, want: u64) -> std::result::Result<(), String> {
        let file = self.table.file_name(n).map_err(|e| e.to_string())?;
        let (file_bytes, path) = (self.table.file_bytes(n), self.path(n));
        let _permit = self.permits.acquire().await.map_err(|e| e.to_string())?;
        let tmp = temp_path(&path);
        let attempts = self.options.max_attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            match self.client.download_once(&file, &tmp, file_bytes, want).await {
                Ok(()) => {
                    // A cache entry is rechecked on use: no fsync needed, only an atomic rename.
                    publish(&tmp, &path, Durability::CacheOnly)
                        .map_err(|e| format!("cannot place {}: {e}", path.display()))?;
                    self.bytes_downloaded.fetch_add(file_bytes, Ordering::Relaxed);
                    self.downloads.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err(failure) => {
                    let _ = std::fs::remove_file(&tmp);
                    self.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    if !failure.retry {
                        return Err(strip_object(&failure.msg, &self.object_url(n)));
                    }
                    last = failure.msg;
                    if attempt < attempts {
                        tokio::time::sleep(Duration::from_millis(200 << (attempt - 1).min(5))).await;
                    }
                }
            }
        }
        Err(format!("{} (after {attempts} attempts)", strip_object(&last, &self.object_url(n))))
    }
}

/// `path` (created if missing) opened and locked with `how` (`LOCK_SH` or
/// `LOCK_EX`) without waiting; `None` when another process's lock is in the
/// way (or the file cannot be opened). Dropping the file releases the lock.
fn lock_file(path: &Path, how: libc::c_int) -> Option<File> {
    let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).ok()?;
    // SAFETY: flock on a file descriptor we own.
    let locked = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), how | libc::LOCK_NB) } == 0;
    locked.then_some(file)
}

/// The small tokio runtime a remote store's downloads run on. Owned by the
/// `Store`, not by `RemoteShards` (which download tasks hold): the runtime must
/// never be dropped from inside one of its own tasks. Dropping it cancels the
/// downloads under way without waiting for them.
pub struct DownloadRuntime(Option<tokio::runtime::Runtime>);

impl DownloadRuntime {
    pub fn new(url: &str) -> Result<DownloadRuntime> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mcf-remote")
            .enable_all()
            .build()
            .map_err(|e| Error::Remote {
                object: url.to_string(),
                msg: format!("cannot start the download runtime: {e}"),
            })?;
        Ok(DownloadRuntime(Some(runtime)))
    }

    fn handle(&self) -> tokio::runtime::Handle {
        self.0.as_ref().expect("present until dropped").handle().clone()
    }
}

impl Drop for DownloadRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Messages are wrapped in `Error::Remote { object, .. }`, which names the object already.
fn strip_object(msg: &str, object: &str) -> String {
    msg.strip_prefix(object).map(|m| m.trim_start_matches(": ").to_string()).unwrap_or_else(|| msg.to_string())
}

/// Whole-file xxh3 of a local file, read in chunks.
fn file_xxh3(path: &Path) -> std::io::Result<u64> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf)? {
            0 => return Ok(hasher.digest()),
            k => hasher.update(&buf[..k]),
        }
    }
}

fn default_cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("mobileclip-fastload");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".cache").join("mobileclip-fastload"),
        None => std::env::temp_dir().join("mobileclip-fastload-cache"),
    }
}
