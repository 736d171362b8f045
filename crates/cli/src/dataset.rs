//! Labelled image sets: a manifest CSV (`file,label,attack_type,...` with paths relative to
//! the CSV's folder) or a folder with `live/` and `spoof/` subfolders (a folder inside
//! `spoof/` names the attack species).
//!
//! A manifest is input like any other: a row naming `../x`, an absolute path or a symlink
//! out of the manifest's folder would have that file read (and, with `eval --endpoint`,
//! posted to a third party), so such rows are refused unless `--allow-outside-set` says
//! otherwise; a label outside the closed set is an error naming its row.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::Context;
use facelive_eval::Label;

/// What a manifest row says an image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SetLabel {
    /// Bona fide.
    Live,
    /// An attack presentation (its species in `attack_type`).
    Spoof,
    /// Neither: an image kept for behaviour tests (no face, tiny, corrupt), never scored.
    Edge,
}

impl SetLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            SetLabel::Live => "live",
            SetLabel::Spoof => "spoof",
            SetLabel::Edge => "edge",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [SetLabel::Live, SetLabel::Spoof, SetLabel::Edge]
            .into_iter()
            .find(|l| l.as_str() == s)
    }
}

/// Where a set's images may be: inside the manifest's folder (the default), or anywhere.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct SetPaths {
    /// Accept manifest rows naming files outside the manifest's folder (`../x`, absolute
    /// paths, symlinks leading out); refused by default, since a manifest from elsewhere
    /// could otherwise have any readable file read or sent to an endpoint.
    #[arg(long, env = "FACELIVE_ALLOW_OUTSIDE_SET")]
    pub allow_outside_set: bool,
}

impl SetPaths {
    /// `rel` (a manifest's value) under `root`, refused when it leads out of `root`.
    pub fn resolve(self, root: &Path, rel: &str) -> anyhow::Result<PathBuf> {
        let path = root.join(rel);
        if self.allow_outside_set {
            return Ok(path);
        }
        let lexical = !rel.is_empty()
            && Path::new(rel)
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        anyhow::ensure!(
            lexical,
            "{rel:?} leaves the manifest's folder (--allow-outside-set accepts it)"
        );
        // A symlink inside may still lead out; a file that does not exist is reported
        // when it is read.
        if let (Ok(real), Ok(real_root)) = (path.canonicalize(), root.canonicalize()) {
            anyhow::ensure!(
                real.starts_with(&real_root),
                "{rel:?} is a link out of the manifest's folder (--allow-outside-set accepts it)"
            );
        }
        Ok(path)
    }
}

#[derive(Debug, Clone)]
pub struct Item {
    pub path: PathBuf,
    /// As written in the manifest (relative path), for reports.
    pub name: String,
    pub label: SetLabel,
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

    /// Bona fide or attack: what the evaluation scores (edge images are neither).
    pub fn judged(&self) -> bool {
        matches!(self.label, SetLabel::Live | SetLabel::Spoof)
    }

    /// The image's ground truth in ISO/IEC 30107-3 terms.
    pub fn truth(&self) -> Label {
        truth(self.label, &self.attack_type)
    }
}

/// Bona fide for `live`, else an attack of `species`.
pub fn truth(label: SetLabel, species: &str) -> Label {
    match label {
        SetLabel::Live => Label::BonaFide,
        _ => Label::Attack {
            species: species.to_string(),
        },
    }
}

/// The set's bona fide and attack images (edge images left out): what eval, calibrate,
/// bench and adapt score.
pub fn judged(source: &Path, paths: SetPaths) -> anyhow::Result<Vec<Item>> {
    let items: Vec<_> = load(source, paths)?
        .into_iter()
        .filter(Item::judged)
        .collect();
    anyhow::ensure!(
        !items.is_empty(),
        "no live or spoof images in {}",
        source.display()
    );
    Ok(items)
}

