//! Queue names. Every transport uses `asya-<namespace>-<actor>`.

/// The queue of `actor` in `namespace` (the contract's naming, shared with render).
pub use asya_contract::queue_name;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_name_is_prefixed_by_namespace() {
        assert_eq!(queue_name("prod", "x-sink"), "asya-prod-x-sink");
    }
}
