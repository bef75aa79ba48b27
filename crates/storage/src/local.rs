//! The local-directory backend (`asya dev`): object keys become relative file
//! paths under one directory. Keys are built by [`crate::key`], which escapes
//! ids, so a key never climbs out of the directory.
//!
//! Blocking `std::fs` calls: envelopes are small and a local run writes a
//! handful of them; tokio is not a dependency of this crate.

use std::path::Path;

use crate::StorageError;

pub(crate) fn put(dir: &Path, key: &str, body: &[u8]) -> Result<(), StorageError> {
    let err = |reason: String| StorageError::Put {
        bucket: dir.display().to_string(),
        key: key.to_string(),
        reason,
    };
    let path = dir.join(key);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| err(format!("creating {}: {e}", parent.display())))?;
    }
    // Written beside, then renamed: a reader never sees half an envelope.
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, body).map_err(|e| err(format!("writing {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, &path).map_err(|e| err(format!("renaming to {}: {e}", path.display())))
}

pub(crate) fn get(dir: &Path, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
    match std::fs::read(dir.join(key)) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::Get {
            bucket: dir.display().to_string(),
            key: key.to_string(),
            reason: e.to_string(),
        }),
    }
}

/// Every key under `prefix` (a key prefix, as in S3), sorted.
pub(crate) fn list(dir: &Path, prefix: &str) -> Result<Vec<String>, StorageError> {
    let mut keys = Vec::new();
    walk(dir, dir, &mut keys).map_err(|e| StorageError::List {
        bucket: dir.display().to_string(),
        prefix: prefix.to_string(),
        reason: e.to_string(),
    })?;
    keys.retain(|k| k.starts_with(prefix) && !k.ends_with(".tmp"));
    keys.sort();
    Ok(keys)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            walk(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::EnvelopeStore;

    #[tokio::test]
    async fn local_store_uses_the_bucket_key_layout() {
        let dir = std::env::temp_dir().join(format!(
            "asya-storage-local-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        let store = EnvelopeStore::local(&dir, "").unwrap();
        let key = store
            .put(crate::KIND_FAILED, "a/../b", b"{\"id\":1}")
            .await
            .unwrap();
        assert_eq!(key, "failed/a%2F%2E%2E%2Fb.json");
        assert!(dir.join("failed/a%2F%2E%2E%2Fb.json").is_file());
        assert_eq!(store.list("failed/").await.unwrap(), vec![key.clone()]);
        assert_eq!(
            store.get(&key).await.unwrap().as_deref(),
            Some(&b"{\"id\":1}"[..])
        );
        assert_eq!(store.get("failed/none.json").await.unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
