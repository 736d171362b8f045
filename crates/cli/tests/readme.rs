//! README's HTTP examples, run as written (from the workspace root) against `facelive serve`
//! started with README's own command; only the port is swapped for a free one.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The ```sh blocks of README.md, in order.
fn sh_blocks() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut cur: Option<String> = None;
    for line in readme.lines() {
        match (&mut cur, line.trim_start()) {
            (None, l) if l.starts_with("```sh") => cur = Some(String::new()),
            (Some(_), l) if l.starts_with("```") => blocks.push(cur.take().unwrap()),
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

use facelive_testdata::server::Killed;

#[test]
fn readme_curl_examples_work_against_the_readme_server_command() {
    let blocks = sh_blocks();
    let serve = blocks
        .iter()
        .find(|b| b.contains("facelive serve"))
        .expect("README shows how to start the server");
    let examples = blocks
        .iter()
        .find(|b| b.contains("curl"))
        .expect("README shows curl examples");
    let img = std::fs::read_to_string(root().join("README.md"))
        .unwrap()
        .split("`IMG=")
        .nth(1)
        .and_then(|s| s.split('`').next())
        .expect("README names the example image")
        .to_string();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let here = format!("127.0.0.1:{port}");
    let bin = env!("CARGO_BIN_EXE_facelive");
    // `exec`, so the server replaces the shell and is the process killed at the end.
    let script = serve
        .replace("./target/release/facelive", &format!("exec {bin}"))
        .replace("127.0.0.1:8080", &here);
    let _server = Killed(
        Command::new("bash")
            .arg("-c")
            .arg(format!("{script}\n"))
            .current_dir(root())
            .env_remove("FACELIVE_MODELS_DIR")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t0 = Instant::now();
    loop {
        let ready = Command::new("curl")
            .args(["-s", &format!("http://{here}/ready")])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("\"ready\""))
            .unwrap_or(false);
        if ready {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the README server never became ready"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let commands: Vec<&str> = examples
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect();
    assert_eq!(
        commands.len(),
        7,
        "one example per dialect, liveness with verify and NHN's compare"
    );
    let mut seen = Vec::new();
    for cmd in commands {
        let line = cmd.replace("127.0.0.1:8080", &here);
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("IMG={img}\n{line}"))
            .current_dir(root())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let j: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {cmd}\n{text}"));
        let ok = j["outcome"] == "live"
            || (j["outcome"] == "verified" && j["liveness"]["outcome"] == "live")
            || j["header"]["isSuccessful"] == true
            || j["liveness_status"] == "live"
            || (j["status"] == "ok" && j["live"] == true)
            || j["model_output"]["pred_idx"] == "real";
        assert!(ok, "{cmd}\n{j}");
        seen.push(text.to_string());
    }
    assert!(
        seen[1].contains("faceDetails"),
        "the NHN example answers in NHN's shape"
    );
    assert!(
        seen[6].contains("\"matchedFaceDetailCount\":1"),
        "the compare example matches the same person: {}",
        seen[6]
    );
}
