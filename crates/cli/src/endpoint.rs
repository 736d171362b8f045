//! `facelive eval --endpoint URL --dialect D`: a running liveness API (facelive, or a
//! vendor's), evaluated on the same set and in the same terms as the local pipeline. Each
//! image is sent as that vendor's documented client sends it; each answer is read as that
//! client reads it. Requests run a few at a time under an optional rate cap, 429/503 and
//! network errors are retried with backoff, and every answer is appended to
//! `OUT/scores.csv` at once, so an interrupted run continues where it stopped.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use facelive_eval::Failure;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::dataset::{self, Item};

/// The APIs `eval --endpoint` speaks, as their vendors' clients do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dialect {
    Native,
    Nhn,
    Accura,
    Jcv,
    Spoofsense,
}

impl Dialect {
    /// The server's table entry for this dialect: its paths and thresholds.
    fn entry(self) -> &'static facelive_router::dialect::Dialect {
        use facelive_router::dialects;
        match self {
            Dialect::Native => &dialects::NATIVE,
            Dialect::Nhn => &dialects::NHN,
            Dialect::Accura => &dialects::ACCURA,
            Dialect::Jcv => &dialects::JCV,
            Dialect::Spoofsense => &dialects::SPOOFSENSE,
        }
    }

    /// The threshold the vendor decides at, on the 0..1 scale of the scores read: reported
    /// beside the operating points. NHN answers a verdict only (scores read as 1 or 0).
    pub fn threshold(self) -> Option<f32> {
        self.entry().endpoints[0].decision.threshold()
    }

    /// The path of its liveness endpoint, as its vendor documents it.
    pub fn path(self) -> &'static str {
        self.entry().endpoints[0].paths[0]
    }

    /// A top-level field every answer of this dialect carries, success or error: an answer
    /// without one is not this dialect's.
    fn answers_with(self, j: &Value) -> bool {
        let any = |keys: &[&str]| keys.iter().any(|k| j.get(k).is_some());
        match self {
            Dialect::Native => any(&["outcome", "error"]),
            Dialect::Nhn => any(&["header"]),
            Dialect::Accura => any(&["status"]),
            Dialect::Jcv => any(&["status", "error"]),
            Dialect::Spoofsense => any(&["success"]),
        }
    }

    /// The dialect as `--dialect` spells it.
    pub fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self)
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

#[derive(Debug, clap::Args)]
pub struct EndpointArgs {
    /// Evaluate a running API instead of the local pipeline: the full URL of its liveness
    /// endpoint (e.g. http://host:8080/v1/liveness, or NHN's
    /// .../v1.0/appkeys/{appKey}/spoofing). Needs --dialect and --out.
    #[arg(long, value_name = "URL", requires_all = ["dialect", "out"])]
    pub endpoint: Option<reqwest::Url>,
    /// How to talk to it: the request each vendor's client sends, the answer it reads.
    #[arg(long, value_enum)]
    pub dialect: Option<Dialect>,
    /// The endpoint's key, sent in the dialect's own header (NHN: the secretKey).
    #[arg(long, env = "FACELIVE_ENDPOINT_KEY", hide_env_values = true)]
    pub endpoint_key: Option<facelive_router::Secret>,
    /// Requests in flight at once.
    #[arg(long, env = "FACELIVE_ENDPOINT_CONCURRENCY", default_value_t = 4)]
    pub concurrency: usize,
    /// Requests per second at most (0: no cap).
    #[arg(long, env = "FACELIVE_ENDPOINT_RPS", default_value_t = 0.0)]
    pub rps: f64,
    /// Attempts per image on 429, 5xx and network errors, with exponential backoff,
    /// before the run stops (it resumes from OUT/scores.csv when run again).
    #[arg(long, env = "FACELIVE_ENDPOINT_ATTEMPTS", default_value_t = 8)]
    pub attempts: u32,
    /// Seconds one request may take.
    #[arg(long, env = "FACELIVE_ENDPOINT_REQUEST_TIMEOUT", default_value_t = 60)]
    pub request_timeout: u64,
    /// Seconds one image may take, retries and waits included, before the run stops.
    #[arg(long, env = "FACELIVE_ENDPOINT_IMAGE_TIMEOUT", default_value_t = 600)]
    pub image_timeout: u64,
}

