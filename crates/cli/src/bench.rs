//! `facelive bench`: per-image latency and throughput of the whole pipeline (decode to
//! verdict) on a labelled set, files read into memory first so disk speed is not measured.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use facelive_pipeline::CheckOptions;
use serde::Serialize;

use crate::config::PipelineArgs;
use crate::dataset;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A manifest CSV or a folder with live/ and spoof/.
    pub source: PathBuf,
    /// Images judged at once.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Passes over the set (latencies of all passes are pooled).
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Include the edge images (default: live and spoof only, like the reference peer).
    #[arg(long)]
    pub all: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct BenchResult {
    images: usize,
    threads: usize,
    repeat: usize,
    wall_s: f64,
    images_per_s: f64,
    p50_ms: f64,
    p95_ms: f64,
    mean_ms: f64,
    max_ms: f64,
    peak_rss_mb: Option<f64>,
}

pub fn run(args: &PipelineArgs, a: BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        a.threads >= 1 && a.repeat >= 1,
        "--threads and --repeat must be >= 1"
    );
    let pipeline = crate::load_pipeline(args)?;
    let items: Vec<_> = dataset::load(&a.source)?
        .into_iter()
        .filter(|i| a.all || i.label == "live" || i.label == "spoof")
        .collect();
    let images: Vec<Vec<u8>> = items
        .iter()
        .map(|i| std::fs::read(&i.path).with_context(|| format!("reading {}", i.path.display())))
        .collect::<anyhow::Result<_>>()?;
    let opts = CheckOptions::default();
    // One untimed call so lazy allocations are not charged to the first image.
    if let Some(first) = images.first() {
        let _ = pipeline.check(first, &opts);
    }
    let jobs = images.len() * a.repeat;
    let next = AtomicUsize::new(0);
    let t0 = Instant::now();
    let mut lat: Vec<f64> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..a.threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let j = next.fetch_add(1, Ordering::Relaxed);
                        if j >= jobs {
                            break mine;
                        }
                        let t = Instant::now();
                        let _ = pipeline.check(&images[j % images.len()], &opts);
                        mine.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("bench worker panicked"))
            .collect()
    });
    let wall = t0.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let r = BenchResult {
        images: images.len(),
        threads: a.threads,
        repeat: a.repeat,
        wall_s: wall,
        images_per_s: jobs as f64 / wall,
        p50_ms: pct(0.5),
        p95_ms: pct(0.95),
        mean_ms: lat.iter().sum::<f64>() / lat.len() as f64,
        max_ms: *lat.last().unwrap_or(&0.0),
        peak_rss_mb: peak_rss_mb(),
    };
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "images={} threads={} repeat={} wall={:.2}s images/s={:.1} per-image p50={:.1}ms p95={:.1}ms mean={:.1}ms max={:.1}ms peak_rss={}",
            r.images,
            r.threads,
            r.repeat,
            r.wall_s,
            r.images_per_s,
            r.p50_ms,
            r.p95_ms,
            r.mean_ms,
            r.max_ms,
            r.peak_rss_mb.map(|m| format!("{m:.0}MB")).unwrap_or_else(|| "n/a".into())
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Peak resident set size of this process (Linux), in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
