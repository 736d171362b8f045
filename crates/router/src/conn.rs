//! What each open connection is doing, so that idle ones can be closed: a connection that
//! sends no request within the header timeout of being accepted, or none within the idle
//! timeout of its last answer, is closed; HTTP/2 pings do not count as a request. When the
//! connection limit is reached, the connection idle the longest is closed to make room
//! rather than the new one refused.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// A connection without a request this long after it was accepted counts as silent: a
/// client that means to send one has sent its headers well before.
const SILENT_AFTER: Duration = Duration::from_secs(1);

/// One connection's requests in flight and when it was last busy.
pub(crate) struct Activity {
    epoch: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `epoch` when the last request finished; `u64::MAX` before any.
    last_done_ms: AtomicU64,
    close: Notify,
}

/// Held while a request is served; dropping it marks the connection busy until now.
pub(crate) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let ms = self.0.epoch.elapsed().as_millis() as u64;
        self.0.last_done_ms.store(ms, Ordering::SeqCst);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_done_ms: AtomicU64::new(u64::MAX),
            close: Notify::new(),
        })
    }

    pub(crate) fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    /// Open for [`SILENT_AFTER`] without ever carrying a request: what a client that
    /// means to send one does not do.
    fn silent(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0
            && self.last_done_ms.load(Ordering::SeqCst) == u64::MAX
            && self.epoch.elapsed() >= SILENT_AFTER
    }

    /// When it fell idle, or `None` while a request is in flight.
    fn idle_since(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        match self.last_done_ms.load(Ordering::SeqCst) {
            u64::MAX => Some(self.epoch),
            ms => Some(self.epoch + Duration::from_millis(ms)),
        }
    }

    /// Resolves when the connection has been idle too long (no request within `first` of
    /// being accepted, or within `idle` of its last answer), or is asked to make room.
    pub(crate) async fn expired(&self, first: Duration, idle: Duration) {
        loop {
            let limit = match self.last_done_ms.load(Ordering::SeqCst) {
                u64::MAX => first,
                _ => idle,
            };
            let wake = match self.idle_since() {
                Some(since) if since + limit <= Instant::now() => return,
                Some(since) => since + limit,
                // Busy: look again after a while (the request's own deadlines bound it).
                None => Instant::now() + limit,
            };
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = self.close.notified() => return,
            }
        }
    }
}

/// Every open connection's activity, to find the one idle the longest.
#[derive(Default)]
pub(crate) struct Registry {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Activity>>>,
}

/// A connection's place in the registry; leaving removes it.
pub(crate) struct Entry {
    registry: Arc<Registry>,
    id: u64,
    pub(crate) activity: Arc<Activity>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        // A panic while holding the lock leaves the map consistent: keep using it.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn enter(self: &Arc<Self>) -> Entry {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let activity = Activity::new();
        self.lock().insert(id, activity.clone());
        Entry {
            registry: self.clone(),
            id,
            activity,
        }
    }

    /// Asks an idle connection to close (and forgets it, so that it is not chosen twice):
    /// a silent one first (no request in its first second), the one open the longest among
    /// them, then the one idle the longest of the others. Silent connections opened in
    /// bulk thus make room among themselves before a client's reused keep-alive connection
    /// is closed under it. False when every one is busy.
    pub(crate) fn evict_oldest_idle(&self) -> bool {
        let mut open = self.lock();
        let oldest = open
            .iter()
            .filter_map(|(id, a)| a.idle_since().map(|t| ((!a.silent(), t), *id)))
            .min_by_key(|(key, _)| *key);
        match oldest.and_then(|(_, id)| open.remove(&id)) {
            Some(a) => {
                a.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Serves `conn` until it ends or `activity` expires; then it is dropped, which closes it.
pub(crate) async fn until_idle<F: Future>(
    conn: F,
    activity: &Activity,
    first: Duration,
    idle: Duration,
) {
    tokio::select! {
        _ = conn => {}
        _ = activity.expired(first, idle) => {
            metrics::counter!("facelive_connections_idle_closed_total").increment(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_a_request_expires_after_the_first_deadline() {
        let a = Activity::new();
        let t0 = Instant::now();
        a.expired(Duration::from_secs(10), Duration::from_secs(60))
            .await;
        assert_eq!(t0.elapsed().as_secs(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_connection_does_not_expire_and_idles_from_its_last_answer() {
        let a = Activity::new();
        let busy = a.begin();
        let t0 = Instant::now();
        let watch = {
            let a = a.clone();
            tokio::spawn(async move {
                a.expired(Duration::from_secs(10), Duration::from_secs(30))
                    .await;
            })
        };
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert!(
            !watch.is_finished(),
            "expired while a request was in flight"
        );
        drop(busy);
        watch.await.unwrap();
        assert_eq!(t0.elapsed().as_secs(), 100 + 30);
    }

    #[tokio::test(start_paused = true)]
    async fn the_oldest_idle_connection_is_asked_to_close() {
        let r = Arc::new(Registry::default());
        let old = r.enter();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let young = r.enter();
        let busy = r.enter();
        let _b = busy.activity.begin();
        assert!(r.evict_oldest_idle());
        let first = Duration::from_secs(1000);
        tokio::time::timeout(Duration::from_millis(1), old.activity.expired(first, first))
            .await
            .expect("the oldest idle one closes at once");
        let young_closed = tokio::time::timeout(
            Duration::from_millis(1),
            young.activity.expired(first, first),
        )
        .await;
        assert!(young_closed.is_err(), "only the oldest is asked");
        drop((old, young));
        assert!(!r.evict_oldest_idle(), "a busy connection is never evicted");
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_goes_before_a_keep_alive_one_idle_longer() {
        // (A connection just accepted is not silent yet: it goes by its idle time.)
        let r = Arc::new(Registry::default());
        let used = r.enter();
        drop(used.activity.begin());
        tokio::time::sleep(Duration::from_secs(5)).await;
        let silent = r.enter();
        tokio::time::sleep(SILENT_AFTER).await;
        assert!(r.evict_oldest_idle());
        let first = Duration::from_secs(1000);
        let closes = |e: &Entry| {
            let a = e.activity.clone();
            async move {
                tokio::time::timeout(Duration::from_millis(1), a.expired(first, first))
                    .await
                    .is_ok()
            }
        };
        assert!(closes(&silent).await, "the silent one is asked to close");
        assert!(!closes(&used).await, "the keep-alive one stays");
        assert!(r.evict_oldest_idle(), "then the keep-alive one may go");
        assert!(closes(&used).await);
    }
}