pub fn load(source: &Path, paths: SetPaths) -> anyhow::Result<Vec<Item>> {
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
    for (i, record) in rdr.records().enumerate() {
        let record = record.with_context(|| format!("parsing {}", source.display()))?;
        // Every column as text: a column of numbers is a group name like any other.
        let columns: BTreeMap<String, String> = headers
            .iter()
            .zip(record.iter())
            .map(|(h, v)| (h.to_string(), v.to_string()))
            .collect();
        let item = row_item(root, columns, paths)
            .with_context(|| format!("{} row {}", source.display(), i + 2))?;
        items.push(item);
    }
    Ok(items)
}

/// One manifest row as an item, its path and label checked.
fn row_item(
    root: &Path,
    columns: BTreeMap<String, String>,
    paths: SetPaths,
) -> anyhow::Result<Item> {
    let label = SetLabel::parse(&columns["label"])
        .with_context(|| format!("label {:?} is not live, spoof or edge", columns["label"]))?;
    let attack_type = match columns.get("attack_type").map(String::as_str) {
        None | Some("") => "unspecified".to_string(),
        Some(a) => a.to_string(),
    };
    Ok(Item {
        path: paths.resolve(root, &columns["file"])?,
        name: columns["file"].clone(),
        label,
        attack_type,
        columns,
    })
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
                label: SetLabel::parse(label).expect("live or spoof"),
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

/// A value from an input file or an endpoint, made inert for spreadsheets: a cell starting
/// with `=`, `+`, `-` or `@` is read as a formula there, so it gets a leading apostrophe
/// ([`csv_value`] takes it off again when facelive reads the file back).
pub fn csv_cell(v: &str) -> String {
    match v.chars().next() {
        Some('=' | '+' | '-' | '@') => format!("'{v}"),
        _ => v.to_string(),
    }
}

/// A cell as [`csv_cell`] wrote it, back to its value.
pub fn csv_value(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(v) if v.starts_with(['=', '+', '-', '@']) => v,
        _ => cell,
    }
}

/// A value from an input file as a markdown table cell: `|` would end the cell and `<`
/// open HTML, so both are escaped; a line break would end the row.
pub fn md_cell(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_formula_cell_is_inert_and_reads_back_as_written() {
        for v in [
            "=cmd|' /C calc'!A0",
            "+1",
            "-2",
            "@SUM(A1)",
            "plain.jpg",
            "'quoted",
        ] {
            let cell = csv_cell(v);
            assert!(!cell.starts_with(['=', '+', '-', '@']), "{cell}");
            assert_eq!(csv_value(&cell), v);
        }
    }

    #[test]
    fn markdown_cells_cannot_break_the_table_or_open_html() {
        assert_eq!(md_cell("a|b<script>\nc"), "a\\|b&lt;script> c");
    }

    #[test]
    fn paths_leading_out_of_the_set_are_refused_unless_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("set");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(dir.path().join("secret.txt"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("link.jpg")).unwrap();
        std::fs::write(root.join("ok.jpg"), "x").unwrap();
        let inside = SetPaths::default();
        for rel in [
            "../secret.txt",
            "/etc/passwd",
            "a/../../secret.txt",
            "link.jpg",
            "",
        ] {
            assert!(inside.resolve(&root, rel).is_err(), "{rel} accepted");
        }
        assert_eq!(
            inside.resolve(&root, "ok.jpg").unwrap(),
            root.join("ok.jpg")
        );
        let anywhere = SetPaths {
            allow_outside_set: true,
        };
        assert!(anywhere.resolve(&root, "../secret.txt").is_ok());
    }

    #[test]
    fn an_unknown_label_is_an_error_naming_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("m.csv");
        std::fs::write(&csv, "file,label\na.jpg,live\nb.jpg,LIVE\n").unwrap();
        let e = load(&csv, SetPaths::default()).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("row 3") && msg.contains("\"LIVE\""), "{msg}");
    }
}
