//! `facelive serve` configuration: file, environment and flags, and the refusal to run
//! without authentication unless asked.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use facelive_testdata::models_dir;
use facelive_testdata::server::{free_port, get, wait_ready, Killed};
use serde_json::Value;

/// The real server on a free port with `env`, its log going to a file; ready when returned.
fn logged_server(env: &[(&str, &str)]) -> (Killed, u16, tempfile::NamedTempFile) {
    let port = free_port();
    let log = tempfile::NamedTempFile::new().unwrap();
    let server = Killed(
        Command::new(env!("CARGO_BIN_EXE_facelive"))
            .env("FACELIVE_MODELS_DIR", models_dir())
            .envs(env.iter().copied())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap(),
    );
    wait_ready(&format!("http://127.0.0.1:{port}"));
    (server, port, log)
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
    let port = free_port();
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

#[test]
fn logs_carry_request_id_dialect_outcome_and_timing_but_never_image_bytes_or_keys() {
    let (mut server, port, log) = logged_server(&[
        ("FACELIVE_API_KEY", "very-secret-key"),
        ("FACELIVE_LOG", "debug"),
    ]);
    let base = format!("http://127.0.0.1:{port}");
    let img = facelive_testdata::dev_dir().join("live/nuaa_ClientRaw_0001_00_00_01_134.jpg");
    let out = Command::new("curl")
        .args([
            "-s",
            "-H",
            "Authorization: Bearer very-secret-key",
            "-H",
            "x-request-id: trace-me-42",
        ])
        .arg("-F")
        .arg(format!("image=@{}", img.display()))
        .arg(format!("{base}/v1/liveness"))
        .output()
        .unwrap();
    let resp: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(resp["request_id"], "trace-me-42");
    let _ = server.0.kill();
    let _ = server.0.wait();
    let text = std::fs::read_to_string(log.path()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("trace-me-42"))
        .unwrap_or_else(|| panic!("no log line with the request id:\n{text}"));
    for part in ["native", "live", "ms"] {
        assert!(line.contains(part), "{part} missing: {line}");
    }
    assert!(!text.contains("very-secret-key"), "the key was logged");
    // No run of the image's bytes, raw or base64, appears in the log.
    let bytes = std::fs::read(&img).unwrap();
    // 4095 is a multiple of 3, so this chunk lines up with the base64 of the whole file.
    let b64 = base64_chunk(&bytes[4095..4095 + 48]);
    assert!(!text.contains(&b64), "image data in the log");
    assert!(
        !text.as_bytes().windows(32).any(|w| w == &bytes[4096..4128]),
        "raw image bytes in the log"
    );
}

/// Standard base64 of a 48-byte slice (a whole number of 3-byte groups).
fn base64_chunk(b: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    b.chunks(3)
        .flat_map(|c| {
            let n = (c[0] as u32) << 16 | (c[1] as u32) << 8 | c[2] as u32;
            [18, 12, 6, 0].map(|s| A[(n >> s & 63) as usize] as char)
        })
        .collect()
}

/// A flood of unauthenticated requests is not logged request by request: one summary with
/// the count, once the interval has passed, and the log stays small.
#[test]
fn an_unauthenticated_flood_is_logged_as_one_summary() {
    use std::io::{Read, Write};
    let (mut server, port, log) = logged_server(&[("FACELIVE_API_KEY", "the-key")]);
    let before = std::fs::metadata(log.path()).unwrap().len();
    let refused = |n: usize| {
        for _ in 0..n {
            let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.write_all(
                b"POST /v1/liveness HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n\
                  Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            )
            .unwrap();
            let mut answer = String::new();
            c.read_to_string(&mut answer).unwrap();
            assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        }
    };
    refused(300);
    std::thread::sleep(std::time::Duration::from_secs(10));
    refused(1);
    let _ = server.0.kill();
    let _ = server.0.wait();
    let text = std::fs::read_to_string(log.path()).unwrap();
    let flood = &text[before as usize..];
    let summaries: Vec<&str> = flood.lines().filter(|l| l.contains("refused")).collect();
    assert_eq!(summaries.len(), 1, "{flood}");
    assert!(
        summaries[0].contains("WARN") && summaries[0].contains("total=301"),
        "{flood}"
    );
    assert!(
        flood.len() < 2000,
        "{} bytes of log for 301 refusals:\n{flood}",
        flood.len()
    );
}

/// Requests that fail validation are as easy to repeat for a key or token holder as bad
/// keys are for anyone: a flood of them, each with a 60 KB request id, adds one summary
/// line, not a line (or a request id) each.
#[test]
fn an_authenticated_flood_of_failing_requests_is_logged_as_one_summary() {
    use std::io::{Read, Write};
    let (mut server, port, log) = logged_server(&[("FACELIVE_API_KEY", "the-key")]);
    let before = std::fs::metadata(log.path()).unwrap().len();
    let id = "r".repeat(60_000);
    let failing = |n: usize| {
        for _ in 0..n {
            let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            let head = format!(
                "POST /v1/quality HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer the-key\r\n\
                 X-Request-Id: {id}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\
                 Connection: close\r\n\r\n{{}}"
            );
            c.write_all(head.as_bytes()).unwrap();
            let mut answer = String::new();
            c.read_to_string(&mut answer).unwrap();
            assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        }
    };
    failing(300);
    std::thread::sleep(std::time::Duration::from_secs(10));
    failing(1);
    let _ = server.0.kill();
    let _ = server.0.wait();
    let text = std::fs::read_to_string(log.path()).unwrap();
    let flood = &text[before as usize..];
    assert!(
        flood.len() < 2000,
        "{} bytes of log for 301 failing requests:\n{}",
        flood.len(),
        &flood[..flood.len().min(3000)]
    );
    let summaries: Vec<&str> = flood.lines().filter(|l| l.contains("total=")).collect();
    assert_eq!(summaries.len(), 1, "{flood}");
    assert!(
        summaries[0].contains("total=301") && summaries[0].contains("invalid_json"),
        "{flood}"
    );
}

#[test]
fn a_misspelled_serve_setting_in_the_file_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("facelive.toml");
    std::fs::write(&cfg, "[serve]\nno_auth = true\nqeue = 3\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_facelive"))
        .env("FACELIVE_MODELS_DIR", models_dir())
        .env("FACELIVE_CONFIG", &cfg)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("qeue") && err.contains("[serve]"), "{err}");
}

