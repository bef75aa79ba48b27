//! The string formats Asya checks: Kubernetes names, Python handler paths, Go-style durations.

pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// An env var name as the API server accepts it: `[-._a-zA-Z][-._a-zA-Z0-9]*`.
pub fn is_env_name(s: &str) -> bool {
    let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
    !s.is_empty() && !s.as_bytes()[0].is_ascii_digit() && s.bytes().all(ok)
}

/// `module.function` or `module.Class.method` (modules may be dotted packages).
pub fn is_handler(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() >= 2
        && parts.iter().all(|p| {
            let mut c = p.chars();
            matches!(c.next(), Some(ch) if ch == '_' || ch.is_ascii_alphabetic())
                && c.all(|ch| ch == '_' || ch.is_ascii_alphanumeric())
        })
}

/// Parses a Go-style duration (`300ms`, `1.5s`, `2m`, `1h30m`) into seconds, with the
/// contract's parser: what validation accepts is exactly what the sidecar reads.
pub fn parse_duration(s: &str) -> Option<f64> {
    asya_contract::duration::parse(s)
        .ok()
        .map(|d| d.as_secs_f64())
}
