//! `facelive models verify | pull`: pull is tested for real against an HTTP server on
//! 127.0.0.1 serving ../shared/models (the upstream URLs are unreachable here), including a
//! corrupted file and a connection dropped half-way.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use facelive_testdata::models_dir;

const PACK: [&str; 4] = [
    "yunet_2023mar.onnx",
    "minifasnet_v2_80x80_s2.7.onnx",
    "minifasnet_v1se_80x80_s4.0.onnx",
    "mobilefacenet.onnx",
];

fn facelive(models: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_facelive"));
    c.env("FACELIVE_MODELS_DIR", models)
        .env_remove("FACELIVE_MODELS_MIRROR");
    c
}

/// Serves `{mode}/{file}` from `root`: `good` as is, `bad` with one byte flipped, `drop`
/// announcing the full length and closing after half the body.
fn serve(root: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            reader.read_line(&mut line).unwrap();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let mut parts = path.trim_start_matches('/').splitn(2, '/');
            let (mode, file) = (parts.next().unwrap(), parts.next().unwrap_or(""));
            let Ok(mut body) = std::fs::read(root.join(file)) else {
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
                continue;
            };
            let len = body.len();
            match mode {
                "bad" => body[len / 2] ^= 0xFF,
                "drop" => body.truncate(len / 2),
                _ => {}
            }
            let head =
                format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{addr}")
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn verify_accepts_the_shared_models() {
    let out = facelive(&models_dir())
        .args(["models", "verify"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn verify_reports_missing_and_corrupt_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(models_dir().join(PACK[1])).unwrap();
    bytes[1000] ^= 1;
    std::fs::write(dir.path().join(PACK[1]), bytes).unwrap();
    let out = facelive(dir.path())
        .args(["models", "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.contains("yunet_2023mar") && s.contains("missing"), "{s}");
    assert!(s.contains("minifasnet_v2") && s.contains("corrupt"), "{s}");
}

#[test]
fn pull_downloads_verifies_and_installs_the_pack() {
    let base = serve(models_dir());
    let dir = tempfile::tempdir().unwrap();
    let out = facelive(dir.path())
        .args(["models", "pull", "--mirror", &format!("{base}/good")])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{s}");
    assert_eq!(names_in(dir.path()), {
        let mut v: Vec<String> = PACK.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    });
    for f in PACK {
        assert_eq!(
            std::fs::read(dir.path().join(f)).unwrap(),
            std::fs::read(models_dir().join(f)).unwrap()
        );
    }
    // A second pull finds everything in place and downloads nothing.
    let again = facelive(dir.path())
        .args([
            "models",
            "pull",
            "--mirror",
            "http://127.0.0.1:9/unreachable",
        ])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stdout).contains("already present"));
}

/// Pulls `model` from the test server in `mode`; the pull must fail, say why, and leave the
/// models folder empty (no half file under the real name, no temporary file either).
fn pull_fails_cleanly(mode: &str, model: &str) -> String {
    let base = serve(models_dir());
    let dir = tempfile::tempdir().unwrap();
    let out = facelive(dir.path())
        .args([
            "models",
            "pull",
            model,
            "--mirror",
            &format!("{base}/{mode}"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let s = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(s.contains("FAILED"), "{s}");
    assert!(
        names_in(dir.path()).is_empty(),
        "left behind: {:?}",
        names_in(dir.path())
    );
    s
}

#[test]
fn pull_refuses_a_file_with_the_wrong_hash_and_leaves_nothing_behind() {
    let s = pull_fails_cleanly("bad", "yunet_2023mar");
    assert!(s.contains("sha256"), "{s}");
}

#[test]
fn pull_survives_a_dropped_connection_and_leaves_nothing_behind() {
    let s = pull_fails_cleanly("drop", "minifasnet_v2");
    assert!(s.contains("end of file before message length"), "{s}");
}

#[test]
fn pull_of_an_unknown_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = facelive(dir.path())
        .args(["models", "pull", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no model named"));
}
