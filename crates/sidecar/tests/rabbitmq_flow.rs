//! Routing, fan-out, resiliency and x-sump paths on RabbitMQ.

mod common;

use common::{Broker, scenarios, servers_available};

const B: Broker = Broker::RabbitMq;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_actor_pipeline_delivers_transformed_payloads_to_sink() {
    if servers_available(B) {
        scenarios::pipeline(B).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generator_fans_out_children_with_distinct_ids_and_parent_id() {
    if servers_available(B) {
        scenarios::fan_out(B).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_twice_then_succeeding_waits_the_exponential_delays() {
    if servers_available(B) {
        scenarios::retries_wait_then_succeed(B).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_go_to_sink_as_failed_and_then_to_sump() {
    if servers_available(B) {
        scenarios::exhausted_retries_go_to_sink_as_failed(B).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_action_skips_retries() {
    if servers_available(B) {
        scenarios::fail_action_skips_retries(B).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_exhausted_shifts_the_route_to_the_fallback_actor() {
    if servers_available(B) {
        scenarios::on_exhausted_shifts_the_route_to_the_fallback(B).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unparseable_message_goes_to_sump_with_its_raw_body() {
    if servers_available(B) {
        scenarios::unparseable_message_goes_to_sump(B).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_mismatch_goes_to_sump() {
    if servers_available(B) {
        scenarios::route_mismatch_goes_to_sump(B).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actor_timeout_abandons_the_call_and_sends_to_sump() {
    if servers_available(B) {
        scenarios::actor_timeout_sends_to_sump(B).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_and_metrics_are_served_with_the_documented_names() {
    if servers_available(B) {
        scenarios::probes_and_metrics_are_served(B).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_request_is_refused_by_the_sidecar_in_one_attempt() {
    if servers_available(B) {
        scenarios::oversize_request_is_refused_by_the_sidecar(B).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_deadline_ends_at_x_sink() {
    if servers_available(B) {
        scenarios::pipeline_deadline_ends_at_x_sink(B).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_crash_is_counted_once_per_runtime_life() {
    if servers_available(B) {
        scenarios::a_runtime_crash_is_counted_once_per_life(B).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_never_blames_the_next_message_with_a_fake_runtime() {
    if servers_available(B) {
        scenarios::a_timeout_never_blames_the_next_message(B, true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_without_a_valid_route_goes_to_sump() {
    if servers_available(B) {
        scenarios::a_frame_without_a_valid_route_goes_to_sump(B).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_never_blames_the_next_message_with_the_real_runtime() {
    if servers_available(B) {
        scenarios::a_timeout_never_blames_the_next_message(B, false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sump_log_lines_carry_the_original_and_the_new_id() {
    if servers_available(B) {
        scenarios::sump_log_lines_carry_both_ids(B).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_route_envelopes_are_converted_and_finish() {
    if servers_available(B) {
        scenarios::legacy_routes_finish_the_pipeline(B).await;
    }
}
