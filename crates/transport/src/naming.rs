//! Queue names. Every transport uses `asya-<namespace>-<actor>`.

/// The queue of `actor` in `namespace`.
pub fn queue_name(namespace: &str, actor: &str) -> String {
    format!("asya-{namespace}-{actor}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_name_is_prefixed_by_namespace() {
        assert_eq!(queue_name("prod", "x-sink"), "asya-prod-x-sink");
    }
}
