//! Object key layout: `{prefix}{kind}/{id}.json`.
//!
//! Ids come from envelopes, i.e. from users, so they are escaped before they
//! become part of a key: a key must never climb out of its kind's folder
//! (`/`, `..`) nor collide with another id's key. Bytes outside
//! `[A-Za-z0-9_-]` are written as `%XX` (upper-case hex), which keeps the
//! mapping one-to-one and leaves ordinary ids (UUIDs, `task-1_2`) untouched.

use crate::StorageError;

/// S3's limit on the length of an object key, in bytes.
const MAX_KEY_BYTES: usize = 1024;

/// Normalises a user-given prefix: no leading `/`, and a trailing `/` when not empty.
pub(crate) fn normalize_prefix(prefix: &str) -> Result<String, StorageError> {
    let trimmed = prefix.trim_start_matches('/');
    if trimmed.split('/').any(|segment| segment == "..") {
        return Err(StorageError::Config(format!(
            "prefix {prefix:?} must not contain a `..` segment"
        )));
    }
    if trimmed.is_empty() || trimmed.ends_with('/') {
        Ok(trimmed.to_string())
    } else {
        Ok(format!("{trimmed}/"))
    }
}

/// Escapes an id so it is a single, safe path segment.
pub fn sanitize_id(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Builds the key of envelope `id` of `kind` under `prefix` (already normalised).
pub(crate) fn object_key(prefix: &str, kind: &str, id: &str) -> Result<String, StorageError> {
    let kind_ok = !kind.is_empty()
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !kind_ok {
        return Err(StorageError::InvalidKey(format!(
            "kind {kind:?} must be a non-empty lower-case word such as \"succeeded\""
        )));
    }
    if id.is_empty() {
        return Err(StorageError::InvalidKey("envelope id is empty".into()));
    }
    let key = format!("{prefix}{kind}/{}.json", sanitize_id(id));
    if key.len() > MAX_KEY_BYTES {
        return Err(StorageError::InvalidKey(format!(
            "key for id of {} bytes exceeds S3's {MAX_KEY_BYTES}-byte limit",
            id.len()
        )));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_ids_are_kept_verbatim() {
        let id = "3f2a9c1e-7b4d-4e2f-9a1b-0c8d6e5f4a3b";
        assert_eq!(
            object_key("asya/", "succeeded", id).unwrap(),
            format!("asya/succeeded/{id}.json")
        );
    }

    #[test]
    fn slashes_and_dots_cannot_escape_the_kind_folder() {
        let key = object_key("p/", "failed", "../../etc/passwd").unwrap();
        assert_eq!(key, "p/failed/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd.json");
        assert!(!key.contains(".."));
        assert_eq!(key.matches('/').count(), 2);
    }

    #[test]
    fn distinct_ids_get_distinct_keys() {
        let a = object_key("", "sump", "a/b").unwrap();
        let b = object_key("", "sump", "a_b").unwrap();
        let c = object_key("", "sump", "a%2Fb").unwrap();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(b, c);
    }

    #[test]
    fn empty_id_and_odd_kind_are_rejected() {
        assert!(matches!(
            object_key("", "succeeded", ""),
            Err(StorageError::InvalidKey(_))
        ));
        assert!(matches!(
            object_key("", "../x", "id"),
            Err(StorageError::InvalidKey(_))
        ));
    }

    #[test]
    fn oversized_ids_are_rejected_not_truncated() {
        let id = "x".repeat(2000);
        assert!(matches!(
            object_key("", "succeeded", &id),
            Err(StorageError::InvalidKey(_))
        ));
    }

    #[test]
    fn prefix_gets_exactly_one_trailing_slash() {
        assert_eq!(normalize_prefix("").unwrap(), "");
        assert_eq!(normalize_prefix("asya").unwrap(), "asya/");
        assert_eq!(normalize_prefix("/asya/results/").unwrap(), "asya/results/");
        assert!(normalize_prefix("a/../b").is_err());
    }
}
