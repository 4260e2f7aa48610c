//! The blob store against both backends: the local filesystem and a real S3-compatible server (moto,
//! started per test with its own bucket). Every behaviour test runs on each (`<test>::local`, `<test>::s3`).

use std::io;

use bytes::Bytes;
use ferry_storage::testing::S3TestServer;
use ferry_storage::{BlobStore, StorageError, file_blob_key};
use futures::{StreamExt, TryStreamExt, stream};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Deterministic pseudo-random content so hashes are meaningful and chunks differ.
fn chunk(index: u64, len: usize) -> Bytes {
    let mut state = index.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

fn chunks(count: u64, len: usize) -> Vec<Bytes> {
    (0..count).map(|i| chunk(i, len)).collect()
}

#[derive(Clone, Copy)]
enum Kind {
    Local,
    S3,
}

/// A store plus what keeps its backend alive.
struct Fixture {
    store: BlobStore,
    backend: Backend,
}

enum Backend {
    Local(tempfile::TempDir),
    S3 { server: S3TestServer, bucket: String },
}

async fn fixture(kind: Kind) -> Fixture {
    match kind {
        Kind::Local => {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = BlobStore::local(dir.path().join("blobs")).expect("local store");
            Fixture { store, backend: Backend::Local(dir) }
        }
        Kind::S3 => {
            let server = S3TestServer::start().expect("S3 server");
            let bucket = server.create_bucket().await.expect("bucket");
            let store = BlobStore::s3(&server.settings(&bucket)).expect("s3 store");
            Fixture { store, backend: Backend::S3 { server, bucket } }
        }
    }
}

impl Fixture {
    /// Anything a failed upload could leave behind: staged files on disk, unfinished multipart uploads in S3.
    async fn leftovers(&self) -> Vec<String> {
        match &self.backend {
            Backend::Local(dir) => walk(dir.path()).into_iter().map(|p| p.display().to_string()).collect(),
            Backend::S3 { server, bucket } => {
                let listing = reqwest::get(format!("{}/{bucket}?uploads", server.endpoint()))
                    .await
                    .expect("list multipart uploads")
                    .text()
                    .await
                    .expect("listing body");
                listing
                    .split("<UploadId>")
                    .skip(1)
                    .filter_map(|rest| rest.split_once("</UploadId>").map(|(id, _)| format!("multipart upload {id}")))
                    .collect()
            }
        }
    }
}

/// Runs `$name(kind)` once per backend, as `$name::local` and `$name::s3`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn local() {
                super::$name(super::Kind::Local).await
            }
            #[tokio::test]
            async fn s3() {
                super::$name(super::Kind::S3).await
            }
        }
    )*};
}

on_both_backends!(
    streams_20_mib_round_trip_with_identical_hashes,
    md5_matches_known_vector_and_overwrite_replaces,
    empty_stream_stores_an_empty_blob,
    sha256_only_writes_the_same_bytes_and_digest,
    ranged_reads,
    missing_keys_are_not_found,
    delete_removes,
    source_errors_abort_and_publish_nothing,
    limit_is_enforced_while_streaming,
);

async fn read_all(store: &BlobStore, key: &str, range: Option<std::ops::Range<u64>>) -> Vec<u8> {
    let read = store.get_stream(key, range).await.expect("get");
    let parts: Vec<Bytes> = read.stream.try_collect().await.expect("read");
    parts.concat()
}

async fn streams_20_mib_round_trip_with_identical_hashes(kind: Kind) {
    let fixture = fixture(kind).await;
    let store = &fixture.store;
    let key = file_blob_key(&Uuid::new_v4(), &Uuid::new_v4());
    // 20 MiB in odd-sized chunks so parts never align with chunk boundaries.
    let data = chunks(20 * 1024 * 1024 / 65_000 + 1, 65_000);
    let total: usize = data.iter().map(Bytes::len).sum();
    let mut expected = Sha256::new();
    data.iter().for_each(|c| expected.update(c));
    let expected = hex::encode(expected.finalize());

    let input = stream::iter(data.clone().into_iter().map(Ok::<_, io::Error>));
    let stored = store.put_stream(&key, input).await.expect("put");
    assert_eq!(stored.size, total as u64);
    assert_eq!(stored.sha256_hex, expected);
    assert_eq!(stored.md5_hex.len(), 32);
    assert_eq!(store.head(&key).await.expect("head"), Some(total as u64));

    let read = store.get_stream(&key, None).await.expect("get");
    assert_eq!(read.size, total as u64);
    assert_eq!(read.range, 0..total as u64);
    let mut actual = Sha256::new();
    let mut read_len = 0u64;
    let mut s = read.stream;
    while let Some(part) = s.next().await {
        let part = part.expect("chunk");
        read_len += part.len() as u64;
        actual.update(&part);
    }
    assert_eq!(read_len, total as u64);
    assert_eq!(hex::encode(actual.finalize()), expected);
}

