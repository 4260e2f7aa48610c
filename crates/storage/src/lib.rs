//! Ferry's blob store: streaming put/get of file contents over `object_store`: the local
//! filesystem by default, an S3 bucket (AWS or any S3-compatible server) in production, chosen by
//! `storage.backend` ([`BlobStore::from_settings`]).
//!
//! Uploads stream through multipart writes with bounded buffering, hashing as they go, and reads
//! stream the response body, so no object is ever held whole in memory on either backend.

#[cfg(feature = "test-support")]
pub mod testing;

use std::convert::Infallible;
use std::fmt;
use std::ops::Range;
use std::path::Path as FsPath;
use std::pin::pin;
use std::sync::Arc;

use bytes::Bytes;
use ferry_config::{S3Settings, StorageBackend, StorageSettings};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use md5::Md5;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Multipart part size. S3 requires ≥ 5 MiB for every part but the last; 8 MiB allows objects up
/// to ~78 GiB within S3's 10 000-part limit.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;
const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// Part size on the local filesystem, which has no minimum: each part is one buffered write, so small parts keep a
/// transfer's memory small (the importer runs several at once) at no cost in throughput.
const LOCAL_PART_SIZE: usize = 1024 * 1024;
/// Parts uploaded concurrently; with the part being filled this bounds memory to ~3 parts.
const MAX_PARTS_IN_FLIGHT: usize = 2;

/// Errors from the blob store. `E` is the error type of a caller-supplied input stream
/// ([`BlobStore::put_stream`]); it is [`Infallible`] for every other operation.
#[derive(Debug, thiserror::Error)]
pub enum StorageError<E = Infallible> {
    #[error("blob {key:?} not found")]
    NotFound { key: String },
    #[error("invalid blob key {key:?}: {source}")]
    InvalidKey {
        key: String,
        #[source]
        source: object_store::path::Error,
    },
    #[error("blob {key:?} exceeds the limit of {limit} bytes")]
    TooLarge { key: String, limit: u64 },
    /// The caller's input stream failed; the upload was aborted.
    #[error("reading the upload source for {key:?} failed: {source}")]
    Source {
        key: String,
        #[source]
        source: E,
    },
    #[error("blob store {operation} failed for {key:?}: {source}")]
    Backend {
        operation: &'static str,
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("the {backend} blob store cannot be configured: {source}")]
    Configure {
        backend: &'static str,
        #[source]
        source: object_store::Error,
    },
    #[error("blob store root {root:?} cannot be used: {source}")]
    Root {
        root: String,
        #[source]
        source: std::io::Error,
    },
}

impl<E> StorageError<E> {
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }

    fn backend(operation: &'static str, key: &str, source: object_store::Error) -> Self {
        match source {
            // A write cannot miss its key: S3 answers 404 there when the bucket itself is missing.
            object_store::Error::NotFound { .. } if operation != "put" => {
                StorageError::NotFound { key: key.to_owned() }
            }
            source => StorageError::Backend { operation, key: key.to_owned(), source },
        }
    }
}

/// What [`BlobStore::put_stream`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub size: u64,
    /// Lowercase hex SHA-256 of the content.
    pub sha256_hex: String,
    /// Lowercase hex MD5 of the content (Drive reports `md5Checksum`, so exports can be verified).
    pub md5_hex: String,
}

/// What [`BlobStore::put_stream_sha256`] stored: the content hashed once, with SHA-256 only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSha256 {
    pub size: u64,
    /// Lowercase hex SHA-256 of the content.
    pub sha256_hex: String,
}

/// A blob being read.
pub struct BlobRead {
    /// Size of the whole object.
    pub size: u64,
    /// The byte range `stream` yields (the whole object unless a range was asked for).
    pub range: Range<u64>,
    pub stream: BoxStream<'static, Result<Bytes, StorageError>>,
}

impl fmt::Debug for BlobRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobRead").field("size", &self.size).field("range", &self.range).finish_non_exhaustive()
    }
}

/// Deterministic key of a file's content, so a retried import overwrites instead of duplicating.
pub fn file_blob_key(tenant_id: &Uuid, file_id: &Uuid) -> String {
    format!("tenants/{tenant_id}/files/{file_id}")
}

/// The longest side, in pixels, of each thumbnail made of an image version, in index order.
pub const THUMBNAIL_SIZES: [u32; 2] = [256, 1024];

/// Where the thumbnail of `size` made from the bytes at `blob_key` is kept: beside the tenant's files (not under
/// the blob's own key, which a file-system store cannot also use as a directory).
pub fn thumbnail_key(blob_key: &str, size: u32) -> String {
    match blob_key.rsplit_once("/files/") {
        Some((tenant_prefix, content)) => format!("{tenant_prefix}/thumbnails/{content}-{size}"),
        None => format!("{blob_key}-thumbnail-{size}"),
    }
}

