//! Go-style durations, as Kubernetes users write them (`30s`, `5m`, `1h30m`, `250ms`,
//! `1.5s`; a bare `0`). One parser for render's validation and every reader of the
//! sidecar's environment, so that what `asya validate` accepts is what the sidecar reads.

use std::time::Duration;

/// Parses a Go duration. Units: `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`; every number needs
/// one, except a bare `0`. No sign (a negative duration is never meaningful here).
pub fn parse(raw: &str) -> Result<Duration, String> {
    let s = raw.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("expected a duration like 30s, 5m, 1h30m, got an empty value".into());
    }
    let bad = || format!("expected a duration like 30s, 5m, 1h30m, got {raw:?}");
    let mut nanos: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..num_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(bad());
        }
        let value: f64 = number.parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => {
                return Err(format!(
                    "expected a unit (ms, s, m, h) after {number} in {raw:?}"
                ));
            }
            u => {
                return Err(format!(
                    "expected a unit (ns, us, ms, s, m, h) in {raw:?}, got {u:?}"
                ));
            }
        };
        rest = &rest[unit_len..];
        nanos += value * scale;
    }
    if !nanos.is_finite() || nanos > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

/// Go-style text for `d` in one unit, the largest that divides it exactly: `5m`, `90s`,
/// `2h`, `250ms`, `1.5s`, `0s`. [`parse`] reads it back to the same duration.
pub fn format(d: Duration) -> String {
    let total = d.as_nanos();
    if total == 0 {
        return "0s".into();
    }
    for (unit, n) in [
        ("h", 3_600_000_000_000u128),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ] {
        if total.is_multiple_of(n) {
            return format!("{}{unit}", total / n);
        }
    }
    // Not a whole number of microseconds: decimal seconds, to the nanosecond.
    let sec = 1_000_000_000u128;
    let frac = format!("{:09}", total % sec);
    format!("{}.{}s", total / sec, frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_like_go() {
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        for bad in ["5", "5 minutes", "", "-1s", "1.2.3s", ".s", "1x", "s"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn formats_shortest() {
        assert_eq!(format(Duration::from_secs(300)), "5m");
        assert_eq!(format(Duration::from_secs(5400)), "90m");
        assert_eq!(format(Duration::from_secs(90)), "90s");
        assert_eq!(format(Duration::from_secs(7200)), "2h");
        assert_eq!(format(Duration::from_secs(25)), "25s");
        assert_eq!(format(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format(Duration::from_nanos(1_500_000_001)), "1.500000001s");
        assert_eq!(format(Duration::from_millis(250)), "250ms");
        assert_eq!(format(Duration::ZERO), "0s");
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(nanos in 0u64..10_000_000_000_000u64) {
            let d = Duration::from_nanos(nanos);
            prop_assert_eq!(parse(&format(d)), Ok(d));
        }
    }
}