/// What one image came to: a live score, or why none (its scores.csv status and note).
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Scored(f32),
    NotAcquired(Failure, String),
}

/// One attempt's result.
enum Attempt {
    Done(Answer),
    /// Worth another try (overload, network): why, and the server's Retry-After.
    Again(String, Option<Duration>),
    /// The run cannot go on (a refused key): stop.
    Stop(String),
}

struct Sender {
    client: reqwest::Client,
    url: reqwest::Url,
    key: String,
    dialect: Dialect,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn file_part(name: &str, bytes: Vec<u8>) -> reqwest::multipart::Part {
    reqwest::multipart::Part::bytes(bytes).file_name(name.to_string())
}

impl Sender {
    /// The request as the vendor's own client builds it.
    fn request(&self, file: &str, bytes: Vec<u8>) -> reqwest::RequestBuilder {
        let post = self.client.post(self.url.clone());
        match self.dialect {
            Dialect::Native => post
                .bearer_auth(&self.key)
                .multipart(reqwest::multipart::Form::new().part("image", file_part(file, bytes))),
            Dialect::Nhn => post
                .header("Authorization", &self.key)
                .json(&json!({"image": {"bytes": b64(&bytes)}, "spoofingCondition": "balanced"})),
            Dialect::Accura => post.header("Api-Key", &self.key).multipart(
                reqwest::multipart::Form::new().part("liveness_image", file_part(file, bytes)),
            ),
            // autoRotate, which JCV documents (off unless asked): the other APIs apply the
            // EXIF orientation, and an evaluation compares them on the same upright faces.
            Dialect::Jcv => post.header("X-API-Key", &self.key).json(&json!({
                "images": [{"index": 0, "type": "RGB", "data": b64(&bytes)}],
                "autoRotate": true
            })),
            Dialect::Spoofsense => post
                .header("x-api-key", &self.key)
                .json(&json!({"data": b64(&bytes)})),
        }
    }

    async fn attempt(&self, file: &str, bytes: Vec<u8>) -> Attempt {
        let resp = match self.request(file, bytes).send().await {
            Ok(r) => r,
            Err(e) if e.is_redirect() => {
                return Attempt::Stop(format!(
                    "{} redirected elsewhere: eval follows no redirect to another origin \
                     (the image and the key would go there); give the endpoint's final URL",
                    self.url
                ))
            }
            Err(e) => return Attempt::Again(format!("network: {e}"), None),
        };
        let status = resp.status().as_u16();
        let retry_after = retry_after(resp.headers());
        if matches!(status, 429 | 500 | 502 | 503 | 504) {
            return Attempt::Again(format!("HTTP {status}"), retry_after);
        }
        if matches!(status, 401 | 403) {
            return Attempt::Stop(format!("the endpoint refused the key (HTTP {status})"));
        }
        if matches!(status, 404 | 405) {
            return self.not_the_endpoint(&format!("answered HTTP {status}"));
        }
        let body = match capped_body(resp).await {
            Ok(b) => b,
            Err(BodyError::TooLarge) => {
                return self.not_the_endpoint(&format!("answered more than {MAX_ANSWER} bytes"))
            }
            Err(BodyError::Network(e)) => return Attempt::Again(format!("network: {e}"), None),
        };
        match serde_json::from_slice::<Value>(&body) {
            Ok(body) if self.dialect.answers_with(&body) => {
                checked(read(self.dialect, status, &body), file)
            }
            Ok(_) => self.not_the_endpoint(&format!(
                "answered JSON that is not {}'s",
                self.dialect.name()
            )),
            Err(_) => self.not_the_endpoint(&format!("answered HTTP {status} without JSON")),
        }
    }