/// Every thumbnail key of the bytes at `blob_key`.
pub fn thumbnail_keys(blob_key: &str) -> Vec<String> {
    THUMBNAIL_SIZES.iter().map(|size| thumbnail_key(blob_key, *size)).collect()
}

/// Streams blobs in and out of an [`ObjectStore`]. Cheap to clone.
#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    part_size: usize,
}

impl fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobStore").field("store", &self.store.to_string()).field("part_size", &self.part_size).finish()
    }
}

impl BlobStore {
    /// The store `storage.backend` names.
    pub fn from_settings(settings: &StorageSettings) -> Result<Self, StorageError> {
        match settings.backend {
            StorageBackend::Local => Self::local(&settings.root),
            StorageBackend::S3 => Self::s3(&settings.s3),
        }
    }

    /// A store in an S3 bucket. Nothing is contacted until the first request.
    pub fn s3(s3: &S3Settings) -> Result<Self, StorageError> {
        let mut builder =
            AmazonS3Builder::new().with_bucket_name(&s3.bucket).with_region(&s3.region).with_allow_http(s3.allow_http);
        if !s3.endpoint.is_empty() {
            // Path-style requests (the builder's default) work with every S3-compatible server.
            builder = builder.with_endpoint(s3.endpoint.trim_end_matches('/'));
        }
        if !s3.access_key_id.is_empty() {
            builder =
                builder.with_access_key_id(&s3.access_key_id).with_secret_access_key(s3.secret_access_key.expose());
        }
        let store = builder.build().map_err(|source| StorageError::Configure { backend: "s3", source })?;
        Ok(Self::from_object_store(Arc::new(store)))
    }

    /// A store rooted at a local directory, created if missing.
    pub fn local(root: impl AsRef<FsPath>) -> Result<Self, StorageError> {
        let root = root.as_ref();
        let root_error = |source| StorageError::Root { root: root.display().to_string(), source };
        std::fs::create_dir_all(root).map_err(root_error)?;
        let store = LocalFileSystem::new_with_prefix(root)
            .map_err(|e| root_error(std::io::Error::other(e)))?
            .with_automatic_cleanup(true);
        Ok(Self { store: Arc::new(store), part_size: LOCAL_PART_SIZE })
    }

    /// Any object_store backend (S3, in-memory, ...).
    pub fn from_object_store(store: Arc<dyn ObjectStore>) -> Self {
        Self { store, part_size: DEFAULT_PART_SIZE }
    }

    /// Multipart part size; values below 5 MiB are raised to 5 MiB (S3's minimum).
    pub fn with_part_size(mut self, part_size: usize) -> Self {
        self.part_size = part_size.max(MIN_PART_SIZE);
        self
    }

    /// The underlying object store.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Streams `stream` into `key` (replacing any existing object), computing size, SHA-256 and
    /// MD5 on the way. On any error the multipart upload is aborted and nothing is published.
    pub async fn put_stream<S, E>(&self, key: &str, stream: S) -> Result<StoredBlob, StorageError<E>>
    where
        S: Stream<Item = Result<Bytes, E>>,
    {
        self.put_stream_both(key, stream, None).await
    }

    /// Like [`BlobStore::put_stream`], hashing each byte once (SHA-256, which this machine's CPU may accelerate)
    /// for a caller that learns the MD5 elsewhere: an importer whose Drive file reports both checksums verifies
    /// the SHA-256 and takes Drive's MD5 for the same bytes.
    pub async fn put_stream_sha256<S, E>(&self, key: &str, stream: S) -> Result<StoredSha256, StorageError<E>>
    where
        S: Stream<Item = Result<Bytes, E>>,
    {
        let (size, sha256_hex, _) = self.put_stream_inner(key, stream, None, None).await?;
        Ok(StoredSha256 { size, sha256_hex })
    }

    /// Like [`BlobStore::put_stream`], failing with [`StorageError::TooLarge`] (and aborting) as
    /// soon as more than `max_bytes` arrive.
    pub async fn put_stream_limited<S, E>(
        &self,
        key: &str,
        stream: S,
        max_bytes: u64,
    ) -> Result<StoredBlob, StorageError<E>>
    where
        S: Stream<Item = Result<Bytes, E>>,
    {
        self.put_stream_both(key, stream, Some(max_bytes)).await
    }

    async fn put_stream_both<S, E>(
        &self,
        key: &str,
        stream: S,
        limit: Option<u64>,
    ) -> Result<StoredBlob, StorageError<E>>
    where
        S: Stream<Item = Result<Bytes, E>>,
    {
        let (size, sha256_hex, md5) = self.put_stream_inner(key, stream, limit, Some(Md5::new())).await?;
        // Given an MD5 hasher, the inner write always returns its digest.
        Ok(StoredBlob { size, sha256_hex, md5_hex: md5.unwrap_or_default() })
    }

