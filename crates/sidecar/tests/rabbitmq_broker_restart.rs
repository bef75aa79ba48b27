//! Zero loss across a RabbitMQ restart (`rabbitmqctl stop_app`/`start_app`).
//! nextest runs this test alone (threads-required = all, .config/nextest.toml):
//! every other test talking to the broker would see the outage.

mod common;

use common::scenarios::{self, Fault};
use common::{Broker, servers_available};

const B: Broker = Broker::RabbitMq;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_loss_across_a_broker_restart() {
    if servers_available(B) {
        scenarios::zero_loss(B, Fault::RestartBroker, 2000).await;
    }
}
