//! The platform configuration as the controller uses it: the render crate's
//! `Platform` (read from `--platform FILE`), turned into queue drivers.

use std::path::Path;
use std::sync::Arc;

use asya_render::api::platform::{
    DeletionPolicy as PlatformDeletion, Platform, Provisioner, TransportSettings,
};

use crate::error::{Error, Result};
use crate::queue::{DeletionPolicy, LazyRabbitMq, QueueDrivers};

/// Reads and parses a platform file.
pub fn load(path: &Path) -> Result<Platform> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Platform {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    Platform::from_yaml(&path.display().to_string(), &text).map_err(|d| Error::Platform {
        path: path.display().to_string(),
        message: d.to_string(),
    })
}

/// One queue driver per enabled transport, when the controller provisions
/// queues (`queue.provisioner: controller`, the default). With another
/// provisioner the queues are objects in the render and no driver is made.
pub fn queue_drivers(platform: &Platform) -> QueueDrivers {
    let mut drivers = QueueDrivers::default();
    if platform.queue.provisioner != Provisioner::Controller {
        drivers.set_external(true);
        return drivers;
    }
    let policy = match platform.queue.deletion_policy {
        PlatformDeletion::Delete => DeletionPolicy::Delete,
        PlatformDeletion::Retain => DeletionPolicy::Retain,
    };
    for (name, transport) in &platform.transports {
        if !transport.enabled {
            continue;
        }
        match transport.kind() {
            "rabbitmq" => {
                drivers.insert(
                    name.clone(),
                    Arc::new(LazyRabbitMq::new(
                        rabbitmq_url(&transport.config),
                        platform.queue.naming,
                    )),
                    policy,
                );
            }
            "sqs" => {
                if let Some(driver) =
                    crate::queue::sqs_driver(&transport.config, platform.queue.naming)
                {
                    drivers.insert(name.clone(), driver, policy);
                }
            }
            other => {
                tracing::warn!(transport = %name, kind = %other, "no queue driver for this transport kind")
            }
        }
    }
    drivers
}

/// The AMQP URL the controller connects with: `config.url`, else built from
/// host/port/vhost/username and the password in `$ASYA_RABBITMQ_PASSWORD`
/// (the chart mounts the same Secret the sidecars use).
pub fn rabbitmq_url(c: &TransportSettings) -> String {
    if let Some(url) = &c.url {
        return url.clone();
    }
    let host = c.host.as_deref().unwrap_or("127.0.0.1");
    let port = c.port.unwrap_or(5672);
    let vhost = c.vhost.as_deref().unwrap_or("/").replace('/', "%2f");
    let user = c.username.as_deref().unwrap_or("guest");
    let password = std::env::var("ASYA_RABBITMQ_PASSWORD").unwrap_or_else(|_| "guest".into());
    format!("amqp://{user}:{password}@{host}:{port}/{vhost}")
}