async fn md5_matches_known_vector_and_overwrite_replaces(kind: Kind) {
    let fixture = fixture(kind).await;
    let store = &fixture.store;
    let key = "tenants/t/files/md5";
    let stored =
        store.put_stream(key, stream::iter([Ok::<_, io::Error>(Bytes::from_static(b"abc"))])).await.expect("put");
    assert_eq!(stored.md5_hex, "900150983cd24fb0d6963f7d28e17f72");
    assert_eq!(stored.sha256_hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    // a retried import writes the same key again: replaced, not duplicated
    store.put_stream(key, stream::iter([Ok::<_, io::Error>(Bytes::from_static(b"xy"))])).await.expect("overwrite");
    assert_eq!(read_all(store, key, None).await, b"xy");
}

async fn sha256_only_writes_the_same_bytes_and_digest(kind: Kind) {
    let fixture = fixture(kind).await;
    let store = &fixture.store;
    let data = chunks(40, 65_000);
    let whole = data.concat();
    let stored = store
        .put_stream_sha256("tenants/t/files/once", stream::iter(data.into_iter().map(Ok::<_, io::Error>)))
        .await
        .expect("put");
    assert_eq!(stored.size, whole.len() as u64);
    assert_eq!(stored.sha256_hex, hex::encode(Sha256::digest(&whole)));
    assert_eq!(read_all(store, "tenants/t/files/once", None).await, whole);
}

async fn empty_stream_stores_an_empty_blob(kind: Kind) {
    let fixture = fixture(kind).await;
    let store = &fixture.store;
    let stored = store.put_stream("empty", stream::empty::<Result<Bytes, io::Error>>()).await.expect("put");
    assert_eq!(stored.size, 0);
    assert_eq!(stored.sha256_hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_eq!(store.head("empty").await.expect("head"), Some(0));
}

async fn ranged_reads(kind: Kind) {
    let fixture = fixture(kind).await;
    let store = &fixture.store;
    let data = chunk(7, 300_000);
    store.put_stream("r", stream::iter([Ok::<_, io::Error>(data.clone())])).await.expect("put");
    assert_eq!(read_all(store, "r", Some(10..20)).await, &data[10..20]);
    assert_eq!(read_all(store, "r", Some(100_000..300_000)).await, &data[100_000..300_000]);
    let read = store.get_stream("r", Some(5..9)).await.expect("get");
    assert_eq!(read.size, 300_000);
    assert_eq!(read.range, 5..9);
    // an end past the object is clamped
    assert_eq!(read_all(store, "r", Some(299_990..400_000)).await, &data[299_990..]);
}

async fn missing_keys_are_not_found(kind: Kind) {
    let fixture = fixture(kind).await;
    let store = &fixture.store;
    let err = store.get_stream("nope/nothing", None).await.expect_err("missing");
    assert!(matches!(err, StorageError::NotFound { ref key } if key == "nope/nothing"), "{err}");
    assert!(err.is_not_found());
    assert_eq!(store.head("nope/nothing").await.expect("head"), None);
    store.delete("nope/nothing").await.expect("delete missing is fine");
}

async fn delete_removes(kind: Kind) {
    let fixture = fixture(kind).await;
    let store = &fixture.store;
    store.put_stream("d/x", stream::iter([Ok::<_, io::Error>(Bytes::from_static(b"1"))])).await.expect("put");
    store.delete("d/x").await.expect("delete");
    assert_eq!(store.head("d/x").await.expect("head"), None);
}

async fn source_errors_abort_and_publish_nothing(kind: Kind) {
    let fixture = fixture(kind).await;
    let store = &fixture.store;
    let mut items: Vec<Result<Bytes, io::Error>> = chunks(12, 1024 * 1024).into_iter().map(Ok).collect();
    items.push(Err(io::Error::other("connection reset by Drive")));
    let err = store.put_stream("tenants/a/files/b", stream::iter(items)).await.expect_err("source failed");
    match &err {
        StorageError::Source { key, source } => {
            assert_eq!(key, "tenants/a/files/b");
            assert_eq!(source.to_string(), "connection reset by Drive");
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(store.head("tenants/a/files/b").await.expect("head"), None);
    // no staged parts remain
    let leftovers = fixture.leftovers().await;
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

async fn limit_is_enforced_while_streaming(kind: Kind) {
    let fixture = fixture(kind).await;
    let store = &fixture.store;
    let items = chunks(4, 1000).into_iter().map(Ok::<_, io::Error>);
    let err = store.put_stream_limited("lim", stream::iter(items), 2500).await.expect_err("too large");
    assert!(matches!(err, StorageError::TooLarge { limit: 2500, .. }), "{err}");
    assert_eq!(store.head("lim").await.expect("head"), None);

    let items = chunks(2, 1000).into_iter().map(Ok::<_, io::Error>);
    let ok = store.put_stream_limited("lim", stream::iter(items), 2000).await.expect("at the limit is fine");
    assert_eq!(ok.size, 2000);
}

#[tokio::test]
async fn invalid_keys_are_rejected() {
    let fixture = fixture(Kind::Local).await;
    let store = &fixture.store;
    for key in ["", "a//b", "../escape"] {
        let err = store.head(key).await.expect_err(key);
        assert!(matches!(err, StorageError::InvalidKey { .. }), "{key}: {err}");
    }
}

#[test]
fn blob_keys_are_deterministic() {
    let tenant = Uuid::parse_str("00000000-0000-0000-0000-000000000001").expect("uuid");
    let file = Uuid::parse_str("00000000-0000-0000-0000-000000000002").expect("uuid");
    assert_eq!(
        file_blob_key(&tenant, &file),
        "tenants/00000000-0000-0000-0000-000000000001/files/00000000-0000-0000-0000-000000000002"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn the_configured_backend_is_used() {
    let server = S3TestServer::start().expect("S3 server");
    let bucket = server.create_bucket().await.expect("bucket");
    let mut overrides = server.overrides(&bucket);
    overrides.push(("storage.root".to_owned(), String::new()));
    let borrowed: Vec<(&str, &str)> = overrides.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let settings = ferry_config::Settings::from_sources(&borrowed).expect("settings");
    settings.validate().expect("valid s3 settings");
    let store = BlobStore::from_settings(&settings.storage).expect("store");
    store
        .put_stream("tenants/t/files/f", stream::iter([Ok::<_, io::Error>(Bytes::from_static(b"in s3"))]))
        .await
        .expect("put");

    // The object is in the bucket, as any S3 client sees it.
    let raw = reqwest::get(format!("{}/{bucket}/tenants/t/files/f", server.endpoint())).await.expect("GET object");
    assert!(raw.status().is_success(), "{}", raw.status());
    assert_eq!(raw.bytes().await.expect("body").as_ref(), b"in s3");
}

#[tokio::test]
async fn a_missing_bucket_is_a_clear_error() {
    let server = S3TestServer::start().expect("S3 server");
    let store = BlobStore::s3(&server.settings("no-such-bucket")).expect("configured");
    let err = store
        .put_stream("k", stream::iter([Ok::<_, io::Error>(Bytes::from_static(b"x"))]))
        .await
        .expect_err("no bucket");
    assert!(!err.is_not_found(), "a missing bucket is not a missing blob: {err}");
    let message = format!("{err}: {}", std::error::Error::source(&err).map(|s| s.to_string()).unwrap_or_default());
    assert!(message.contains("blob store put failed for \"k\""), "{message}");
    assert!(message.contains("NoSuchBucket") || message.contains("bucket"), "{message}");
}
