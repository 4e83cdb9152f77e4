//! One object store (`object_store` crate) behind a store URL, and the
//! whole-object download with its checks.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreScheme;
use object_store::{BackoffConfig, ObjectStore, RetryConfig};
use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, Result};

/// Client settings used unless the caller's options name them: a stalled
/// connection must end in an error, never a hang.
const DEFAULT_CLIENT_OPTIONS: [(&str, &str); 2] = [("connect_timeout", "10s"), ("timeout", "300s")];

pub(crate) struct ObjectClient {
    store: Arc<dyn ObjectStore>,
    /// The store's "directory" inside the object store.
    prefix: ObjectPath,
    /// The URL as given, without a trailing '/', for messages.
    url: String,
    runtime: tokio::runtime::Handle,
}

/// Why one download attempt failed, and whether another attempt may help.
pub(crate) struct Failure {
    pub msg: String,
    pub retry: bool,
}

impl ObjectClient {
    /// Credentials and settings come from the usual environment variables
    /// (`AWS_*`, `GOOGLE_*`, `AZURE_*`: the builders' `from_env`), then `options`.
    pub fn new(url: &str, options: &[(String, String)], runtime: tokio::runtime::Handle) -> Result<ObjectClient> {
        let bad = |msg: String| Error::Remote { object: url.to_string(), msg };
        let parsed = url::Url::parse(url).map_err(|e| bad(format!("not a valid URL: {e}")))?;
        let (scheme, prefix) =
            ObjectStoreScheme::parse(&parsed).map_err(|e| bad(format!("unsupported store URL: {e}")))?;
        let mut all: Vec<(String, String)> = DEFAULT_CLIENT_OPTIONS
            .iter()
            .filter(|(k, _)| !options.iter().any(|(o, _)| o == k))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.extend(options.iter().cloned());
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: 4,
            retry_timeout: Duration::from_secs(120),
        };
        macro_rules! configured {
            ($builder:expr, $key:ty) => {{
                let mut b = $builder.with_url(url).with_retry(retry);
                for (k, v) in &all {
                    let key: $key = k.parse().map_err(|e| bad(format!("unknown storage option {k:?}: {e}")))?;
                    b = b.with_config(key, v.clone());
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?) as Arc<dyn ObjectStore>
            }};
        }
        let store: Arc<dyn ObjectStore> = match scheme {
            ObjectStoreScheme::AmazonS3 => {
                configured!(AmazonS3Builder::from_env(), object_store::aws::AmazonS3ConfigKey)
            }
            ObjectStoreScheme::GoogleCloudStorage => {
                configured!(GoogleCloudStorageBuilder::from_env(), object_store::gcp::GoogleConfigKey)
            }
            ObjectStoreScheme::MicrosoftAzure => {
                configured!(MicrosoftAzureBuilder::from_env(), object_store::azure::AzureConfigKey)
            }
            ObjectStoreScheme::Http => {
                let base = &parsed[..url::Position::BeforePath];
                let mut b = HttpBuilder::new().with_url(base).with_retry(retry);
                for (k, v) in &all {
                    let key: object_store::ClientConfigKey =
                        k.parse().map_err(|e| bad(format!("unknown storage option {k:?}: {e}")))?;
                    b = b.with_config(key, v.clone());
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
            ObjectStoreScheme::Local => Arc::new(LocalFileSystem::new()),
            other => return Err(bad(format!("unsupported store URL scheme ({other:?})"))),
        };
        Ok(ObjectClient { store, prefix, url: url.trim_end_matches('/').to_string(), runtime })
    }

    /// The URL of object `name` inside the store, for messages.
    pub fn object_url(&self, name: &str) -> String {
        format!("{}/{name}", self.url)
    }

    fn path(&self, name: &str) -> ObjectPath {
        self.prefix.child(name)
    }

    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    /// A small object (the manifest) in memory, read as a stream and refused (a
    /// format error, after at most `limit + 1` bytes) when larger than `limit`;
    /// `what_limit` says where the limit comes from. Blocks the calling thread.
    pub fn get_bounded(&self, name: &str, limit: u64, what_limit: &str) -> Result<Vec<u8>> {
        let path = self.path(name);
        let object = self.object_url(name);
        self.runtime.block_on(async {
            let result = self.store.get(&path).await.map_err(|e| describe(&object, e))?;
            let too_big = || Error::format(&object, format!("larger than {limit} bytes ({what_limit})"));
            if result.meta.size > limit {
                return Err(too_big());
            }
            let mut bytes = Vec::new();
            let mut stream = result.into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| describe(&object, e))?;
                if (bytes.len() + chunk.len()) as u64 > limit {
                    return Err(too_big());
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(bytes)
        })
    }

    /// Bytes `range` of object `name` (one ranged GET); blocks the calling thread,
    /// which must not be one of the runtime's own.
    pub fn get_range(&self, name: &str, range: std::ops::Range<u64>) -> Result<Vec<u8>> {
        let path = self.path(name);
        let object = self.object_url(name);
        let want = range.end - range.start;
        self.runtime.block_on(async {
            let bytes = self.store.get_range(&path, range.clone()).await.map_err(|e| describe(&object, e))?;
            if bytes.len() as u64 != want {
                return Err(Error::format(
                    &object,
                    format!("bytes {range:?}: got {} bytes, expected {want}", bytes.len()),
                ));
            }
            Ok(bytes.to_vec())
        })
    }

    /// Stream object `name` into `tmp`, checking its size and whole-file xxh3
    /// on the way; `tmp` is left for the caller to rename or remove.
    pub async fn download_once(
        &self,
        name: &str,
        tmp: &Path,
        size: u64,
        xxh3: u64,
    ) -> std::result::Result<(), Failure> {
        let object = self.object_url(name);
        let result = self.store.get(&self.path(name)).await.map_err(|e| Failure {
            retry: !matches!(e, object_store::Error::NotFound { .. }),
            msg: describe(&object, e).to_string(),
        })?;
        let mut file = std::fs::File::create(tmp).map_err(|e| local_failure(tmp, e))?;
        let mut hasher = Xxh3::new();
        let mut written = 0u64;
        let mut stream = result.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| Failure { retry: true, msg: format!("{object}: download interrupted: {e}") })?;
            written += chunk.len() as u64;
            if written > size {
                break;
            }
            hasher.update(&chunk);
            // A plain blocking write: chunks are small and land in the page cache.
            file.write_all(&chunk).map_err(|e| local_failure(tmp, e))?;
        }
        if written != size {
            return Err(Failure {
                retry: true,
                msg: format!("{object}: downloaded {written} bytes, the manifest says {size}"),
            });
        }
        let got = hasher.digest();
        if got != xxh3 {
            return Err(Failure {
                retry: true,
                msg: format!(
                    "{object}: checksum mismatch: the download hashes to xxh3 {got:016x}, the manifest says {xxh3:016x}"
                ),
            });
        }
        Ok(())
    }
}

/// A failure writing the local cache: retrying the download does not help.
fn local_failure(tmp: &Path, e: std::io::Error) -> Failure {
    let what = if e.raw_os_error() == Some(28) { "cache disk is full" } else { "cannot write the cache" };
    Failure { retry: false, msg: format!("{what}: {}: {e}", tmp.display()) }
}

fn describe(object: &str, e: object_store::Error) -> Error {
    let msg = match e {
        object_store::Error::NotFound { .. } => "object not found".to_string(),
        other => with_causes(&other),
    };
    Error::Remote { object: object.to_string(), msg }
}

/// An error and its causes ("builder error" alone names none), with what to do
/// about the one users meet most: plain http refused.
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !msg.contains(&text) {
            msg = format!("{msg}: {text}");
        }
        source = cause.source();
    }
    if msg.contains("scheme is not allowed") || msg.contains("builder error") {
        msg.push_str(
            " (a plain http:// endpoint is refused unless allowed: storage option allow_http=true, \
                     or --allow-http on the command line)",
        );
    }
    msg
}
