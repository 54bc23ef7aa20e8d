//! The contract every store keeps: run against the local store here and against a real
//! S3-compatible server in the server's integration tests. Test support, compiled only for
//! tests (`--features test-support` for the server's).
#[cfg(test)]
use super::LocalStore;
use super::{Bytes, ObjectInfo, ObjectStore, StoreError};
use futures_util::TryStreamExt as _;

pub async fn check(store: &impl ObjectStore) {
    assert!(store.get("a/missing.txt").await.expect("get").is_none());
    assert!(
        store
            .stream("a/missing.txt")
            .await
            .expect("stream")
            .is_none()
    );
    store
        .put("a/one.txt", Bytes::from_static(b"first"))
        .await
        .expect("put");
    store
        .put("a/one.txt", Bytes::from_static(b"second"))
        .await
        .expect("overwrite");
    store
        .put("a/b/two.bin", Bytes::from(vec![7u8; 300_000]))
        .await
        .expect("put nested");
    store
        .put("c.txt", Bytes::from_static(b"x"))
        .await
        .expect("put top");
    assert_eq!(
        store.get("a/one.txt").await.expect("get").as_deref(),
        Some(&b"second"[..])
    );
    let streamed: Vec<Bytes> = store
        .stream("a/b/two.bin")
        .await
        .expect("stream")
        .expect("present")
        .try_collect()
        .await
        .expect("read stream");
    assert_eq!(streamed.concat(), vec![7u8; 300_000]);
    let listed = store.list("a/").await.expect("list");
    assert_eq!(
        listed,
        vec![
            ObjectInfo {
                key: "a/b/two.bin".into(),
                size: 300_000
            },
            ObjectInfo {
                key: "a/one.txt".into(),
                size: 6
            },
        ]
    );
    assert_eq!(store.list("").await.expect("list all").len(), 3);
    assert!(store.list("zzz/").await.expect("list none").is_empty());
    store.delete("a/one.txt").await.expect("delete");
    store.delete("a/one.txt").await.expect("delete twice");
    assert!(store.get("a/one.txt").await.expect("get").is_none());
    for bad in ["../x", "a//b", "/abs", "a/../b", "a\\b", ""] {
        assert!(
            matches!(
                store.put(bad, Bytes::new()).await,
                Err(StoreError::BadKey(_))
            ),
            "{bad:?} must be refused"
        );
    }
}

#[cfg(test)]
#[tokio::test]
async fn the_local_store_keeps_the_contract() {
    let dir = std::env::temp_dir().join(format!("tg-store-{}", uuid::Uuid::new_v4()));
    let store = LocalStore::new(dir.clone());
    check(&store).await;
    // Nothing half-written is left beside the objects.
    let names: Vec<String> = std::fs::read_dir(dir.join("a"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".part")), "{names:?}");
    let _ = std::fs::remove_dir_all(dir);
}
