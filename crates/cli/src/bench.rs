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
    #[arg(required_unless_present = "pairs")]
    pub source: Option<PathBuf>,
    /// Time liveness with verify instead: one `verify` per pair of this pairs CSV
    /// (`a,b,...`: the selfie judged, both faces embedded), and the embedding alone per face.
    #[arg(long, value_name = "CSV", conflicts_with = "source")]
    pub pairs: Option<PathBuf>,
    /// Images judged at once.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Passes over the set: the first is reported alone, the others pooled as steady state.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Include the edge images (default: live and spoof only, like the reference peer).
    #[arg(long)]
    pub all: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub paths: dataset::SetPaths,
}

#[derive(Debug, Serialize)]
struct BenchResult {
    /// `first_pass` (every image seen for the first time) or `steady_state` (later passes).
    pass: &'static str,
    images: usize,
    threads: usize,
    passes: usize,
    wall_s: f64,
    images_per_s: f64,
    p50_ms: f64,
    p95_ms: f64,
    mean_ms: f64,
    max_ms: f64,
    peak_rss_mb: Option<f64>,
    /// Whether JPEG decoding runs libjpeg-turbo's SIMD code (a build without nasm does not).
    jpeg_simd: bool,
}

pub fn run(args: &PipelineArgs, a: BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        a.threads >= 1 && a.repeat >= 1,
        "--threads and --repeat must be >= 1"
    );
    let pipeline = crate::load_pipeline(args)?;
    let e = pipeline.engines();
    let engines = format!("{}+{}", e.detector, e.judges);
    if let Some(pairs) = &a.pairs {
        return bench_pairs(&pipeline, pairs, &a, &engines);
    }
    let source = a.source.clone().context("give the set to time")?;
    let items: Vec<_> = dataset::load(&source, a.paths)?
        .into_iter()
        .filter(|i| a.all || i.judged())
        .collect();
    let images: Vec<Vec<u8>> = items
        .iter()
        .map(|i| std::fs::read(&i.path).with_context(|| format!("reading {}", i.path.display())))
        .collect::<anyhow::Result<_>>()?;
    anyhow::ensure!(!images.is_empty(), "no live or spoof images in the set");
    let opts = CheckOptions::default();
    // As the server does before it is ready: lazy set-up is not charged to the first image.
    pipeline.warm_up()?;
    // The first pass sees every image for the first time; later passes are steady state.
    let check = |i: usize| {
        let _ = pipeline.check(&images[i], &opts);
    };
    let n = images.len();
    let first = measure(n, a.threads, 1, check);
    let mut results = vec![summary("first_pass", n, a.threads, 1, first)];
    if a.repeat > 1 {
        let steady = measure(n, a.threads, a.repeat - 1, check);
        results.push(summary("steady_state", n, a.threads, a.repeat - 1, steady));
    }
    print_results(&results, &engines, a.json)?;
    Ok(ExitCode::SUCCESS)
}

/// `bench --pairs`: per-verify latency over the pairs, then the embedding's own cost per
/// face (alignment and the embedder's run) on each reference's largest face.
fn bench_pairs(
    pipeline: &facelive_pipeline::Pipeline,
    pairs: &std::path::Path,
    a: &BenchArgs,
    engines: &str,
) -> anyhow::Result<ExitCode> {
    use facelive_pipeline::{MatchRule, Reference};
    let (root, rows) = crate::pairs::read_pairs(pairs, a.paths)?;
    let read = |p: &str| std::fs::read(root.join(p)).with_context(|| format!("reading {p}"));
    let images: Vec<(Vec<u8>, Vec<u8>)> = rows
        .iter()
        .map(|r| Ok((read(&r.a)?, read(&r.b)?)))
        .collect::<anyhow::Result<_>>()?;
    pipeline.warm_up()?;
    let opts = CheckOptions::default();
    let verify = |i: usize| {
        let (s, r) = &images[i];
        let _ = pipeline.verify(s, Reference::Image(r), &opts, MatchRule::default());
    };
    let n = images.len();
    let mut results = vec![summary(
        "first_pass",
        n,
        a.threads,
        1,
        measure(n, a.threads, 1, verify),
    )];
    if a.repeat > 1 {
        let steady = measure(n, a.threads, a.repeat - 1, verify);
        results.push(summary("steady_state", n, a.threads, a.repeat - 1, steady));
    }
    print_results(&results, engines, a.json)?;
    let (selfie_ms, reference_ms) = per_image(pipeline, &root, &rows)?;
    println!(
        "each image once: as the selfie (judged and embedded) {selfie_ms:.1} ms, as the reference \
         (checked and embedded) {reference_ms:.1} ms: one verify {:.1} ms",
        selfie_ms + reference_ms
    );
    // Each reference once: an embedding's cost does not depend on how many pairs share it.
    let mut seen = std::collections::HashSet::new();
    let references = rows
        .iter()
        .zip(&images)
        .filter(|(row, _)| seen.insert(row.b.as_str()))
        .map(|(_, (_, r))| r.as_slice());
    let (faces, ms) = embed_cost(pipeline, references)?;
    println!("embedding alone (alignment + embedder run): {ms:.2} ms a face, mean of {faces} faces x 5 runs");
    Ok(ExitCode::SUCCESS)
}

