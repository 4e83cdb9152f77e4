//! Where a store is: a local directory, or a URL of an object store
//! (`s3://`, `gs://`, `az://`, `http(s)://`, `file://`) read through a local cache.

use std::path::{Path, PathBuf};

use super::Store;
use crate::error::Result;

/// How a remote store is read; ignored for a local directory.
#[derive(Clone, Debug)]
pub struct RemoteOptions {
    /// Where downloaded shards are kept (a subdirectory per store URL).
    /// Default: `$XDG_CACHE_HOME/mobileclip-fastload` (or `~/.cache/...`).
    pub cache_dir: Option<PathBuf>,
    /// Most bytes of shard files the cache keeps for this store; shards not in
    /// use are evicted, least recently used first.
    pub cache_size: u64,
    /// Shards downloaded ahead of the one being read, in epoch order.
    pub prefetch_shards: usize,
    /// Downloads running at once.
    pub max_concurrent_downloads: usize,
    /// Attempts per shard (a dropped connection or a checksum mismatch is retried).
    pub max_attempts: u32,
    /// `object_store` configuration (`aws_endpoint`, `allow_http`, `timeout`, ...),
    /// on top of what the usual environment variables give.
    pub object_store_options: Vec<(String, String)>,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            cache_dir: None,
            cache_size: 16 << 30,
            prefetch_shards: 4,
            max_concurrent_downloads: 4,
            max_attempts: 3,
            object_store_options: Vec::new(),
        }
    }
}

/// Whether `location` names an object store URL rather than a local path.
pub fn is_url(location: &str) -> bool {
    match location.split_once("://") {
        Some((scheme, _)) => !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || c == '+'),
        None => false,
    }
}

/// Open a local store directory or a remote store URL.
pub fn open_location(location: &str, options: &RemoteOptions) -> Result<Store> {
    if !is_url(location) {
        return Store::open(Path::new(location));
    }
    #[cfg(feature = "remote")]
    {
        Store::open_remote(location, options)
    }
    #[cfg(not(feature = "remote"))]
    {
        let _ = options;
        Err(crate::error::Error::InvalidArgument(format!(
            "{location}: this build has no remote store support (build with the `remote` feature)"
        )))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_and_paths() {
        for url in ["s3://b/p", "gs://b", "az://c/p", "https://h/p", "file:///tmp/x"] {
            assert!(super::is_url(url), "{url}");
        }
        for path in ["/tmp/store", "relative/dir", "weird:name", "C:/x", "a/b://c"] {
            assert!(!super::is_url(path), "{path}");
        }
    }
}