    /// A wrong URL stops the run at the first answer, naming the path it should have.
    fn not_the_endpoint(&self, what: &str) -> Attempt {
        Attempt::Stop(format!(
            "{} {what}: is it the {} endpoint? --endpoint takes its full URL, e.g. \
             http://host:port{}",
            self.url,
            self.dialect.name(),
            self.dialect.path()
        ))
    }
}

/// The longest answer read: a liveness answer is a few hundred bytes, and an endpoint that
/// sends more (or never stops) must not grow this process without bound.
const MAX_ANSWER: usize = 1 << 20;

/// The longest `Retry-After` obeyed: a server asking for more is asked again sooner.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Redirects followed within the endpoint's own origin; another origin stops the run.
const MAX_REDIRECTS: usize = 5;

/// The server's `Retry-After` in seconds, capped at [`MAX_RETRY_AFTER`].
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

enum BodyError {
    TooLarge,
    Network(reqwest::Error),
}

/// The answer's body, read chunk by chunk and abandoned past [`MAX_ANSWER`].
async fn capped_body(mut resp: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > MAX_ANSWER as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Network)? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The redirect rule: the same scheme, host and port only, a few times at most.
fn same_origin_only() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().map(|u| u.origin());
        if attempt.previous().len() > MAX_REDIRECTS || first != Some(attempt.url().origin()) {
            attempt.error("redirect to another origin")
        } else {
            attempt.follow()
        }
    })
}

/// A score off the 0..1 scale (or not a number) stops the run, naming the image: every
/// rate assumes the scale, and a resumed run would read it back.
fn checked(a: Attempt, file: &str) -> Attempt {
    match a {
        Attempt::Done(Answer::Scored(s)) if !(0.0..=1.0).contains(&s) => Attempt::Stop(format!(
            "the endpoint scored {file} {s}, outside [0, 1]: not the dialect's scale"
        )),
        a => a,
    }
}

fn failed(f: Failure, note: impl Into<String>) -> Attempt {
    Attempt::Done(Answer::NotAcquired(f, note.into()))
}

/// A retry outcome's reason as a failure to acquire.
fn retry(reason: &str) -> Attempt {
    let f = if reason == "no_face" {
        Failure::NoFace
    } else {
        Failure::Quality
    };
    failed(f, reason)
}

fn score(v: &Value) -> Option<f32> {
    v.as_f64().map(|s| s as f32)
}

/// The answer as the vendor's client reads it (statuses other than 401/403/429/5xx).
fn read(dialect: Dialect, status: u16, j: &Value) -> Attempt {
    let code = |v: &Value| v.as_str().unwrap_or("").to_string();
    match dialect {
        Dialect::Native if status == 200 => {
            match (j["outcome"].as_str(), score(&j["live_score"])) {
                (Some("live" | "spoof"), Some(s)) => Attempt::Done(Answer::Scored(s)),
                _ => retry(j["retry_reason"].as_str().unwrap_or("")),
            }
        }
        Dialect::Native => failed(Failure::Unreadable, code(&j["error"]["code"])),
        // Every NHN answer is 200: the outcome is in header.resultCode.
        Dialect::Nhn => match (
            j["header"]["isSuccessful"].as_bool(),
            j["header"]["resultCode"].as_i64(),
        ) {
            (Some(true), _) => match j["data"]["faceDetails"][0]["spoofing"].as_bool() {
                Some(spoof) => Attempt::Done(Answer::Scored(if spoof { 0.0 } else { 1.0 })),
                None => failed(Failure::NoFace, "no face analysed"),
            },
            (_, Some(-41005 | -41000)) => {
                Attempt::Stop("NHN refused the appKey or secretKey".into())
            }
            (_, Some(-50000)) => Attempt::Again("NHN -50000".into(), None),
            (_, c) => failed(
                Failure::Unreadable,
                format!("resultCode {}", c.unwrap_or(0)),
            ),
        },
        Dialect::Accura if status == 200 => match score(&j["liveness_score"]) {
            Some(p) => Attempt::Done(Answer::Scored(p / 100.0)),
            None => retry(j["retry_reason"].as_str().unwrap_or("")),
        },
        Dialect::Accura => failed(Failure::Unreadable, code(&j["error_code"])),
        Dialect::Jcv if status == 200 => match (j["status"].as_str(), score(&j["score"])) {
            (Some("ok"), Some(s)) => Attempt::Done(Answer::Scored(s)),
            _ => retry(j["retry_reason"].as_str().unwrap_or("")),
        },
        Dialect::Jcv if j["error"]["code"] == "face_not_found" => {
            failed(Failure::NoFace, "face_not_found")
        }
        Dialect::Jcv => failed(Failure::Unreadable, code(&j["error"]["code"])),
        Dialect::Spoofsense if j["success"] == true => match score(&j["model_output"]["prob_real"])
        {
            Some(p) => Attempt::Done(Answer::Scored(p)),
            None => failed(Failure::Unreadable, "no model_output"),
        },
        Dialect::Spoofsense => match j["error_code"].as_str().unwrap_or("") {
            "FACE_NOT_DETECTED" => failed(Failure::NoFace, "FACE_NOT_DETECTED"),
            "INVALID_IMAGE_PAYLOAD" | "" => failed(Failure::Unreadable, code(&j["error_code"])),
            "TOO_MANY_REQUESTS" | "SERVER_BUSY" | "TIMEOUT" => {
                Attempt::Again(code(&j["error_code"]), None)
            }
            other => failed(Failure::Quality, other),
        },
    }
}

