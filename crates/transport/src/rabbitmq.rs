//! RabbitMQ transport (lapin). Written in the sidecar work.
