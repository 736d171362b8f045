//! Test-only access to the material beside the project (`../shared`): the dev images, their
//! manifest, the reference pipeline's scores and the models.
//!
//! Nothing here skips: a missing folder is a failed test with a message saying how to point
//! at it (`FACELIVE_SHARED`, `FACELIVE_MODELS_DIR`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The workspace root: relative paths in `FACELIVE_*` variables are taken from here, as
/// they are written in README and `.ci/run` (tests run in their crate's folder).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var).map(|v| workspace_root().join(v))
}

/// `../shared` from the workspace root, or `FACELIVE_SHARED`.
pub fn shared_dir() -> PathBuf {
    let dir = env_path("FACELIVE_SHARED").unwrap_or_else(|| workspace_root().join("../shared"));
    assert!(
        dir.join("data/dev/manifest.csv").is_file(),
        "the shared test material is not at {} (set FACELIVE_SHARED)",
        dir.display()
    );
    dir
}

pub fn dev_dir() -> PathBuf {
    shared_dir().join("data/dev")
}

/// `FACELIVE_MODELS_DIR`, else `../shared/models`.
pub fn models_dir() -> PathBuf {
    let dir = env_path("FACELIVE_MODELS_DIR").unwrap_or_else(|| shared_dir().join("models"));
    assert!(
        dir.join("yunet_2023mar.onnx").is_file(),
        "no models at {} (set FACELIVE_MODELS_DIR)",
        dir.display()
    );
    dir
}