/// Spaces request starts `1/rps` apart.
struct Pace {
    gap: Duration,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl Pace {
    async fn wait(&self) {
        if self.gap.is_zero() {
            return;
        }
        let mut next = self.next.lock().await;
        let now = tokio::time::Instant::now();
        let at = (*next).max(now);
        *next = at + self.gap;
        drop(next);
        tokio::time::sleep_until(at).await;
    }
}

/// Sends one image until it is answered, retrying with backoff; `Err` stops the run.
async fn judge(sender: &Sender, pace: &Pace, item: &Item, attempts: u32) -> anyhow::Result<Answer> {
    let bytes =
        std::fs::read(&item.path).with_context(|| format!("reading {}", item.path.display()))?;
    let mut last = String::new();
    for n in 0..attempts.max(1) {
        pace.wait().await;
        match sender.attempt(&item.name, bytes.clone()).await {
            Attempt::Done(a) => return Ok(a),
            Attempt::Stop(why) => anyhow::bail!("{why}"),
            Attempt::Again(why, after) => {
                last = why;
                let backoff = Duration::from_millis(250u64 << n.min(7)).mul_f64(jitter());
                tokio::time::sleep(after.unwrap_or_default().max(backoff)).await;
            }
        }
    }
    anyhow::bail!(
        "{}: no answer after {attempts} attempts ({last})",
        item.name
    )
}

/// A factor in [0.5, 1.5): retries of requests refused together do not come back together.
fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    0.5 + (nanos % 1000) as f64 / 1000.0
}

/// The columns of scores.csv (the `--scores` format).
pub const SCORE_COLUMNS: [&str; 6] = [
    "file",
    "label",
    "attack_type",
    "status",
    "live_score",
    "reason",
];

/// The scores.csv status, score and reason of an answer. The score in its shortest form
/// that reads back as the same f32, so reports rebuild exactly.
pub fn columns(a: &Answer) -> (&'static str, String, &str) {
    match a {
        Answer::Scored(v) => ("ok", v.to_string(), ""),
        Answer::NotAcquired(Failure::NoFace, n) => ("no_face", String::new(), n),
        Answer::NotAcquired(Failure::Unreadable, n) => ("decode_error", String::new(), n),
        Answer::NotAcquired(Failure::Quality, n) => ("quality", String::new(), n),
    }
}

