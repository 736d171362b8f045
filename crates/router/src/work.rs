//! Decode and inference run off the async runtime, on at most `workers` blocking threads.
//! At most `queue` more requests may wait; the rest are refused at once with 503 and
//! Retry-After, so overload never turns into unbounded memory or latency.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::error::ApiError;

#[derive(Clone)]
pub struct Workers {
    admit: Arc<Semaphore>,
    run: Arc<Semaphore>,
}

impl Workers {
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        Self {
            admit: Arc::new(Semaphore::new(workers + queue)),
            run: Arc::new(Semaphore::new(workers)),
        }
    }

    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let admitted = self
            .admit
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::Busy)?;
        let running = self
            .run
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::Internal("worker pool closed".into()))?;
        // The permits move into the task: if the client goes away, the work still counts
        // against capacity until it really ends.
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop(running);
            drop(admitted);
            out
        })
        .await
        .map_err(|e| ApiError::Internal(format!("worker failed: {e}")))
    }

    /// Requests admitted (running or waiting) right now.
    pub fn in_flight(&self, capacity: usize) -> usize {
        capacity - self.admit.available_permits()
    }
}
