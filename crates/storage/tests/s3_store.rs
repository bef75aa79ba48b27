//! EnvelopeStore against a real S3-compatible server (moto, started by
//! `tests/servers/up.sh`, endpoint in `ASYA_TEST_AWS_ENDPOINT`).

use asya_storage::{EnvelopeStore, StorageError};

fn endpoint() -> String {
    std::env::var("ASYA_TEST_AWS_ENDPOINT")
        .expect("ASYA_TEST_AWS_ENDPOINT is unset: run `eval \"$(bash tests/servers/up.sh)\"` first")
}

fn unique(name: &str) -> String {
    format!("{name}-{}", uuid::Uuid::new_v4().simple())
}

/// A store on a fresh bucket, so parallel tests never see each other's objects.
async fn fresh_store(prefix: &str) -> EnvelopeStore {
    let store = EnvelopeStore::new(&unique("asya-test"), prefix, Some(&endpoint()), "us-east-1")
        .await
        .unwrap();
    store.ensure_bucket().await.unwrap();
    store
}

#[tokio::test]
async fn put_writes_prefix_kind_id_json_and_get_reads_it_back() {
    let store = fresh_store("results").await;
    let body = br#"{"id":"e1","payload":{"n":3}}"#;
    let key = store.put("succeeded", "e1", body).await.unwrap();
    assert_eq!(key, "results/succeeded/e1.json");
    assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&body[..]));
}

#[tokio::test]
async fn get_of_a_missing_key_is_none() {
    let store = fresh_store("").await;
    assert_eq!(store.get("succeeded/nope.json").await.unwrap(), None);
}

#[tokio::test]
async fn hostile_ids_stay_inside_their_kind_folder() {
    let store = fresh_store("p/").await;
    let key = store.put("failed", "../../x/y", b"{}").await.unwrap();
    assert!(key.starts_with("p/failed/"), "{key}");
    assert!(!key.contains(".."), "{key}");
    assert_eq!(store.list("failed/").await.unwrap(), vec![key.clone()]);
    assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&b"{}"[..]));
}

#[tokio::test]
async fn list_returns_every_key_of_a_kind_sorted() {
    let store = fresh_store("pg").await;
    let mut expected = Vec::new();
    for i in 0..25 {
        expected.push(
            store
                .put("succeeded", &format!("id-{i:03}"), b"{}")
                .await
                .unwrap(),
        );
    }
    store.put("sump", "other", b"{}").await.unwrap();
    expected.sort();
    assert_eq!(store.list("succeeded/").await.unwrap(), expected);
    assert_eq!(store.list("").await.unwrap().len(), 26);
}

#[tokio::test]
async fn ensure_bucket_is_idempotent() {
    let store = fresh_store("").await;
    store.ensure_bucket().await.unwrap();
    store.put("sump", "a", b"1").await.unwrap();
    store.ensure_bucket().await.unwrap();
    assert_eq!(store.list("sump/").await.unwrap().len(), 1);
}

#[tokio::test]
async fn writing_to_a_missing_bucket_is_a_put_error() {
    let store = EnvelopeStore::new(&unique("asya-missing"), "", Some(&endpoint()), "us-east-1")
        .await
        .unwrap();
    let err = store.put("succeeded", "a", b"{}").await.unwrap_err();
    assert!(matches!(err, StorageError::Put { .. }), "{err}");
}

#[tokio::test]
async fn empty_bucket_name_is_a_config_error() {
    let err = EnvelopeStore::new(" ", "", None, "us-east-1")
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Config(_)), "{err}");
}
