//! The decision audit trail: one JSON line per judged request, so that an operator can show
//! how each decision was made without keeping the selfie. A line holds what was decided and
//! by what (outcome, score, threshold, operating point, pack, quality checks, face box,
//! timings) and who asked (a short hash of the key, or the session's id); never image
//! bytes, keys, tokens or URLs, which the record has no field for.
//!
//! Lines go through a bounded queue to one writer thread: a slow or failing disk never
//! slows or fails a request; what cannot be written is counted in
//! `facelive_audit_failures_total` and logged (at most one warning per interval, with the
//! counts since the last). At shutdown the queue is drained under a deadline and what is
//! left is counted and logged: no line is lost uncounted. While the last write failed,
//! `/ready` says so (503, `audit failing`): a replica that cannot keep its trail takes no
//! new traffic, the others do. The file is rotated by size (`PATH.1` is the newest old
//! file), since a line a decision grows without end.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use facelive_pipeline::{BBox, OperatingPoint, QualityCheck, Timings, Verdict};
use serde::Serialize;

/// Where the trail goes and how large it may grow.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// A file, or `-` for standard output; `None`: no trail.
    pub path: Option<PathBuf>,
    /// A file is rotated before it would pass this size.
    pub max_bytes: u64,
    /// Rotated files kept (`PATH.1` .. `PATH.N`).
    pub keep: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            path: None,
            max_bytes: 100_000_000,
            keep: 5,
        }
    }
}

/// Lines waiting for the writer; beyond, new ones are dropped and counted.
const QUEUE: usize = 4096;

/// The most rotated files kept: a rotation renames each, and a rotation that takes long
/// fills the queue (keep 100000 dropped 2,249 of 5,257 lines on a fast disk).
pub const MAX_KEEP: usize = 1000;

/// How often the trail's troubles may be logged.
const TROUBLE_INTERVAL: Duration = Duration::from_secs(10);

/// Who made a request, as the trail names it.
#[derive(Debug, Clone)]
pub(crate) enum Who {
    /// A dialect's API key: named by a short hash of its value, never the value.
    Key(crate::auth::ApiKey),
    /// A capture session token: named by its id (the token's public part).
    Session(String),
}

/// One line of the trail.
#[derive(Serialize)]
struct Record<'a> {
    time: String,
    request_id: &'a str,
    dialect: &'a str,
    key_id: &'a str,
    /// The liveness decision; absent for a compare, which judges no liveness.
    #[serde(flatten)]
    liveness: Option<Liveness<'a>>,
    /// Liveness with verify, or a compare: the match's outcome and similarity (never an
    /// embedding).
    #[serde(skip_serializing_if = "Option::is_none")]
    verify: Option<Match>,
}

/// What a liveness decision was and what made it.
#[derive(Serialize)]
struct Liveness<'a> {
    outcome: &'static str,
    retry_reason: Option<facelive_pipeline::RetryReason>,
    live_score: Option<f32>,
    threshold: f32,
    operating_point: Option<OperatingPoint>,
    pack: Pack<'a>,
    quality: &'a [QualityCheck],
    face_box: Option<&'a BBox>,
    timings: &'a Timings,
}

impl<'a> Liveness<'a> {
    fn of(v: &'a Verdict) -> Self {
        Self {
            outcome: v.outcome.as_str(),
            retry_reason: v.retry_reason,
            live_score: v.live_score,
            threshold: v.threshold,
            operating_point: v.operating_point,
            pack: Pack {
                name: &v.model_pack.name,
                version: &v.model_pack.version,
                sha256: &v.model_pack.sha256,
            },
            quality: &v.quality,
            face_box: v.face.as_ref().map(|f| &f.bbox),
            timings: &v.timings,
        }
    }
}

/// A verify's match, as the trail keeps it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Match {
    pub outcome: &'static str,
    pub similarity: Option<f32>,
    pub match_threshold: f32,
}

#[derive(Serialize)]
struct Pack<'a> {
    name: &'a str,
    version: &'a str,
    sha256: &'a str,
}

/// The writer's end of the trail.
pub struct Audit {
    tx: SyncSender<String>,
    state: Arc<State>,
}

/// What the request side and the writer share.
#[derive(Default)]
struct State {
    /// Lines queued, and lines the writer has finished with (written or failed).
    queued: AtomicU64,
    done: AtomicU64,
    /// The last write failed (cleared by the next that succeeds).
    failing: AtomicBool,
    trouble: Trouble,
}