pub fn read(rel: &str) -> Vec<u8> {
    let p = dev_dir().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

#[derive(Debug, Clone, Deserialize)]
pub struct ManifestRow {
    pub file: String,
    pub label: String,
    pub attack_type: String,
    pub capture: String,
    pub notes: String,
}

pub fn manifest() -> Vec<ManifestRow> {
    let mut r = csv::Reader::from_path(dev_dir().join("manifest.csv")).expect("manifest.csv");
    r.deserialize()
        .map(|row| row.expect("manifest row"))
        .collect()
}

/// One row of `reference_scores.csv`: what the Python reference pipeline gave.
#[derive(Debug, Clone, Deserialize)]
pub struct Reference {
    pub file: String,
    pub label: String,
    pub attack_type: String,
    pub status: String,
    pub live_score: Option<f32>,
    pub det_score: Option<f32>,
    pub x: Option<f32>,
    pub y: Option<f32>,
    pub w: Option<f32>,
    pub h: Option<f32>,
    pub minifasnet_v2_live: Option<f32>,
    pub minifasnet_v1se_live: Option<f32>,
}

impl Reference {
    /// The reference box (x, y, w, h) in original pixels, when a face was found.
    pub fn bbox(&self) -> Option<[f32; 4]> {
        Some([self.x?, self.y?, self.w?, self.h?])
    }
}

pub fn reference_scores() -> Vec<Reference> {
    let mut r = csv::Reader::from_path(dev_dir().join("reference_scores.csv"))
        .expect("reference_scores.csv");
    r.deserialize()
        .map(|row| row.expect("reference row"))
        .collect()
}

/// Live and spoof rows the reference scored (status `ok`): the agreement set.
pub fn agreement_set() -> Vec<Reference> {
    reference_scores()
        .into_iter()
        .filter(|r| r.status == "ok" && (r.label == "live" || r.label == "spoof"))
        .collect()
}

/// ONNX Runtime's library for the `ort` engine's tests: `ORT_DYLIB_PATH`, else the one
/// `scripts/onnxruntime.sh` puts under `target/` (run here if it is not there yet: it
/// downloads the `onnxruntime` wheel from PyPI once).
pub fn ort_library() -> PathBuf {
    if let Some(p) = env_path("ORT_DYLIB_PATH") {
        assert!(p.is_file(), "ORT_DYLIB_PATH={} is not a file", p.display());
        return p;
    }
    static LIB: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    LIB.get_or_init(|| {
        let script = workspace_root().join("scripts/onnxruntime.sh");
        let out = std::process::Command::new(&script)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed (set ORT_DYLIB_PATH to libonnxruntime.so): {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
    .clone()
}

/// The capture domain for adaptation (`../shared/data/domain`): 400 labelled face crops of
/// five projects, `source_repo` naming each one's group.
pub fn domain_dir() -> PathBuf {
    let dir = shared_dir().join("data/domain");
    assert!(
        dir.join("manifest.csv").is_file(),
        "the domain set is not at {}",
        dir.display()
    );
    dir
}

/// The face-verification set (`../shared/data/verify`): 105 images of 14 people and
/// `pairs.csv` (genuine, impostor and attack pairs, paths relative to the folder).
pub fn verify_dir() -> PathBuf {
    let dir = shared_dir().join("data/verify");
    assert!(
        dir.join("pairs.csv").is_file(),
        "the verify set is not at {}",
        dir.display()
    );
    dir
}

/// One row of `data/verify/pairs.csv`: `a` is the selfie, `b` the reference.
#[derive(Debug, Clone, Deserialize)]
pub struct Pair {
    pub a: String,
    pub b: String,
    pub same_person: u8,
    pub kind: String,
}

pub fn verify_pairs() -> Vec<Pair> {
    let path = verify_dir().join("pairs.csv");
    csv::Reader::from_path(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .deserialize()
        .map(|r| r.expect("a well-formed pairs.csv row"))
        .collect()
}

/// The reference peers' Python (OpenCV, onnxruntime), made by `scripts/refpeer-venv.sh` on
/// first use (it installs them from PyPI once, under `target/`).
pub fn refpeer_python() -> PathBuf {
    static PY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PY.get_or_init(|| {
        let script = workspace_root().join("scripts/refpeer-venv.sh");
        let out = std::process::Command::new(&script)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
    .clone()
}

/// The workspace root, for tests that run its scripts.
pub fn workspace() -> PathBuf {
    workspace_root()
}

/// The real server in tests: a child process killed when dropped, a free port, readiness.
pub mod server {
    use std::net::TcpListener;
    use std::process::{Child, Command};
    use std::time::{Duration, Instant};

    /// A child process (a `facelive serve`) killed and reaped when dropped.
    pub struct Killed(pub Child);

    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// A port on 127.0.0.1 that nothing listened on a moment ago.
    pub fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// The body of a successful GET (curl), or `None`.
    pub fn get(url: &str) -> Option<String> {
        let out = Command::new("curl").args(["-s", "-f", url]).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Waits (up to a minute) until `{base}/ready` answers 200.
    pub fn wait_ready(base: &str) {
        let t0 = Instant::now();
        while get(&format!("{base}/ready")).is_none() {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "server at {base} never became ready"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Runs `f` on a thread of its own inside a new network namespace whose only interface is
/// loopback (threads and processes it starts inherit the namespace). Every test that makes
/// facelive connect to a URL it was given runs here: a guard that failed could then reach
/// nothing off the machine. Needs root (CAP_SYS_ADMIN), as CI has.
pub fn loopback_only<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let inside = std::thread::spawn(move || {
        // SAFETY: unshare with CLONE_NEWNET moves only the calling thread to a new network
        // namespace; it touches no memory.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET): {} (URL tests run as root, as CI does)",
            std::io::Error::last_os_error()
        );
        let up = std::process::Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("ip (iproute2) brings loopback up");
        assert!(up.success(), "ip link set lo up: {up}");
        let links = std::process::Command::new("ip")
            .args(["-o", "link", "show"])
            .output()
            .expect("ip link show");
        let links = String::from_utf8_lossy(&links.stdout).to_string();
        assert_eq!(links.lines().count(), 1, "only loopback: {links}");
        f()
    });
    match inside.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Runs `f` on a thread of its own inside a new mount namespace, with `f`'s argument a
/// fresh tmpfs of `bytes` (rounded up to pages): a disk that fills up, for the tests of
/// what facelive does when writes fail part-way. Needs root, as CI has.
pub fn on_small_disk<T: Send + 'static>(
    bytes: usize,
    f: impl FnOnce(&Path) -> T + Send + 'static,
) -> T {
    let inside = std::thread::spawn(move || {
        // SAFETY: unshare with CLONE_NEWNS gives the calling thread its own mount table
        // (and its own filesystem attributes); it touches no memory.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNS) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNS): {}",
            std::io::Error::last_os_error()
        );
        let run = |args: &[&str]| {
            let ok = std::process::Command::new(args[0])
                .args(&args[1..])
                .status();
            assert!(ok.is_ok_and(|s| s.success()), "{args:?}");
        };
        // Mounts made here must not reach the host's table.
        run(&["mount", "--make-rprivate", "/"]);
        let dir = std::env::temp_dir().join(format!("facelive-small-disk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dir_s = dir.to_str().unwrap().to_string();
        run(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            &format!("size={bytes}"),
            "tmpfs",
            &dir_s,
        ]);
        let out = f(&dir);
        run(&["umount", &dir_s]);
        let _ = std::fs::remove_dir(&dir);
        out
    });
    match inside.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
