//! Unit tests of the upstream export: line splitting, storage URLs, `Retry-After`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::*;

#[tokio::test]
async fn lines_cross_chunk_boundaries_and_skip_blank_lines() {
    let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let path = Path::from("f.ndjson");
    let text = "{\"a\":1}\n\n{\"b\":22}\r\n  \n{\"c\":333}";
    store
        .put(&path, text.as_bytes().to_vec().into())
        .await
        .unwrap();
    for chunk in [1, 2, 3, 7, 1000] {
        let mut src = Source::Blob {
            store: store.clone(),
            path: path.clone(),
            size: text.len() as u64,
            offset: 0,
            chunk,
        };
        let mut lines = Lines::default();
        let mut got = Vec::new();
        while let Some(l) = lines.next(&mut src).await.unwrap() {
            got.push(String::from_utf8(l).unwrap());
        }
        assert_eq!(
            got,
            ["{\"a\":1}", "{\"b\":22}\r", "{\"c\":333}"],
            "chunk {chunk}"
        );
    }
}

#[test]
fn storage_account_urls_are_recognised() {
    let none = AzureStorage::default();
    let u = Url::parse("https://acct.blob.core.windows.net/exp/2024%20x/Patient-1.ndjson").unwrap();
    let (a, c, p) = blob_location(&none, &u).unwrap();
    assert_eq!(
        (a.as_deref(), c.as_str(), p.as_ref()),
        (Some("acct"), "exp", "2024 x/Patient-1.ndjson")
    );
    // not https, or another host: not a storage account
    assert!(blob_location(
        &none,
        &Url::parse("http://acct.blob.core.windows.net/e/f").unwrap()
    )
    .is_none());
    assert!(blob_location(&none, &Url::parse("https://fhir.example/e/f").unwrap()).is_none());
    // with an account configured, only that account's URLs
    let mine = AzureStorage {
        account: Some("mine".into()),
        ..AzureStorage::default()
    };
    assert!(blob_location(&mine, &u).is_none());
    let u2 = Url::parse("https://mine.blob.core.windows.net/exp/a.ndjson").unwrap();
    assert!(blob_location(&mine, &u2).is_some());
    let azurite = AzureStorage {
        endpoint: Some("http://127.0.0.1:10123/devstoreaccount1/".into()),
        ..AzureStorage::default()
    };
    let u = Url::parse("http://127.0.0.1:10123/devstoreaccount1/c/j/Obs-1.ndjson").unwrap();
    let (a, c, p) = blob_location(&azurite, &u).unwrap();
    assert_eq!((a, c.as_str(), p.as_ref()), (None, "c", "j/Obs-1.ndjson"));
    let other_port = Url::parse("http://127.0.0.1:9/devstoreaccount1/c/j/x").unwrap();
    assert!(blob_location(&azurite, &other_port).is_none());
}

#[test]
fn retry_after_is_seconds_within_bounds() {
    let mut h = header::HeaderMap::new();
    assert_eq!(retry_after(&h), 2);
    h.insert(header::RETRY_AFTER, "0".parse().unwrap());
    assert_eq!(retry_after(&h), 1);
    h.insert(header::RETRY_AFTER, "3600".parse().unwrap());
    assert_eq!(retry_after(&h), 60);
    h.insert(header::RETRY_AFTER, "7".parse().unwrap());
    assert_eq!(retry_after(&h), 7);
}
