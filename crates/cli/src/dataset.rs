//! Labelled image sets: a manifest CSV (`file,label,attack_type,...` with paths relative to
//! the CSV's folder) or a folder with `live/` and `spoof/` subfolders (a folder inside
//! `spoof/` names the attack species).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

#[derive(Debug, Clone)]
pub struct Item {
    pub path: PathBuf,
    /// As written in the manifest (relative path), for reports.
    pub name: String,
    pub label: String,
    /// Attack species (`print`, `replay`, ...); `none` for bona fide images.
    pub attack_type: String,
    /// Every column of the manifest's row (none for a folder), for `--by` and `--group-by`.
    pub columns: BTreeMap<String, String>,
}

impl Item {
    /// The value of `column` in this image's manifest row.
    pub fn column(&self, column: &str) -> anyhow::Result<&str> {
        self.columns
            .get(column)
            .map(String::as_str)
            .with_context(|| {
                format!(
                    "the set has no column {column:?} (it has: {})",
                    self.columns.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })
    }
}

pub fn load(source: &Path) -> anyhow::Result<Vec<Item>> {
    if source.is_dir() {
        return load_dir(source);
    }
    let root = source.parent().unwrap_or(Path::new("."));
    let mut rdr = csv::Reader::from_path(source)
        .with_context(|| format!("reading manifest {}", source.display()))?;
    let headers = rdr.headers()?.clone();
    for needed in ["file", "label"] {
        anyhow::ensure!(
            headers.iter().any(|h| h == needed),
            "{} has no {needed:?} column",
            source.display()
        );
    }
    let mut items = Vec::new();
    for record in rdr.records() {
        let record = record.with_context(|| format!("parsing {}", source.display()))?;
        // Every column as text: a column of numbers is a group name like any other.
        let columns: BTreeMap<String, String> = headers
            .iter()
            .zip(record.iter())
            .map(|(h, v)| (h.to_string(), v.to_string()))
            .collect();
        let attack_type = match columns.get("attack_type").map(String::as_str) {
            None | Some("") => "unspecified".to_string(),
            Some(a) => a.to_string(),
        };
        items.push(Item {
            path: root.join(&columns["file"]),
            name: columns["file"].clone(),
            label: columns["label"].clone(),
            attack_type,
            columns,
        });
    }
    Ok(items)
}

fn load_dir(root: &Path) -> anyhow::Result<Vec<Item>> {
    let mut items = Vec::new();
    for label in ["live", "spoof"] {
        let dir = root.join(label);
        if !dir.is_dir() {
            continue;
        }
        walk(&dir, &mut |p| {
            let rel = p.strip_prefix(root).unwrap_or(p);
            let parts: Vec<_> = rel.components().collect();
            let attack_type = match (label, parts.len()) {
                ("live", _) => "none".to_string(),
                (_, n) if n > 2 => parts[1].as_os_str().to_string_lossy().into_owned(),
                _ => "unspecified".to_string(),
            };
            items.push(Item {
                path: p.to_path_buf(),
                name: rel.display().to_string(),
                label: label.into(),
                attack_type,
                columns: BTreeMap::new(),
            });
        })?;
    }
    anyhow::ensure!(
        !items.is_empty(),
        "{} has no images under live/ or spoof/",
        root.display()
    );
    items.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(items)
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            walk(&p, f)?;
        } else if !e.file_name().to_string_lossy().starts_with('.') {
            f(&p);
        }
    }
    Ok(())
}

/// A progress bar over a set's images.
pub fn progress(images: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(images as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} images, {eta} left")
            .expect("valid template"),
    );
    bar
}