/// The trail's failures since the last warning, logged at most once per interval.
#[derive(Default)]
struct Trouble(Mutex<(Option<Instant>, BTreeMap<&'static str, u64>)>);

impl Trouble {
    fn note(&self, reason: &'static str, detail: Option<&io::Error>) {
        metrics::counter!("facelive_audit_failures_total", "reason" => reason).increment(1);
        let mut w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *w.1.entry(reason).or_insert(0) += 1;
        if w.0.is_some_and(|t| t.elapsed() < TROUBLE_INTERVAL) {
            return;
        }
        w.0 = Some(Instant::now());
        let counts = std::mem::take(&mut w.1);
        let error = detail.map(|e| e.to_string());
        tracing::warn!(by_reason = ?counts, error, "audit lines not written since the last warning");
    }
}

impl Audit {
    /// Opens the trail (so that a path it cannot write fails at start, not at a request)
    /// and starts its writer; `None` without a path.
    pub fn start(cfg: &AuditConfig) -> io::Result<Option<Self>> {
        let Some(path) = &cfg.path else {
            return Ok(None);
        };
        let sink = match path.as_os_str() == "-" {
            true => Sink::Stdout,
            false => Sink::File(Rotating::open(path, cfg.max_bytes, cfg.keep)?),
        };
        let (tx, rx) = sync_channel(QUEUE);
        let state = Arc::new(State::default());
        let writer = state.clone();
        std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || write_all(rx, sink, &writer))?;
        Ok(Some(Self { tx, state }))
    }

    /// Whether the last line written failed.
    pub fn failing(&self) -> bool {
        self.state.failing.load(Ordering::SeqCst)
    }

    /// Waits up to `deadline` for the writer to finish the queued lines; those left are
    /// counted (`reason="shutdown"`), logged, and returned.
    pub async fn drain(&self, deadline: Duration) -> u64 {
        let until = Instant::now() + deadline;
        let left = || {
            let s = &self.state;
            s.queued.load(Ordering::SeqCst) - s.done.load(Ordering::SeqCst)
        };
        while left() > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let left = left();
        if left > 0 {
            metrics::counter!("facelive_audit_failures_total", "reason" => "shutdown")
                .increment(left);
            tracing::error!(
                lines = left,
                seconds = deadline.as_secs_f32(),
                "audit lines still queued at the shutdown deadline were not written"
            );
        }
        left
    }

    /// Queues the line of one judged request; never blocks.
    pub(crate) fn record(
        &self,
        request_id: &str,
        dialect: &str,
        key_id: &str,
        v: Option<&Verdict>,
        verify: Option<Match>,
    ) {
        let record = Record {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            request_id,
            dialect,
            key_id,
            liveness: v.map(Liveness::of),
            verify,
        };
        let trouble = &self.state.trouble;
        let line = match serde_json::to_string(&record) {
            Ok(l) => l,
            Err(_) => return trouble.note("encode", None),
        };
        // Counted before it is sent, so that the writer never finishes more than queued.
        self.state.queued.fetch_add(1, Ordering::SeqCst);
        let refused = match self.tx.try_send(line) {
            Ok(()) => return,
            Err(TrySendError::Full(_)) => "queue_full",
            Err(TrySendError::Disconnected(_)) => "writer_gone",
        };
        self.state.queued.fetch_sub(1, Ordering::SeqCst);
        trouble.note(refused, None);
    }
}

enum Sink {
    Stdout,
    File(Rotating),
}

fn write_all(rx: Receiver<String>, mut sink: Sink, state: &State) {
    for mut line in rx {
        line.push('\n');
        let written = match &mut sink {
            // One write of the whole line: a line is never interleaved or split by us.
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(line.as_bytes()).and_then(|()| out.flush())
            }
            Sink::File(f) => f.write_line(&line, &state.trouble),
        };
        state.failing.store(written.is_err(), Ordering::SeqCst);
        if let Err(e) = written {
            state.trouble.note("write", Some(&e));
        }
        state.done.fetch_add(1, Ordering::SeqCst);
    }
}

/// A file rotated by size: before a line would take it past `max_bytes`, `PATH.k` becomes
/// `PATH.k+1` (the oldest beyond `keep` is removed) and `PATH` becomes `PATH.1`.
struct Rotating {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    keep: usize,
}

