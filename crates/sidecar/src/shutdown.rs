//! A shutdown signal shared by every task (SIGTERM/SIGINT flip it once).

use std::sync::Arc;

use tokio::sync::watch;

/// Cheap to clone; `wait` resolves once `trigger` has been called.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        let (tx, rx) = watch::channel(false);
        Self {
            tx: Arc::new(tx),
            rx,
        }
    }
}

impl Shutdown {
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        // An error means the sender is gone, which only happens at exit.
        let _ = rx.wait_for(|v| *v).await;
    }
}
