//! The deadline sweep: tasks whose pipeline deadline (`status.deadline_at` = created +
//! the tool's timeout) passed `grace` ago without a final report are failed, so that no
//! task stays `running` forever when x-sink's report was lost (the gateway was down
//! longer than the reporter's retries) or the pipeline stalled.
//!
//! Contract: runs until the process ends; a store error is logged and the next round
//! tries again. A late final report after the sweep is answered `applied: false`.

use std::sync::Arc;
use std::time::Duration;

use crate::service::Gateway;

/// Sweeps every `every`, failing tasks overdue by more than `grace`.
pub async fn run(gw: Arc<Gateway>, grace: Duration, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = gw.fail_overdue(grace).await {
            tracing::warn!(error = %e, "deadline sweep failed; retrying at the next round");
        }
    }
}
