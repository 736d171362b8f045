//! Decode and inference run off the async runtime, on at most `workers` blocking threads.
//! A request is admitted once its image is in hand (body read, URL downloaded): at most
//! `workers + queue` are admitted at once and the rest are refused at once with 503 and
//! Retry-After, so overload turns into neither unbounded latency nor a queue that slow
//! uploads can fill (bodies are read under a minimum rate, see `input::rate_guarded`).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

    /// A place among the admitted requests, held for the request's life.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.admit
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::Busy)
    }

    /// Runs `f` on a blocking thread once one of the `workers` is free.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let running = self
            .run
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::Internal("worker pool closed".into()))?;
        // The permit moves into the task: if the client goes away, the work still counts
        // against the workers until it really ends.
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop(running);
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