/// Mean times over the distinct images of the pairs, each once: judged and embedded as a
/// selfie (the `a` column), and checked and embedded as a reference (`b`), as the peers
/// are timed (every image once, whatever the number of pairs it is in).
fn per_image(
    pipeline: &facelive_pipeline::Pipeline,
    root: &std::path::Path,
    rows: &[crate::pairs::PairRow],
) -> anyhow::Result<(f64, f64)> {
    let distinct = |f: fn(&crate::pairs::PairRow) -> &String| {
        let mut v: Vec<&String> = rows.iter().map(f).collect();
        v.sort();
        v.dedup();
        v.into_iter()
            .map(|p| std::fs::read(root.join(p)).with_context(|| format!("reading {p}")))
            .collect::<anyhow::Result<Vec<Vec<u8>>>>()
    };
    let opts = CheckOptions::default();
    let time = |images: &[Vec<u8>], run: &dyn Fn(&[u8])| {
        let t = Instant::now();
        images.iter().for_each(|b| run(b));
        t.elapsed().as_secs_f64() * 1e3 / images.len().max(1) as f64
    };
    let selfie = time(&distinct(|r| &r.a)?, &|b| {
        let _ = pipeline.judge_and_embed(b, &opts);
    });
    let reference = time(&distinct(|r| &r.b)?, &|b| {
        let _ = pipeline.reference_embedding(b, None);
    });
    Ok((selfie, reference))
}

/// The mean time of `Embedder::embed` (align and run) on each image's largest face.
fn embed_cost<'a>(
    pipeline: &facelive_pipeline::Pipeline,
    images: impl Iterator<Item = &'a [u8]>,
) -> anyhow::Result<(usize, f64)> {
    let embedder = pipeline.embedder()?;
    let (mut faces, mut total) = (0usize, 0f64);
    for bytes in images {
        let (face, _) = pipeline.reference_embedding(bytes, None)?;
        let Some(landmarks) = face.face.and_then(|f| f.landmarks) else {
            continue;
        };
        let ing = facelive_pipeline::ingest::ingest(bytes, &pipeline.config().ingest)?;
        let (img, (sx, sy)) = ing.for_judges();
        let l = landmarks.scaled(sx, sy);
        for _ in 0..5 {
            let t = Instant::now();
            embedder.embed(img, &l)?;
            total += t.elapsed().as_secs_f64() * 1e3;
        }
        faces += 1;
    }
    Ok((faces, total / (5 * faces.max(1)) as f64))
}

fn print_results(results: &[BenchResult], engines: &str, json: bool) -> anyhow::Result<()> {
    for r in results {
        if json {
            println!("{}", serde_json::to_string(r)?);
        } else {
            println!(
                "{} engines={} images={} threads={} passes={} wall={:.2}s images/s={:.1} per-image p50={:.1}ms p95={:.1}ms mean={:.1}ms max={:.1}ms peak_rss={} jpeg_simd={}",
                r.pass,
                engines,
                r.images,
                r.threads,
                r.passes,
                r.wall_s,
                r.images_per_s,
                r.p50_ms,
                r.p95_ms,
                r.mean_ms,
                r.max_ms,
                r.peak_rss_mb.map(|m| format!("{m:.0}MB")).unwrap_or_else(|| "n/a".into()),
                r.jpeg_simd
            );
        }
    }
    Ok(())
}

/// Wall time and per-item latencies (ms) of `passes` passes over `n` items, `threads` at
/// once.
fn measure(n: usize, threads: usize, passes: usize, run: impl Fn(usize) + Sync) -> (f64, Vec<f64>) {
    let jobs = n * passes;
    let next = AtomicUsize::new(0);
    let t0 = Instant::now();
    let mut lat: Vec<f64> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let j = next.fetch_add(1, Ordering::Relaxed);
                        if j >= jobs {
                            break mine;
                        }
                        let t = Instant::now();
                        run(j % n);
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
    lat.sort_by(f64::total_cmp);
    (t0.elapsed().as_secs_f64(), lat)
}

fn summary(
    pass: &'static str,
    items: usize,
    threads: usize,
    passes: usize,
    (wall, lat): (f64, Vec<f64>),
) -> BenchResult {
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    BenchResult {
        pass,
        images: items,
        threads,
        passes,
        wall_s: wall,
        images_per_s: lat.len() as f64 / wall,
        p50_ms: pct(0.5),
        p95_ms: pct(0.95),
        mean_ms: lat.iter().sum::<f64>() / lat.len() as f64,
        max_ms: *lat.last().unwrap_or(&0.0),
        peak_rss_mb: peak_rss_mb(),
        jpeg_simd: facelive_pipeline::ingest::jpeg_simd(),
    }
}

/// Peak resident set size of this process (Linux), in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
