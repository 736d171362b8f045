use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::verify::verify_file;
use crate::{FileStatus, ModelSpec, ModelsError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullOutcome {
    /// The file was already there with the right sha256; nothing was downloaded.
    AlreadyPresent,
    Downloaded {
        bytes: u64,
    },
}

pub type PullReport = Vec<(String, Result<PullOutcome, ModelsError>)>;

/// Downloads every model of `specs` that is missing or wrong in `dir`.
///
/// Each file is streamed into a temporary name in `dir`, hashed on the way, and renamed to
/// its real name only once its size and sha256 match the manifest, so an interrupted or
/// corrupt download never leaves a half file where the pipeline would load it. `mirror`
/// replaces the upstream URLs with `{mirror}/{file}` (air-gapped mirrors, tests).
pub async fn pull(
    dir: &Path,
    specs: &[&ModelSpec],
    mirror: Option<&str>,
    timeout: Duration,
) -> Result<PullReport, ModelsError> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|source| ModelsError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    // reqwest is built without a default crypto provider; ring is the one we compile.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .timeout(timeout)
        .user_agent(concat!("facelive/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ModelsError::Download {
            url: String::new(),
            reason: e.to_string(),
        })?;
    let mut report = Vec::with_capacity(specs.len());
    for spec in specs {
        let outcome = if verify_file(dir, spec) == FileStatus::Ok {
            Ok(PullOutcome::AlreadyPresent)
        } else {
            let url = match mirror {
                Some(m) => format!("{}/{}", m.trim_end_matches('/'), spec.file),
                None => spec.url.clone(),
            };
            download(&client, &url, dir, spec).await
        };
        report.push((spec.name.clone(), outcome));
    }
    Ok(report)
}

async fn download(
    client: &reqwest::Client,
    url: &str,
    dir: &Path,
    spec: &ModelSpec,
) -> Result<PullOutcome, ModelsError> {
    let tmp = dir.join(format!(".{}.partial-{}", spec.file, std::process::id()));
    let result = download_to(client, url, &tmp, spec).await;
    match result {
        Ok(bytes) => {
            let dest = dir.join(&spec.file);
            tokio::fs::rename(&tmp, &dest)
                .await
                .map_err(|source| ModelsError::Io { path: dest, source })?;
            Ok(PullOutcome::Downloaded { bytes })
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            Err(e)
        }
    }
}

async fn download_to(
    client: &reqwest::Client,
    url: &str,
    tmp: &PathBuf,
    spec: &ModelSpec,
) -> Result<u64, ModelsError> {
    let fail = |reason: String| ModelsError::Download {
        url: url.to_string(),
        reason,
    };
    let io = |source| ModelsError::Io {
        path: tmp.clone(),
        source,
    };
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| fail(error_chain(&e)))?;
    if !resp.status().is_success() {
        return Err(fail(format!("HTTP {}", resp.status())));
    }
    let mut file = tokio::fs::File::create(tmp).await.map_err(io)?;
    let mut hasher = Sha256::new();
    let mut written: u64 = 0;
    while let Some(chunk) = resp.chunk().await.map_err(|e| fail(error_chain(&e)))? {
        written += chunk.len() as u64;
        // The manifest knows the size: refuse to write more than that.
        if written > spec.bytes {
            return Err(fail(format!("more than the expected {} bytes", spec.bytes)));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(io)?;
    }
    if written != spec.bytes {
        return Err(fail(format!(
            "got {written} bytes, expected {} (connection closed early?)",
            spec.bytes
        )));
    }
    let actual = hex::encode(hasher.finalize());
    if actual != spec.sha256 {
        return Err(ModelsError::HashMismatch {
            url: url.to_string(),
            expected: spec.sha256.clone(),
            actual,
        });
    }
    file.sync_all().await.map_err(io)?;
    Ok(written)
}

/// reqwest's top-level message hides the cause ("error sending request"); keep the chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