/// What Kubernetes does to a pod: SIGTERM, then the drain (not ready, still serving), then
/// a clean exit.
#[test]
fn sigterm_drains_then_exits_cleanly() {
    let (mut server, port, _log) =
        logged_server(&[("FACELIVE_NO_AUTH", "true"), ("FACELIVE_DRAIN", "3")]);
    let base = format!("http://127.0.0.1:{port}");
    let pid = server.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let t0 = Instant::now();
    let drained = loop {
        let out = Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}", &format!("{base}/ready")])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.ends_with("503") {
            break text;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "never drained: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(drained.contains("draining"), "{drained}");
    let status = server.0.wait().unwrap();
    assert!(status.success(), "exit after the drain: {status}");
}

/// Transparent huge pages cost the service whole 2 MB pages zeroed again after every free
/// (docs/BENCHMARKS.md): the running server has them off, whatever the host's setting.
#[test]
fn the_server_runs_with_transparent_huge_pages_off() {
    let (server, _port, _log) = logged_server(&[("FACELIVE_API_KEY", "k")]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.0.id())).unwrap();
    let line = status.lines().find(|l| l.starts_with("THP_enabled:"));
    assert_eq!(
        line.map(|l| l.split_whitespace().nth(1)),
        Some(Some("0")),
        "{line:?}"
    );
}

/// A trail whose sink is slow (a FIFO read by no one, as a log shipper under
/// back-pressure): the lines of requests answered 200 queue up behind it. At SIGTERM the
/// queue is drained before the process exits (`read_after` 0: the reader comes back at
/// once), or, when the sink stays stuck past the deadline, what is left is counted in the
/// log: lines read + lines counted = requests answered, nothing lost uncounted.
fn trail_at_sigterm(read_after: Duration) -> (usize, usize, String) {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("trail");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    // The server's open blocks until a reader opens: open it first, on a thread.
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::File::open(fifo).unwrap())
    };
    let audit = fifo.to_str().unwrap().to_string();
    let (mut server, port, log) = logged_server(&[
        ("FACELIVE_NO_AUTH", "true"),
        ("FACELIVE_DRAIN", "0"),
        ("FACELIVE_AUDIT_LOG", &audit),
    ]);
    let mut trail = reader.join().unwrap();
    let image = facelive_testdata::dev_dir().join("live/nuaa_ClientRaw_0001_00_00_01_134.jpg");
    let url = format!("http://127.0.0.1:{port}/v1/liveness");
    // 400 requests, 4 at a time (curl's own --parallel mangles multipart uploads).
    let codes = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "seq 400 | xargs -P4 -I%% curl -s -o /dev/null -w '%{{http_code}}\\n' -F image=@{} {url}",
            image.display()
        ))
        .output()
        .unwrap();
    let answered = String::from_utf8_lossy(&codes.stdout)
        .lines()
        .filter(|c| *c == "200")
        .count();
    assert!(answered > 300, "{answered} of 400 answered 200");
    let pid = server.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(read_after);
    let mut text = String::new();
    std::io::Read::read_to_string(&mut trail, &mut text).unwrap();
    assert!(server.0.wait().unwrap().success());
    let lines = text.lines().filter(|l| l.ends_with('}')).count();
    (
        answered,
        lines,
        std::fs::read_to_string(log.path()).unwrap(),
    )
}

#[test]
fn sigterm_drains_the_audit_queue_behind_a_slow_sink() {
    let (answered, lines, _) = trail_at_sigterm(Duration::ZERO);
    assert_eq!(lines, answered, "every answered request has its line");
}

#[test]
fn audit_lines_a_stuck_sink_never_takes_are_counted_at_shutdown() {
    let (answered, lines, log) = trail_at_sigterm(Duration::from_secs(6));
    let counted: usize = log
        .lines()
        .find(|l| l.contains("were not written"))
        .and_then(|l| l.split("lines=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no count of lines left in the log: {log}"));
    assert!(
        lines < answered,
        "the sink took everything: nothing to count"
    );
    assert_eq!(
        lines + counted,
        answered,
        "read {lines} + counted {counted}"
    );
}

/// Each rotation renames every kept file: a keep above the bound (1000) is refused at
/// start, by name, rather than filling the queue at every rotation.
#[test]
fn an_audit_keep_above_its_bound_is_refused_at_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_facelive"))
        .env("FACELIVE_MODELS_DIR", models_dir())
        .env("FACELIVE_NO_AUTH", "true")
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--audit-log",
            "/tmp/never-opened.jsonl",
        ])
        .args(["--audit-log-keep", "100000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--audit-log-keep 100000 is above 1000"),
        "{err}"
    );
}
