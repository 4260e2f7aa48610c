use std::io;

use bytes::Bytes;
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

fn store() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::local(dir.path().join("blobs")).expect("local store");
    (dir, store)
}

async fn read_all(store: &BlobStore, key: &str, range: Option<std::ops::Range<u64>>) -> Vec<u8> {
    let read = store.get_stream(key, range).await.expect("get");
    let parts: Vec<Bytes> = read.stream.try_collect().await.expect("read");
    parts.concat()
}

#[tokio::test]
async fn streams_20_mib_round_trip_with_identical_hashes() {
    let (_dir, store) = store();
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

#[tokio::test]
async fn md5_matches_known_vector_and_overwrite_replaces() {
    let (_dir, store) = store();
    let key = "tenants/t/files/md5";
    let stored =
        store.put_stream(key, stream::iter([Ok::<_, io::Error>(Bytes::from_static(b"abc"))])).await.expect("put");
    assert_eq!(stored.md5_hex, "900150983cd24fb0d6963f7d28e17f72");
    assert_eq!(stored.sha256_hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    // a retried import writes the same key again: replaced, not duplicated
    store.put_stream(key, stream::iter([Ok::<_, io::Error>(Bytes::from_static(b"xy"))])).await.expect("overwrite");
    assert_eq!(read_all(&store, key, None).await, b"xy");
}

#[tokio::test]
async fn empty_stream_stores_an_empty_blob() {
    let (_dir, store) = store();
    let stored = store.put_stream("empty", stream::empty::<Result<Bytes, io::Error>>()).await.expect("put");
    assert_eq!(stored.size, 0);
    assert_eq!(stored.sha256_hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_eq!(store.head("empty").await.expect("head"), Some(0));
}

#[tokio::test]
async fn ranged_reads() {
    let (_dir, store) = store();
    let data = chunk(7, 300_000);
    store.put_stream("r", stream::iter([Ok::<_, io::Error>(data.clone())])).await.expect("put");
    assert_eq!(read_all(&store, "r", Some(10..20)).await, &data[10..20]);
    assert_eq!(read_all(&store, "r", Some(100_000..300_000)).await, &data[100_000..300_000]);
    let read = store.get_stream("r", Some(5..9)).await.expect("get");
    assert_eq!(read.size, 300_000);
    assert_eq!(read.range, 5..9);
    // an end past the object is clamped
    assert_eq!(read_all(&store, "r", Some(299_990..400_000)).await, &data[299_990..]);
}

#[tokio::test]
async fn missing_keys_are_not_found() {
    let (_dir, store) = store();
    let err = store.get_stream("nope/nothing", None).await.expect_err("missing");
    assert!(matches!(err, StorageError::NotFound { ref key } if key == "nope/nothing"), "{err}");
    assert!(err.is_not_found());
    assert_eq!(store.head("nope/nothing").await.expect("head"), None);
    store.delete("nope/nothing").await.expect("delete missing is fine");
}

#[tokio::test]
async fn delete_removes() {
    let (_dir, store) = store();
    store.put_stream("d/x", stream::iter([Ok::<_, io::Error>(Bytes::from_static(b"1"))])).await.expect("put");
    store.delete("d/x").await.expect("delete");
    assert_eq!(store.head("d/x").await.expect("head"), None);
}

#[tokio::test]
async fn source_errors_abort_and_publish_nothing() {
    let (dir, store) = store();
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
    // no staged part files remain
    let leftovers: Vec<_> = walk(dir.path());
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn limit_is_enforced_while_streaming() {
    let (_dir, store) = store();
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
    let (_dir, store) = store();
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
