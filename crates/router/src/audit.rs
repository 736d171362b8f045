//! The decision audit trail: one JSON line per judged request, so that an operator can show
//! how each decision was made without keeping the selfie. A line holds what was decided and
//! by what (outcome, score, threshold, operating point, pack, quality checks, face box,
//! timings) and who asked (a short hash of the key, or the session's id); never image
//! bytes, keys, tokens or URLs, which the record has no field for.
//!
//! Lines go through a bounded queue to one writer thread: a slow or failing disk never
//! slows or fails a request; what cannot be written is counted in
//! `facelive_audit_failures_total`. The file is rotated by size (`PATH.1` is the newest
//! old file), since a line a decision grows without end.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::time::SystemTime;

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
    outcome: &'static str,
    retry_reason: Option<facelive_pipeline::RetryReason>,
    live_score: Option<f32>,
    threshold: f32,
    operating_point: Option<OperatingPoint>,
    pack: Pack<'a>,
    quality: &'a [QualityCheck],
    face_box: Option<&'a BBox>,
    timings: &'a Timings,
    /// Liveness with verify: the match's outcome and similarity (never an embedding).
    #[serde(skip_serializing_if = "Option::is_none")]
    verify: Option<Match>,
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
        std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || write_all(rx, sink))?;
        Ok(Some(Self { tx }))
    }

    /// Queues the line of one judged request; never blocks.
    pub(crate) fn record(
        &self,
        request_id: &str,
        dialect: &str,
        key_id: &str,
        v: &Verdict,
        verify: Option<Match>,
    ) {
        let record = Record {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            request_id,
            dialect,
            key_id,
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
            verify,
        };
        let line = match serde_json::to_string(&record) {
            Ok(l) => l,
            Err(_) => return failed("encode"),
        };
        match self.tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => failed("queue_full"),
            Err(TrySendError::Disconnected(_)) => failed("writer_gone"),
        }
    }
}

fn failed(reason: &'static str) {
    metrics::counter!("facelive_audit_failures_total", "reason" => reason).increment(1);
}

enum Sink {
    Stdout,
    File(Rotating),
}

fn write_all(rx: Receiver<String>, mut sink: Sink) {
    for line in rx {
        let written = match &mut sink {
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                writeln!(out, "{line}").and_then(|()| out.flush())
            }
            Sink::File(f) => f.write_line(&line),
        };
        if written.is_err() {
            failed("write");
        }
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

    fn rotate(&mut self) -> io::Result<()> {
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let _ = std::fs::remove_file(self.numbered(self.keep));
            for k in (1..self.keep).rev() {
                let _ = std::fs::rename(self.numbered(k), self.numbered(k + 1));
            }
            std::fs::rename(&self.path, self.numbered(1))?;
        }
        *self = Self::open(&self.path, self.max_bytes, self.keep)?;
        Ok(())
    }

    fn write_line(&mut self, line: &str) -> io::Result<()> {
        let n = line.len() as u64 + 1;
        if self.size > 0 && self.size + n > self.max_bytes {
            self.rotate()?;
        }
        writeln!(self.file, "{line}")?;
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
            r.write_line(&format!("{i:039}")).unwrap(); // 40 bytes a line
        }
        // 10 lines of 40 bytes, 2 a file: the last two files' worth kept besides the live one.
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(&path).lines().count(), 2);
        assert!(read(&path).starts_with(&format!("{:039}", 8)));
        assert!(read(&r.numbered(1)).starts_with(&format!("{:039}", 6)));
        assert!(read(&r.numbered(2)).starts_with(&format!("{:039}", 4)));
        assert!(!r.numbered(3).exists());
    }
}
