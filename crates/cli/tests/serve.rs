//! `facelive serve` configuration: file, environment and flags, and the refusal to run
//! without authentication unless asked.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use facelive_testdata::models_dir;
use serde_json::Value;

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(url: &str) -> Option<String> {
    let out = Command::new("curl").args(["-s", "-f", url]).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn wait_ready(base: &str) {
    let t0 = Instant::now();
    while get(&format!("{base}/ready")).is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "server at {base} never became ready"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn serve_refuses_to_start_without_keys_unless_told_to() {
    let out = Command::new(env!("CARGO_BIN_EXE_facelive"))
        .env("FACELIVE_MODELS_DIR", models_dir())
        .env_remove("FACELIVE_API_KEY")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--no-auth"), "{err}");
}

#[test]
fn serve_reads_its_settings_from_the_file_and_the_environment_beats_it() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("facelive.toml");
    std::fs::write(
        &cfg,
        format!(
            "models_dir = {:?}\n[thresholds]\nweak = 0.2\nbalanced = 0.4\nstrict = 0.9\n\
             [serve]\nlisten = \"127.0.0.1:{port}\"\nno_auth = true\nqueue = 7\nworkers = 1\n",
            models_dir().display().to_string()
        ),
    )
    .unwrap();
    let _server = Killed(
        Command::new(env!("CARGO_BIN_EXE_facelive"))
            .env_remove("FACELIVE_MODELS_DIR")
            .env("FACELIVE_CONFIG", &cfg)
            .env("FACELIVE_QUEUE", "3")
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base);
    let info: Value = serde_json::from_str(&get(&format!("{base}/info")).unwrap()).unwrap();
    assert_eq!(info["authentication"], false, "no_auth from the file");
    assert_eq!(info["workers"], 1, "workers from the file");
    assert_eq!(info["queue"], 3, "the environment beats the file");
    assert_eq!(
        info["thresholds"]["balanced"], 0.4,
        "thresholds from the file"
    );
}
