//! Decode and inference run off the async runtime, on `workers` threads of their own.
//! A request is admitted once its image is in hand (body read, URL downloaded): at most
//! `workers + queue` are admitted at once and the rest are refused at once with 503 and
//! Retry-After, so overload turns into neither unbounded latency nor a queue that slow
//! uploads can fill (bodies are read under a minimum rate, see `input::rate_guarded`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

#[derive(Clone)]
pub struct Workers {
    admit: Arc<Semaphore>,
    run: Arc<Semaphore>,
    /// The threads that decode and judge. A fixed set, not tokio's blocking pool: that pool
    /// hands each task to another idle thread in turn, so every request met cold caches and
    /// allocator state (a 640x480 image's detection took 30-70 ms instead of 20).
    pool: Arc<rayon::ThreadPool>,
    /// Pixels being decoded at once, server-wide.
    pixels: Arc<Semaphore>,
    pixel_budget: u32,
}

impl Workers {
    pub fn new(workers: usize, queue: usize, pixel_budget: u64) -> Self {
        let workers = workers.max(1);
        let pixel_budget = pixel_budget.clamp(1, u32::MAX as u64) as u32;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .thread_name(|i| format!("facelive-worker-{i}"))
            .build()
            .expect("the operating system refused to start the worker threads");
        Self {
            admit: Arc::new(Semaphore::new(workers + queue)),
            run: Arc::new(Semaphore::new(workers)),
            pool: Arc::new(pool),
            pixels: Arc::new(Semaphore::new(pixel_budget as usize)),
            pixel_budget,
        }
    }

    /// Waits until `pixels` fit the decode budget and holds them (an image over the whole
    /// budget waits for all of it and is decoded alone).
    pub async fn reserve_pixels(&self, pixels: u64) -> Result<OwnedSemaphorePermit, ApiError> {
        let n = pixels.min(self.pixel_budget as u64) as u32;
        self.pixels
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(|_| ApiError::Internal("decode budget closed".into()))
    }

    /// A place among the admitted requests, held for the request's life.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.admit
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::Busy)
    }

    /// Runs `f` on a worker thread once one of the `workers` is free.
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
        let (done, answer) = oneshot::channel();
        self.pool.spawn(move || {
            let out = catch_unwind(AssertUnwindSafe(f));
            drop(running);
            let _ = done.send(out);
        });
        match answer.await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(_)) => Err(ApiError::Internal("worker failed: it panicked".into())),
            Err(_) => Err(ApiError::Internal("worker failed: no answer".into())),
        }
    }

    /// Requests admitted (running or waiting) right now.
    pub fn in_flight(&self, capacity: usize) -> usize {
        capacity - self.admit.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn images_over_the_remaining_budget_wait_for_it() {
        let w = Workers::new(2, 0, 100);
        let first = w.reserve_pixels(80).await.unwrap();
        let mut second = Box::pin(w.reserve_pixels(80));
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), &mut second)
                .await
                .is_err(),
            "80 + 80 pixels must not be decoded at once within a budget of 100"
        );
        drop(first);
        let second = second.await.unwrap();
        // An image over the whole budget waits for all of it, then goes alone.
        let mut huge = Box::pin(w.reserve_pixels(10_000));
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), &mut huge)
                .await
                .is_err()
        );
        drop(second);
        let _alone = huge.await.unwrap();
    }
}