    async fn put_stream_inner<S, E>(
        &self,
        key: &str,
        stream: S,
        limit: Option<u64>,
        mut md5: Option<Md5>,
    ) -> Result<(u64, String, Option<String>), StorageError<E>>
    where
        S: Stream<Item = Result<Bytes, E>>,
    {
        let location = parse_key(key)?;
        let upload = self.store.put_multipart(&location).await.map_err(|e| StorageError::backend("put", key, e))?;
        let mut writer = AbortOnDrop(Some(WriteMultipart::new_with_chunk_size(upload, self.part_size)));

        let mut sha256 = Sha256::new();
        let mut size: u64 = 0;
        let mut stream = pin!(stream);

        let failure = loop {
            let chunk = match stream.next().await {
                None => break None,
                Some(Err(source)) => {
                    break Some(StorageError::Source { key: key.to_owned(), source });
                }
                Some(Ok(chunk)) => chunk,
            };
            size += chunk.len() as u64;
            if let Some(limit) = limit
                && size > limit
            {
                break Some(StorageError::TooLarge { key: key.to_owned(), limit });
            }
            sha256.update(&chunk);
            if let Some(md5) = md5.as_mut() {
                md5.update(&chunk);
            }
            let Some(w) = writer.0.as_mut() else { unreachable!("writer is present until finish/abort") };
            // Back-pressure: never buffer more than MAX_PARTS_IN_FLIGHT parts beyond the current one.
            if let Err(e) = w.wait_for_capacity(MAX_PARTS_IN_FLIGHT).await {
                break Some(StorageError::backend("put", key, e));
            }
            w.put(chunk);
        };

        let Some(w) = writer.0.take() else { unreachable!("writer is present until finish/abort") };
        if let Some(err) = failure {
            if let Err(abort_err) = w.abort().await {
                tracing::warn!(key, error = %abort_err, "aborting a failed blob upload failed");
            }
            return Err(err);
        }
        // `finish` aborts the upload itself when completing fails.
        w.finish().await.map_err(|e| StorageError::backend("put", key, e))?;

        Ok((size, hex::encode(sha256.finalize()), md5.map(|md5| hex::encode(md5.finalize()))))
    }

    /// Opens `key` for streaming, optionally only `range` (end exclusive; an end past the object
    /// is clamped to its size).
    pub async fn get_stream(&self, key: &str, range: Option<Range<u64>>) -> Result<BlobRead, StorageError> {
        let location = parse_key(key)?;
        let options = GetOptions { range: range.map(GetRange::Bounded), ..GetOptions::default() };
        let result = self.store.get_opts(&location, options).await.map_err(|e| StorageError::backend("get", key, e))?;
        let size = result.meta.size;
        let range = result.range.clone();
        let owned_key = key.to_owned();
        let stream = result.into_stream().map_err(move |e| StorageError::backend("read", &owned_key, e)).boxed();
        Ok(BlobRead { size, range, stream })
    }

    /// Size of `key`, or `None` if it does not exist.
    pub async fn head(&self, key: &str) -> Result<Option<u64>, StorageError> {
        let location = parse_key(key)?;
        match self.store.head(&location).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(StorageError::backend("head", key, e)),
        }
    }

    /// Keys of every blob under `prefix` (a key prefix of whole segments, e.g. `tenants/{id}`), sorted.
    /// Lists the whole prefix: meant for audits and tests, not request paths.
    pub async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let location = parse_key(prefix)?;
        let mut keys: Vec<String> = self
            .store
            .list(Some(&location))
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .map_err(|e| StorageError::backend("list", prefix, e))?;
        keys.sort();
        Ok(keys)
    }

    /// Deletes `key`; deleting a missing blob succeeds (deletes are retried at least once).
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let location = parse_key(key)?;
        match self.store.delete(&location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StorageError::backend("delete", key, e)),
        }
    }
}

fn parse_key<E>(key: &str) -> Result<Path, StorageError<E>> {
    let invalid = |source| StorageError::InvalidKey { key: key.to_owned(), source };
    let path = Path::parse(key).map_err(invalid)?;
    if path.as_ref().is_empty() {
        return Err(invalid(object_store::path::Error::EmptySegment { path: key.to_owned() }));
    }
    Ok(path)
}

/// Aborts an unfinished multipart upload if the `put_stream` future is dropped mid-way, so a
/// cancelled upload leaves no staged parts behind.
struct AbortOnDrop(Option<WriteMultipart>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(writer) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(e) = writer.abort().await {
                    tracing::debug!(error = %e, "aborting a cancelled blob upload failed");
                }
            });
        }
    }
}
