//! Delays longer than one SQS hop.
//!
//! SQS caps `DelaySeconds` at 900 s, but a retry policy may ask for an hour.
//! Such a message is published with the longest hop and a message attribute
//! holding its absolute due time (Unix milliseconds). When the consumer
//! receives it early, the transport publishes it again with the remaining
//! delay (again capped) and deletes the early copy; the caller never sees it.
//! Delays are rounded up to whole seconds, so a message never arrives before
//! its due time (up to clock skew between the pods of one actor).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::config::ceil_secs;

/// Message attribute carrying the absolute due time of a chained delay.
pub const DUE_AT_ATTRIBUTE: &str = "asya-due-at-ms";

/// One publish: the `DelaySeconds` to use, and the due time to carry along
/// when the delay does not fit one hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    pub delay_seconds: i32,
    pub due_at_ms: Option<u64>,
}

/// What to do with a received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// It is due: hand it to the caller.
    Deliver,
    /// It came early: publish it again like this and delete this copy.
    Rehop(Hop),
}

/// Now, as Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Plans the first hop of a message to be delivered `delay` from `now_ms`.
pub fn plan(delay: Duration, cap: Duration, now_ms: u64) -> Hop {
    if delay <= cap {
        Hop {
            delay_seconds: ceil_secs(delay),
            due_at_ms: None,
        }
    } else {
        Hop {
            delay_seconds: ceil_secs(cap),
            due_at_ms: Some(now_ms.saturating_add(millis(delay))),
        }
    }
}

/// Decides about a message received at `now_ms` that carried `due_at_ms`.
pub fn on_arrival(due_at_ms: Option<u64>, cap: Duration, now_ms: u64) -> Arrival {
    match due_at_ms {
        Some(due) if due > now_ms => {
            let remaining = Duration::from_millis(due - now_ms);
            Arrival::Rehop(Hop {
                delay_seconds: ceil_secs(remaining.min(cap)),
                due_at_ms: Some(due),
            })
        }
        _ => Arrival::Deliver,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: Duration = Duration::from_secs(900);

    #[test]
    fn short_delays_fit_one_hop_rounded_up() {
        assert_eq!(
            plan(Duration::from_millis(1500), CAP, 0),
            Hop {
                delay_seconds: 2,
                due_at_ms: None
            }
        );
        assert_eq!(plan(CAP, CAP, 0).due_at_ms, None);
        assert_eq!(plan(Duration::ZERO, CAP, 0).delay_seconds, 0);
    }

    #[test]
    fn long_delays_take_the_longest_hop_and_carry_their_due_time() {
        let hop = plan(Duration::from_secs(3600), CAP, 1_000);
        assert_eq!(hop.delay_seconds, 900);
        assert_eq!(hop.due_at_ms, Some(1_000 + 3_600_000));
    }

    #[test]
    fn an_hour_takes_four_hops_and_never_arrives_early() {
        let start = 5_000;
        let mut hop = plan(Duration::from_secs(3600), CAP, start);
        let mut now = start;
        let mut hops = 1;
        loop {
            now += u64::try_from(hop.delay_seconds).unwrap() * 1000;
            match on_arrival(hop.due_at_ms, CAP, now) {
                Arrival::Deliver => break,
                Arrival::Rehop(next) => {
                    hop = next;
                    hops += 1;
                }
            }
        }
        assert_eq!(hops, 4);
        assert!(now >= start + 3_600_000);
    }

    #[test]
    fn early_by_a_fraction_rehops_for_at_least_that_fraction() {
        match on_arrival(Some(10_300), CAP, 10_000) {
            Arrival::Rehop(hop) => assert_eq!(hop.delay_seconds, 1),
            other => panic!("expected a rehop, got {other:?}"),
        }
    }

    #[test]
    fn due_or_plain_messages_are_delivered() {
        assert_eq!(on_arrival(None, CAP, 10), Arrival::Deliver);
        assert_eq!(on_arrival(Some(10), CAP, 10), Arrival::Deliver);
        assert_eq!(on_arrival(Some(5), CAP, 10), Arrival::Deliver);
    }
}
