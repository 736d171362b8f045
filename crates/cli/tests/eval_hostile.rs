//! `facelive eval --endpoint` against an endpoint that is hostile or broken: a buyer points
//! it at third parties, so it trusts nothing an endpoint answers. Each scenario runs inside
//! a loopback-only network namespace, with a fake endpoint on 127.0.0.1 that answers one
//! way, and a manifest that is input too.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use facelive_testdata::{dev_dir, loopback_only, models_dir};

/// An endpoint on 127.0.0.1 that answers every request with `answer`, counting requests.
struct Fake {
    url: String,
    hits: Arc<AtomicUsize>,
}

fn fake(answer: impl Fn(&mut TcpStream) + Send + Sync + 'static) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/antispoofing", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let (count, answer) = (hits.clone(), Arc::new(answer));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (count, answer) = (count.clone(), answer.clone());
            std::thread::spawn(move || {
                let mut stream = stream;
                if read_request(&mut stream).is_some() {
                    count.fetch_add(1, Ordering::SeqCst);
                    answer(&mut stream);
                }
            });
        }
    });
    Fake { url, hits }
}

/// Reads one request's head and body; `None` when the client went away first.
fn read_request(stream: &mut TcpStream) -> Option<()> {
    let mut r = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).ok()
}

fn respond(stream: &mut TcpStream, head: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A one-image manifest in `dir` naming `file` (a dev image copied there) with `attack_type`.
fn manifest(dir: &Path, file: &str, attack_type: &str) -> std::path::PathBuf {
    let image = dev_dir().join("live/nuaa_ClientRaw_0001_00_00_01_134.jpg");
    std::fs::copy(image, dir.join(file)).unwrap();
    let path = dir.join("set.csv");
    std::fs::write(
        &path,
        format!("file,label,attack_type\n{file},spoof,\"{attack_type}\"\n"),
    )
    .unwrap();
    path
}

fn eval(manifest: &Path, out: &Path, url: &str, extra: &[&str]) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_facelive"))
        .env("FACELIVE_MODELS_DIR", models_dir())
        .env("FACELIVE_ENDPOINT_KEY", "vendor-key-not-for-others")
        .arg("eval")
        .arg(manifest)
        .arg("--out")
        .arg(out)
        .args([
            "--endpoint",
            url,
            "--dialect",
            "spoofsense",
            "--attempts",
            "2",
        ])
        .args(extra)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a_redirect_to_another_origin_is_not_followed_and_sends_nothing_there() {
    loopback_only(|| {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = fake(|s| {
            respond(
                s,
                "200 OK",
                r#"{"success":true,"model_output":{"prob_real":0.9}}"#,
            )
        });
        let target = elsewhere.url.clone();
        let redirecting = fake(move |s| {
            let _ = write!(
                s,
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        });
        let m = manifest(dir.path(), "a.jpg", "print");
        let (ok, err) = eval(&m, &dir.path().join("out"), &redirecting.url, &[]);
        assert!(!ok, "the run stops");
        assert!(err.contains("redirected elsewhere"), "{err}");
        assert_eq!(
            redirecting.hits.load(Ordering::SeqCst),
            1,
            "asked once, not retried"
        );
        assert_eq!(
            elsewhere.hits.load(Ordering::SeqCst),
            0,
            "nothing reached the other origin"
        );
    });
}

#[test]
fn an_endless_answer_is_cut_off_and_stops_the_run() {
    loopback_only(|| {
        let dir = tempfile::tempdir().unwrap();
        let endless = fake(|s| {
            let _ = write!(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n");
            let chunk = format!("{:x}\r\n{}\r\n", 65536, " ".repeat(65536));
            // Until the client hangs up: at most a few chunks past the cap.
            for _ in 0..100_000 {
                if s.write_all(chunk.as_bytes()).is_err() {
                    return;
                }
            }
        });
        let m = manifest(dir.path(), "a.jpg", "print");
        let (ok, err) = eval(&m, &dir.path().join("out"), &endless.url, &[]);
        assert!(!ok, "the run stops");
        assert!(err.contains("answered more than 1048576 bytes"), "{err}");
    });
}

#[test]
fn a_score_off_the_scale_stops_the_run_naming_the_image_and_is_not_kept() {
    loopback_only(|| {
        let dir = tempfile::tempdir().unwrap();
        let wild = fake(|s| {
            respond(
                s,
                "200 OK",
                r#"{"success":true,"model_output":{"prob_real":7.5}}"#,
            )
        });
        let m = manifest(dir.path(), "a.jpg", "print");
        let out = dir.path().join("out");
        let (ok, err) = eval(&m, &out, &wild.url, &[]);
        assert!(!ok, "the run stops");
        assert!(err.contains("scored a.jpg 7.5, outside [0, 1]"), "{err}");
        let kept = std::fs::read_to_string(out.join("scores.csv")).unwrap();
        assert_eq!(kept.lines().count(), 1, "header only: {kept}");
    });
}

#[test]
fn a_server_asking_to_wait_for_ages_meets_the_image_deadline() {
    loopback_only(|| {
        let dir = tempfile::tempdir().unwrap();
        let sleepy = fake(|s| {
            let _ = write!(s, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 99999999999\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        });
        let m = manifest(dir.path(), "a.jpg", "print");
        let (ok, err) = eval(
            &m,
            &dir.path().join("out"),
            &sleepy.url,
            &["--image-timeout", "2"],
        );
        assert!(!ok, "the run stops");
        assert!(err.contains("a.jpg: no answer within 2 s"), "{err}");
    });
}

#[test]
fn a_manifest_leading_out_of_its_folder_sends_nothing() {
    loopback_only(|| {
        let dir = tempfile::tempdir().unwrap();
        let set = dir.path().join("set");
        std::fs::create_dir(&set).unwrap();
        std::fs::write(dir.path().join("secret.jpg"), "not for the endpoint").unwrap();
        let listening = fake(|s| {
            respond(
                s,
                "200 OK",
                r#"{"success":true,"model_output":{"prob_real":0.9}}"#,
            )
        });
        for row in [
            "../secret.jpg",
            dir.path().join("secret.jpg").to_str().unwrap(),
        ] {
            let m = set.join("set.csv");
            std::fs::write(&m, format!("file,label,attack_type\n{row},spoof,print\n")).unwrap();
            let (ok, err) = eval(&m, &dir.path().join("out"), &listening.url, &[]);
            assert!(!ok, "{row} refused");
            assert!(err.contains("leaves the manifest's folder"), "{err}");
        }
        assert_eq!(listening.hits.load(Ordering::SeqCst), 0, "nothing was sent");
    });
}

/// Manifest values and the endpoint's words reach scores.csv inert for spreadsheets and
/// report.md escaped, and a resumed run still recognises the rows.
#[test]
fn manifest_values_are_inert_in_the_csv_and_escaped_in_the_report() {
    loopback_only(|| {
        let dir = tempfile::tempdir().unwrap();
        let refusing = fake(|s| {
            respond(
                s,
                "400 Bad Request",
                r#"{"success":false,"error_code":"=HYPERLINK(\"x\")"}"#,
            )
        });
        let m = manifest(dir.path(), "=1+1.jpg", "-x|<b>");
        let out = dir.path().join("out");
        let (ok, err) = eval(&m, &out, &refusing.url, &[]);
        assert!(ok, "{err}");
        let csv = std::fs::read_to_string(out.join("scores.csv")).unwrap();
        let row = csv.lines().nth(1).unwrap();
        assert!(
            row.starts_with("'=1+1.jpg,spoof,'-x|<b>,quality,,"),
            "{row}"
        );
        assert!(row.contains("'=HYPERLINK"), "{row}");
        let md = std::fs::read_to_string(out.join("report.md")).unwrap();
        assert!(md.contains("APCER -x\\|&lt;b>"), "{md}");
        let (ok, err) = eval(&m, &out, &refusing.url, &[]);
        assert!(ok && err.contains("resuming: 1 of 1 images"), "{err}");
        assert_eq!(
            refusing.hits.load(Ordering::SeqCst),
            1,
            "the resumed run asked nothing"
        );
    });
}
