//! Helpers both gateway test binaries use (`gateway.rs` in process, `features.rs` on the
//! binary): the broker they need, unique names, and reading the first actor's queue.

#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use asya_transport::Transport;
use asya_transport::rabbitmq::{RabbitMq, RabbitMqConfig};
use serde_json::Value;

/// `ASYA_TEST_RABBITMQ_URL`, or `None` after printing why the test is skipped.
pub fn rabbit_url() -> Option<String> {
    match std::env::var("ASYA_TEST_RABBITMQ_URL") {
        Ok(u) => Some(u),
        Err(_) => {
            eprintln!(
                "SKIPPED: ASYA_TEST_RABBITMQ_URL unset; run `eval \"$(bash tests/servers/up.sh)\"`"
            );
            None
        }
    }
}

/// `prefix` + process id + time: a namespace no other test run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

/// The next envelope on `t` (acked), within 10 s.
pub async fn receive(t: &RabbitMq) -> Value {
    let d = tokio::time::timeout(Duration::from_secs(10), t.receive())
        .await
        .expect("no envelope on the first actor's queue")
        .unwrap();
    t.ack(&d).await.unwrap();
    serde_json::from_slice(&d.body).unwrap()
}

/// Nothing reaches `t` within 0.8 s.
pub async fn nothing_arrives(t: &RabbitMq) {
    let got = tokio::time::timeout(Duration::from_millis(800), t.receive()).await;
    assert!(got.is_err(), "something was published: {got:?}");
}

/// A consumer of `actor`'s queue in `namespace` (declared now, so nothing published later
/// is lost).
pub async fn consumer(rabbit: &str, namespace: &str, actor: &str) -> RabbitMq {
    RabbitMq::consume(
        RabbitMqConfig::new(rabbit.to_string(), namespace.to_string()),
        actor,
    )
    .await
    .unwrap()
}

/// A new PostgreSQL database for one test, `gw<unix seconds>x…`, and the admin connection
/// that created it (to drop it afterwards). `None`, after printing why, when no server
/// answers at the default address and `ASYA_TEST_POSTGRES_URL` is unset.
pub struct PgDatabase {
    pub url: String,
    pub name: String,
    pub admin: sqlx::PgConnection,
}

pub async fn postgres_database() -> Option<PgDatabase> {
    use sqlx::Connection;
    let explicit = std::env::var("ASYA_TEST_POSTGRES_URL").ok();
    let admin_url = explicit
        .clone()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut admin = match sqlx::PgConnection::connect(&admin_url).await {
        Ok(c) => c,
        Err(e) if explicit.is_none() => {
            eprintln!("SKIPPED: no PostgreSQL at {admin_url} ({e}); set ASYA_TEST_POSTGRES_URL");
            return None;
        }
        Err(e) => panic!("PostgreSQL at {admin_url}: {e}"),
    };
    drop_stale_databases(&mut admin).await;
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // `gw<unix seconds>x…`: a later run can tell this database's age.
    let name = unique(&format!("gw{secs}x"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create database");
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(&admin_url);
    Some(PgDatabase {
        url: format!("{base}/{name}"),
        name,
        admin,
    })
}

/// Databases of earlier runs (`gw<unix seconds>x…`, older than an hour) are dropped, so
/// the test server does not fill up; one still in use refuses and is left alone.
async fn drop_stale_databases(conn: &mut sqlx::PgConnection) {
    use sqlx::Row;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let Ok(rows) = sqlx::query("SELECT datname FROM pg_database WHERE datname LIKE 'gw%'")
        .fetch_all(&mut *conn)
        .await
    else {
        return;
    };
    for row in rows {
        let Ok(name) = row.try_get::<String, _>("datname") else {
            continue;
        };
        let born = name
            .strip_prefix("gw")
            .and_then(|r| r.split('x').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        let safe = name.chars().all(|c| c.is_ascii_alphanumeric());
        if safe && now.saturating_sub(born) > 3600 {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name}"
            )))
            .execute(&mut *conn)
            .await;
        }
    }
}