/// The client for `a`'s endpoint, speaking its dialect.
fn sender(a: &EndpointArgs) -> anyhow::Result<Sender> {
    let (url, dialect) = (
        a.endpoint.clone().expect("endpoint"),
        a.dialect.expect("dialect"),
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(Sender {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(a.request_timeout))
            .redirect(same_origin_only())
            .build()?,
        url,
        key: a.endpoint_key.as_deref().unwrap_or_default().to_string(),
        dialect,
    })
}

/// Requests spaced to at most `rps` a second (0: no cap).
fn pace(rps: f64) -> Pace {
    let gap = if rps > 0.0 {
        Duration::from_secs_f64(1.0 / rps)
    } else {
        Duration::ZERO
    };
    Pace {
        gap,
        next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
    }
}

/// `scores.csv` opened to append, its header written if it is new.
fn scores_appender(scores: &Path) -> anyhow::Result<csv::Writer<std::fs::File>> {
    let fresh = !scores.exists();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(scores)?;
    let mut out = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(file);
    if fresh {
        out.write_record(SCORE_COLUMNS)?;
        out.flush()?;
    }
    Ok(out)
}

/// Every item's answer: those already in `scores` (an earlier, interrupted run) and the
/// endpoint's for the rest, each appended to `scores` as it comes.
pub fn evaluate(
    a: &EndpointArgs,
    items: &[Item],
    done: HashMap<String, Answer>,
    scores: &Path,
) -> anyhow::Result<Vec<Answer>> {
    let (sender, pace) = (Arc::new(sender(a)?), Arc::new(pace(a.rps)));
    let todo: Vec<&Item> = items
        .iter()
        .filter(|i| !done.contains_key(&i.name))
        .collect();
    if !done.is_empty() {
        eprintln!(
            "resuming: {} of {} images already answered in {}",
            done.len(),
            items.len(),
            scores.display()
        );
    }
    let mut out = scores_appender(scores)?;
    let bar = crate::dataset::progress(items.len());
    bar.set_position(done.len() as u64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut answers = done;
    let result: anyhow::Result<()> = rt.block_on(async {
        let mut stream = futures_util::stream::iter(todo)
            .map(|item| {
                let (sender, pace) = (sender.clone(), pace.clone());
                let deadline = Duration::from_secs(a.image_timeout);
                async move {
                    let answer =
                        tokio::time::timeout(deadline, judge(&sender, &pace, item, a.attempts))
                            .await
                            .unwrap_or_else(|_| {
                                Err(anyhow::anyhow!(
                                    "{}: no answer within {} s (--image-timeout)",
                                    item.name,
                                    deadline.as_secs()
                                ))
                            });
                    (item, answer)
                }
            })
            .buffer_unordered(a.concurrency.max(1));
        while let Some((item, answer)) = stream.next().await {
            let answer = answer?;
            let (status, score, note) = columns(&answer);
            out.write_record([
                &dataset::csv_cell(&item.name),
                item.label.as_str(),
                &dataset::csv_cell(&item.attack_type),
                status,
                &score,
                &dataset::csv_cell(note),
            ])?;
            out.flush()?;
            answers.insert(item.name.clone(), answer);
            bar.inc(1);
        }
        Ok(())
    });
    bar.finish_and_clear();
    result.with_context(|| {
        format!(
            "stopped after {} of {} images; run the same command again to continue",
            answers.len(),
            items.len()
        )
    })?;
    Ok(items.iter().map(|i| answers[&i.name].clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_obeyed_up_to_a_minute() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after", "99999999999".parse().unwrap());
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn a_score_off_the_scale_is_refused() {
        for s in [f32::NAN, f32::INFINITY, -0.1, 1.5] {
            let a = checked(Attempt::Done(Answer::Scored(s)), "x.jpg");
            assert!(matches!(a, Attempt::Stop(m) if m.contains("x.jpg")), "{s}");
        }
        let a = checked(Attempt::Done(Answer::Scored(1.0)), "x.jpg");
        assert!(matches!(a, Attempt::Done(Answer::Scored(_))));
    }
}
