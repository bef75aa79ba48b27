//! Fault injection on RabbitMQ: kill -9 of sidecar and runtime, SIGTERM.
//! Runs in the `rabbitmq-faults` nextest group (.config/nextest.toml).

mod common;

use common::scenarios::{self, Fault};
use common::{Broker, servers_available};

const B: Broker = Broker::RabbitMq;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_loss_when_the_sidecar_is_killed_twice() {
    if servers_available(B) {
        scenarios::zero_loss(B, Fault::KillSidecar, 2000).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_loss_when_the_runtime_is_killed_twice() {
    if servers_available(B) {
        scenarios::zero_loss(B, Fault::KillRuntime, 2000).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_slow_handler_completes_and_acks() {
    if servers_available(B) {
        scenarios::sigterm_finishes_in_flight_work(B).await;
    }
}