impl Rotating {
    fn open(path: &Path, max_bytes: u64, keep: usize) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            size,
            max_bytes,
            keep,
        })
    }

    fn numbered(&self, k: usize) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{k}"));
        p.into()
    }

    /// Shifts the old files up (only those that exist) and starts a new `PATH`.
    fn rotate(&mut self) -> io::Result<()> {
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let _ = std::fs::remove_file(self.numbered(self.keep));
            for k in (1..self.keep).rev() {
                let from = self.numbered(k);
                if from.exists() {
                    std::fs::rename(from, self.numbered(k + 1))?;
                }
            }
            std::fs::rename(&self.path, self.numbered(1))?;
        }
        *self = Self::open(&self.path, self.max_bytes, self.keep)?;
        Ok(())
    }

    /// Appends one line (newline included) in one write. A rotation that fails is logged
    /// and the line goes to the current file (past its size rather than lost); a write cut
    /// short (a full disk) is truncated back to the last whole line, so that the next line
    /// is never glued onto half of this one.
    fn write_line(&mut self, line: &str, trouble: &Trouble) -> io::Result<()> {
        let n = line.len() as u64;
        if self.size > 0 && self.size + n > self.max_bytes {
            if let Err(e) = self.rotate() {
                trouble.note("rotate", Some(&e));
            }
        }
        if let Err(e) = self.file.write_all(line.as_bytes()) {
            let _ = self.file.set_len(self.size);
            return Err(e);
        }
        self.size += n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_rotates_by_size_and_keeps_so_many() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut r = Rotating::open(&path, 100, 2).unwrap();
        for i in 0..10 {
            r.write_line(&format!("{i:039}\n"), &Trouble::default())
                .unwrap(); // 40 bytes a line
        }
        // 10 lines of 40 bytes, 2 a file: the last two files' worth kept besides the live one.
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(&path).lines().count(), 2);
        assert!(read(&path).starts_with(&format!("{:039}", 8)));
        assert!(read(&r.numbered(1)).starts_with(&format!("{:039}", 6)));
        assert!(read(&r.numbered(2)).starts_with(&format!("{:039}", 4)));
        assert!(!r.numbered(3).exists());
    }

    /// Rotation renames only the files that exist: with keep at its bound, a rotation is a
    /// few renames, not a thousand, and no line is lost.
    #[test]
    fn rotation_renames_only_what_exists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut r = Rotating::open(&path, 100, MAX_KEEP).unwrap();
        for i in 0..10 {
            r.write_line(&format!("{i:039}\n"), &Trouble::default())
                .unwrap();
        }
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 5, "audit.jsonl and 4 rotated files");
        let lines: usize = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| {
                std::fs::read_to_string(e.unwrap().path())
                    .unwrap()
                    .lines()
                    .count()
            })
            .sum();
        assert_eq!(lines, 10);
    }

    /// A rotation target that cannot be written: the lines stay in the current file
    /// (past its size) and the failure is counted, instead of being dropped unseen.
    #[test]
    fn a_rotation_that_fails_keeps_the_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut r = Rotating::open(&path, 100, 1).unwrap();
        // PATH.1 a folder with a file in it: neither removed nor replaced by a rename.
        std::fs::create_dir(r.numbered(1)).unwrap();
        std::fs::write(r.numbered(1).join("x"), "").unwrap();
        for i in 0..10 {
            r.write_line(&format!("{i:039}\n"), &Trouble::default())
                .unwrap();
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 10);
    }

    /// A full disk cuts a line short: the file is truncated back to the last whole line,
    /// and once there is room again the next line starts on a line of its own.
    #[test]
    fn a_write_cut_short_by_a_full_disk_leaves_only_whole_lines() {
        // Three pages: one for the filler, two for the trail (27 lines of 300 bytes and
        // 92 bytes of the 28th).
        facelive_testdata::on_small_disk(3 * 4096, |disk| {
            let path = disk.join("audit.jsonl");
            let filler = disk.join("filler");
            let mut r = Rotating::open(&path, u64::MAX, 1).unwrap();
            let line = format!("{{\"n\":\"{}\"}}\n", "x".repeat(291)); // 300 bytes
            assert_eq!(line.len(), 300);
            std::fs::write(&filler, vec![0u8; 4096]).unwrap();
            let written = (0..100)
                .take_while(|_| r.write_line(&line, &Trouble::default()).is_ok())
                .count();
            assert_eq!(written, 27, "the disk filled where expected");
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(text.len(), written * line.len(), "only whole lines");
            std::fs::remove_file(&filler).unwrap();
            r.write_line(&line, &Trouble::default()).unwrap();
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.lines().all(|l| l.len() == line.len() - 1), "{text}");
            assert_eq!(text.lines().count(), written + 1);
        });
    }
}
