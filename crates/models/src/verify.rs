use std::fmt;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::ModelSpec;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileStatus {
    Ok,
    Missing,
    WrongSize { expected: u64, actual: u64 },
    WrongHash { expected: String, actual: String },
    Unreadable(String),
}

impl fmt::Display for FileStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileStatus::Ok => write!(f, "ok"),
            FileStatus::Missing => write!(f, "missing"),
            FileStatus::WrongSize { expected, actual } => {
                write!(f, "the wrong size ({actual} bytes, expected {expected})")
            }
            FileStatus::WrongHash { expected, actual } => {
                write!(f, "corrupt (sha256 {actual}, expected {expected})")
            }
            FileStatus::Unreadable(e) => write!(f, "unreadable ({e})"),
        }
    }
}

/// Checks one model file against its manifest entry: present, right size, right sha256.
pub fn verify_file(dir: &Path, spec: &ModelSpec) -> FileStatus {
    let path = dir.join(&spec.file);
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return FileStatus::Missing,
        Err(e) => return FileStatus::Unreadable(e.to_string()),
    };
    if meta.len() != spec.bytes {
        return FileStatus::WrongSize {
            expected: spec.bytes,
            actual: meta.len(),
        };
    }
    match sha256_file(&path) {
        Ok(actual) if actual == spec.sha256 => FileStatus::Ok,
        Ok(actual) => FileStatus::WrongHash {
            expected: spec.sha256.clone(),
            actual,
        },
        Err(e) => FileStatus::Unreadable(e.to_string()),
    }
}

pub fn verify<'a>(dir: &Path, specs: &[&'a ModelSpec]) -> Vec<(&'a ModelSpec, FileStatus)> {
    specs.iter().map(|s| (*s, verify_file(dir, s))).collect()
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}
