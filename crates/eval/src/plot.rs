//! The evaluation's pictures: a DET curve and live-score histograms, drawn as SVG (the
//! source) and rasterised to PNG from that same SVG, so the two never disagree.
//!
//! The PNG is rendered with a font compiled into the binary, so a machine without system
//! fonts (a CI container) draws the same labels.

use std::fmt::Write as _;
use std::sync::Arc;

use std::collections::BTreeMap;

use crate::{Label, Sample};

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 540.0;
/// Plot area inside the picture: left, top, right, bottom margins.
const MARGIN: (f64, f64, f64, f64) = (78.0, 78.0, 24.0, 64.0);
const FONT: &str = "Ubuntu, DejaVu Sans, Helvetica, Arial, sans-serif";
/// First colour: the system evaluated; then the systems compared with it or attack species.
const PALETTE: [&str; 10] = [
    "#1f6feb", "#d1495b", "#edae49", "#00798c", "#8d5a97", "#66a182", "#e07a5f", "#3d405b",
    "#b5838d", "#6d597a",
];
/// Attack species grouped because they are too small to judge on their own.
const SMALL_SPECIES: &str = "#9e9e9e";
/// Height of one legend row.
const LEGEND_ROW: f64 = 16.0;
const BONA_FIDE: &str = "#2e8b57";

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("the picture's SVG does not parse: {0}")]
    Svg(String),
    #[error("cannot allocate a {0}x{1} picture")]
    Canvas(u32, u32),
    #[error("PNG encoding failed: {0}")]
    Png(String),
}

/// One DET curve: (APCER, BPCER) points in threshold order.
pub struct Curve<'a> {
    pub name: &'a str,
    pub points: &'a [(f64, f64)],
    /// Index into the palette: a system's worst-species and pooled curves share it.
    pub colour: usize,
    /// Dashed: the pooled-APCER curve beside the solid worst-species one.
    pub dashed: bool,
}

/// How a legend entry is marked.
#[derive(Clone, Copy)]
enum Mark {
    Swatch,
    Line,
    Dashed,
}

struct Entry {
    name: String,
    colour: &'static str,
    mark: Mark,
}

impl Entry {
    /// Width estimated from the character count: enough to keep entries apart.
    fn width(&self) -> f64 {
        20.0 + 7.0 * self.name.chars().count() as f64 + 22.0
    }
}

/// A named point drawn on the first curve (an operating point).
pub struct Marker<'a> {
    pub name: &'a str,
    pub apcer: f64,
    pub bpcer: f64,
}

/// A threshold drawn across the histogram.
pub struct Threshold<'a> {
    pub name: &'a str,
    pub value: f32,
}

/// Inverse of the standard normal CDF (Acklam's rational approximation, relative error
/// below 1.2e-9): DET axes are in normal deviates so that curves of Gaussian-like scores
/// are straight lines.
fn probit(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Escapes text for SVG content and attributes.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An SVG document being written; the plot area is fixed by MARGIN, lowered by the rows
/// the legend needs.
struct Canvas {
    svg: String,
    top: f64,
}

/// The legend's entries in rows that fit the plot's width.
fn legend_rows(entries: &[Entry]) -> Vec<Vec<&Entry>> {
    let width = WIDTH - MARGIN.0 - MARGIN.2;
    let mut rows: Vec<Vec<&Entry>> = vec![Vec::new()];
    let mut used = 0.0;
    for e in entries {
        let last = rows.last_mut().expect("one row");
        if used + e.width() > width && !last.is_empty() {
            rows.push(vec![e]);
            used = e.width();
        } else {
            last.push(e);
            used += e.width();
        }
    }
    rows
}

impl Canvas {
    /// The title, the subtitle, and the legend between them and the plot, where it hides
    /// no data: every entry, on as many rows as it takes.
    fn new(title: &str, subtitle: &str, legend: &[Entry]) -> Self {
        let mut svg = String::new();
        let _ = write!(
            svg,
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="{FONT}" font-size="13">
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="{x}" y="22" font-size="16" fill="#111">{t}</text>
<text x="{x}" y="40" font-size="12" fill="#555">{s}</text>
"##,
            x = MARGIN.0,
            t = esc(title),
            s = esc(subtitle),
        );
        let rows = legend_rows(legend);
        let top = MARGIN.1 + LEGEND_ROW * (rows.len().max(1) - 1) as f64;
        let mut c = Self { svg, top };
        for (i, row) in rows.iter().enumerate() {
            let y = MARGIN.1 - 12.0 + LEGEND_ROW * i as f64;
            let mut x = MARGIN.0;
            for e in row {
                c.legend_mark(x, y, e);
                c.text((x + 20.0, y), "start", "", &e.name);
                x += e.width();
            }
        }
        c
    }

    fn legend_mark(&mut self, x: f64, y: f64, e: &Entry) {
        let dash = match e.mark {
            Mark::Swatch => return self.rect(x, y - 9.0, 14.0, 10.0, e.colour),
            Mark::Line => "",
            Mark::Dashed => r#" stroke-dasharray="4 3""#,
        };
        let style = format!(r#"stroke="{}" stroke-width="2.2"{dash}"#, e.colour);
        self.line((x, y - 4.0), (x + 16.0, y - 4.0), &style);
    }

    fn left(&self) -> f64 {
        MARGIN.0
    }
    fn right(&self) -> f64 {
        WIDTH - MARGIN.2
    }
    fn top(&self) -> f64 {
        self.top
    }
    fn bottom(&self) -> f64 {
        HEIGHT - MARGIN.3
    }

    fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), style: &str) {
        let _ = writeln!(
            self.svg,
            r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" {style}/>"#
        );
    }

    fn text(&mut self, (x, y): (f64, f64), anchor: &str, extra: &str, s: &str) {
        let _ = writeln!(
            self.svg,
            r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" {extra}>{}</text>"#,
            esc(s)
        );
    }

    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str) {
        let _ = writeln!(
            self.svg,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{fill}"/>"#
        );
    }

    /// Axis names, the plot frame.
    fn frame(&mut self, x_name: &str, y_name: &str) {
        let (l, t, r, b) = (self.left(), self.top(), self.right(), self.bottom());
        let _ = writeln!(
            self.svg,
            r##"<rect x="{l}" y="{t}" width="{}" height="{}" fill="none" stroke="#333"/>"##,
            r - l,
            b - t
        );
        self.text(((l + r) / 2.0, HEIGHT - 18.0), "middle", "", x_name);
        let (cx, cy) = (20.0, (t + b) / 2.0);
        let _ = writeln!(
            self.svg,
            r#"<text x="{cx}" y="{cy}" text-anchor="middle" transform="rotate(-90 {cx} {cy})">{}</text>"#,
            esc(y_name)
        );
    }

    fn finish(mut self) -> String {
        self.svg.push_str("</svg>\n");
        self.svg
    }
}

/// Ticks of a DET axis, in rates.
const DET_TICKS: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9,
];

/// DET curves: APCER (worst species, or pooled: dashed) against BPCER on normal-deviate
/// axes. Rates of 0 lie
/// on the axes' lower edges, which start at the largest tick at most half of the smallest
/// non-zero rate, and at most 1% (a perfect separation still gets a readable plot).
pub fn det_svg(title: &str, subtitle: &str, curves: &[Curve], markers: &[Marker]) -> String {
    let axes = Axes {
        x: "APCER (%): worst species solid, pooled dashed",
        y: "BPCER, bona fide rejected (%)",
    };
    det_svg_on(title, subtitle, curves, markers, axes)
}

/// The two axes' titles of a DET picture: attacks (or impostors) accepted along x, bona
/// fide presentations (or genuine pairs) rejected along y.
#[derive(Clone, Copy)]
pub struct Axes<'a> {
    pub x: &'a str,
    pub y: &'a str,
}

/// [`det_svg`] with other axes: e.g. FMR against FNMR for face verification.
pub fn det_svg_on(
    title: &str,
    subtitle: &str,
    curves: &[Curve],
    markers: &[Marker],
    axes: Axes,
) -> String {
    let lo = det_lowest_tick(curves);
    let hi = *DET_TICKS.last().expect("ticks");
    let legend: Vec<Entry> = curves
        .iter()
        .map(|cv| Entry {
            name: cv.name.to_string(),
            colour: PALETTE[cv.colour % PALETTE.len()],
            mark: if cv.dashed { Mark::Dashed } else { Mark::Line },
        })
        .collect();
    let mut c = Canvas::new(title, subtitle, &legend);
    let (l, t, r, b) = (c.left(), c.top(), c.right(), c.bottom());
    let (plo, phi) = (probit(lo), probit(hi));
    let sx = |v: f64| l + (probit(v.clamp(lo, hi)) - plo) / (phi - plo) * (r - l);
    let sy = |v: f64| b - (probit(v.clamp(lo, hi)) - plo) / (phi - plo) * (b - t);
    for &tick in DET_TICKS.iter().filter(|&&v| v >= lo) {
        // Rates of 0 are drawn on the lower edge, so its label says so.
        let label = if tick == lo {
            format!("≤{}", tick * 100.0)
        } else {
            format!("{}", tick * 100.0)
        };
        c.line(
            (sx(tick), t),
            (sx(tick), b),
            r##"stroke="#e3e3e3" stroke-width="1""##,
        );
        c.line(
            (l, sy(tick)),
            (r, sy(tick)),
            r##"stroke="#e3e3e3" stroke-width="1""##,
        );
        c.text((sx(tick), b + 16.0), "middle", "", &label);
        c.text((l - 6.0, sy(tick) + 4.0), "end", "", &label);
    }
    // Equal error: where APCER = BPCER.
    c.line(
        (sx(lo), sy(lo)),
        (sx(hi), sy(hi)),
        r##"stroke="#aaaaaa" stroke-dasharray="4 4""##,
    );
    for curve in curves {
        draw_curve(&mut c, curve, &sx, &sy);
    }
    for m in markers {
        let (x, y) = (sx(m.apcer), sy(m.bpcer));
        let _ = writeln!(
            c.svg,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="4.5" fill="#ffffff" stroke="{}" stroke-width="2"/>"##,
            PALETTE[0]
        );
        c.text((x + 8.0, y - 6.0), "start", r#"font-size="12""#, m.name);
    }
    c.frame(axes.x, axes.y);
    c.finish()
}

/// The lowest rate tick drawn: below half the smallest non-zero rate, at most 1%.
fn det_lowest_tick(curves: &[Curve]) -> f64 {
    let smallest = curves
        .iter()
        .flat_map(|c| c.points.iter().flat_map(|&(a, b)| [a, b]))
        .filter(|&v| v > 0.0)
        .fold(1.0f64, f64::min);
    DET_TICKS
        .iter()
        .copied()
        .rfind(|&t| t <= (smallest / 2.0).min(0.01))
        .unwrap_or(DET_TICKS[0])
}

fn draw_curve(c: &mut Canvas, curve: &Curve, sx: &dyn Fn(f64) -> f64, sy: &dyn Fn(f64) -> f64) {
    let colour = PALETTE[curve.colour % PALETTE.len()];
    let dash = if curve.dashed {
        r#" stroke-dasharray="6 4""#
    } else {
        ""
    };
    let mut pts = String::new();
    for &(a, bp) in curve.points {
        let _ = write!(pts, "{:.1},{:.1} ", sx(a), sy(bp));
    }
    let _ = writeln!(
        c.svg,
        r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2.2"{dash}/>"#,
        pts.trim_end()
    );
}

/// Histograms of the live score, 20 bins over [0, 1]: bona fide presentations beside the
/// attacks, stacked by species; thresholds as vertical lines. Images without a score (not
/// acquired) are counted in the subtitle, not drawn. The `small` species (name: images)
/// are stacked as one group, named in the legend.
pub fn histogram_svg(
    title: &str,
    samples: &[Sample],
    thresholds: &[Threshold],
    small: &BTreeMap<String, usize>,
) -> String {
    let counts = Counts::of(samples, small);
    let top = (0..BINS)
        .map(|k| counts.bona[k].max(counts.stacked(k)))
        .max()
        .unwrap_or(0)
        .max(1);
    // A round axis maximum: 1, 2 or 5 times a power of ten, with 4-10 gridlines.
    let step = [1usize, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000]
        .into_iter()
        .find(|s| top.div_ceil(*s) <= 8)
        .unwrap_or(top.div_ceil(8));
    let ymax = top.div_ceil(step) * step;
    let subtitle = format!(
        "{} bona fide, {} attacks scored; {} not acquired (no face, unreadable, quality) not drawn",
        counts.bona.iter().sum::<usize>(),
        (0..BINS).map(|k| counts.stacked(k)).sum::<usize>(),
        counts.not_acquired
    );
    let mut c = Canvas::new(title, &subtitle, &counts.legend(small));
    let (l, t, r, b) = (c.left(), c.top(), c.right(), c.bottom());
    let sx = |v: f64| l + v * (r - l);
    let sy = |n: f64| b - n / ymax as f64 * (b - t);
    for i in 0..=ymax / step {
        let n = (i * step) as f64;
        c.line(
            (l, sy(n)),
            (r, sy(n)),
            r##"stroke="#e3e3e3" stroke-width="1""##,
        );
        c.text((l - 6.0, sy(n) + 4.0), "end", "", &(i * step).to_string());
    }
    for i in 0..=10 {
        let v = i as f64 / 10.0;
        c.text((sx(v), b + 16.0), "middle", "", &format!("{v:.1}"));
    }
    counts.draw_bars(&mut c, &sy);
    for (i, th) in thresholds.iter().enumerate() {
        let x = sx(th.value as f64);
        c.line((x, t), (x, b), r##"stroke="#222" stroke-dasharray="5 3""##);
        // Staggered, and haloed in white so bars behind do not hide them.
        c.text(
            (x + 3.0, t + 14.0 + 14.0 * i as f64),
            "start",
            r##"font-size="11" stroke="#ffffff" stroke-width="3" paint-order="stroke""##,
            &format!("{} {:.2}", th.name, th.value),
        );
    }
    c.frame("live score", "images");
    c.finish()
}

/// Score bins of the histogram.
const BINS: usize = 20;
/// The species with too few images, drawn together.
const GROUPED: &str = "";

/// The histogram's counts: bona fide per bin, each attack species per bin (the small
/// species grouped, last), and the images not scored.
struct Counts {
    species: Vec<String>,
    bona: [usize; BINS],
    attacks: Vec<[usize; BINS]>,
    not_acquired: usize,
}

impl Counts {
    fn of(samples: &[Sample], small: &BTreeMap<String, usize>) -> Self {
        let bin = |v: f32| ((v.clamp(0.0, 1.0) * BINS as f32) as usize).min(BINS - 1);
        let group = |sp: &str| if small.contains_key(sp) { GROUPED } else { sp }.to_string();
        let mut species: Vec<String> = samples
            .iter()
            .filter_map(|s| match &s.label {
                Label::Attack { species } => Some(group(species)),
                Label::BonaFide => None,
            })
            .collect();
        species.sort_unstable();
        species.dedup();
        // The grouped small species last.
        if species.first().is_some_and(|s| s == GROUPED) {
            species.rotate_left(1);
        }
        let mut counts = Counts {
            bona: [0; BINS],
            attacks: vec![[0; BINS]; species.len()],
            not_acquired: 0,
            species,
        };
        for s in samples {
            let Ok(v) = s.score else {
                counts.not_acquired += 1;
                continue;
            };
            match &s.label {
                Label::BonaFide => counts.bona[bin(v)] += 1,
                Label::Attack { species: sp } => {
                    let g = group(sp);
                    let i = counts.species.iter().position(|s| *s == g).expect("listed");
                    counts.attacks[i][bin(v)] += 1;
                }
            }
        }
        counts
    }

    /// Attacks of every species in bin `k`.
    fn stacked(&self, k: usize) -> usize {
        self.attacks.iter().map(|a| a[k]).sum()
    }

    fn colour(&self, i: usize) -> &'static str {
        if self.species[i] == GROUPED {
            SMALL_SPECIES
        } else {
            PALETTE[(i + 1) % PALETTE.len()]
        }
    }

    fn legend(&self, small: &BTreeMap<String, usize>) -> Vec<Entry> {
        let mut legend = vec![Entry {
            name: "bona fide".into(),
            colour: BONA_FIDE,
            mark: Mark::Swatch,
        }];
        for (i, sp) in self.species.iter().enumerate() {
            let name = if sp == GROUPED {
                let names: Vec<String> = small.iter().map(|(k, n)| format!("{k} ({n})")).collect();
                format!(
                    "{} small species: {}",
                    small.len(),
                    clipped(&names.join(", "), 70)
                )
            } else {
                format!("attack: {sp}")
            };
            legend.push(Entry {
                name,
                colour: self.colour(i),
                mark: Mark::Swatch,
            });
        }
        legend
    }

    /// Each bin's bona fide bar, and beside it the attacks stacked by species.
    fn draw_bars(&self, c: &mut Canvas, sy: &dyn Fn(f64) -> f64) {
        let (l, r, b) = (c.left(), c.right(), c.bottom());
        let bw = (r - l) / BINS as f64;
        for k in 0..BINS {
            let x = l + k as f64 * bw;
            if self.bona[k] > 0 {
                let h = b - sy(self.bona[k] as f64);
                c.rect(x + 1.0, b - h, bw / 2.0 - 1.0, h, BONA_FIDE);
            }
            let mut base = 0usize;
            for (i, a) in self.attacks.iter().enumerate() {
                if a[k] == 0 {
                    continue;
                }
                let (y0, y1) = (sy(base as f64), sy((base + a[k]) as f64));
                c.rect(x + bw / 2.0, y1, bw / 2.0 - 1.0, y0 - y1, self.colour(i));
                base += a[k];
            }
        }
    }
}

/// `s` cut to `max` characters, marked when cut (the report lists everything).
fn clipped(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let head: String = s.chars().take(max).collect();
    format!("{head}… (see the report)")
}

/// Rasterises one of these pictures at `scale` times its size.
pub fn png(svg: &str, scale: f32) -> Result<Vec<u8>, PlotError> {
    use resvg::{tiny_skia, usvg};
    let mut fonts = usvg::fontdb::Database::new();
    fonts.load_font_data(epaint_default_fonts::UBUNTU_LIGHT.to_vec());
    fonts.set_sans_serif_family("Ubuntu");
    let opt = usvg::Options {
        fontdb: Arc::new(fonts),
        ..Default::default()
    };
    let tree = usvg::Tree::from_str(svg, &opt).map_err(|e| PlotError::Svg(e.to_string()))?;
    let size = tree
        .size()
        .to_int_size()
        .scale_by(scale)
        .ok_or(PlotError::Canvas(0, 0))?;
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or(PlotError::Canvas(size.width(), size.height()))?;
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| PlotError::Png(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probit_matches_normal_quantiles() {
        for (p, z) in [
            (0.5, 0.0),
            (0.975, 1.959964),
            (0.01, -2.326348),
            (0.001, -3.090232),
            (0.8, 0.841621),
        ] {
            assert!((probit(p) - z).abs() < 1e-5, "probit({p}) = {}", probit(p));
        }
    }

    fn samples() -> Vec<Sample> {
        let mut s = Vec::new();
        for i in 0..40 {
            s.push(Sample {
                label: Label::BonaFide,
                score: Ok(0.5 + i as f32 / 80.0),
            });
            s.push(Sample {
                label: Label::Attack {
                    species: if i % 4 == 0 { "replay" } else { "print" }.into(),
                },
                score: Ok(i as f32 / 70.0),
            });
        }
        s.push(Sample {
            label: Label::BonaFide,
            score: Err(crate::Failure::NoFace),
        });
        s
    }

    /// Pixels of the rendered picture that have `colour` (within a little anti-aliasing).
    fn count_colour(png_bytes: &[u8], colour: &str) -> usize {
        let want: Vec<u8> = (1..7)
            .step_by(2)
            .map(|i| u8::from_str_radix(&colour[i..i + 2], 16).unwrap())
            .collect();
        let px = resvg::tiny_skia::Pixmap::decode_png(png_bytes).unwrap();
        px.pixels()
            .iter()
            .filter(|p| {
                let c = p.demultiply();
                [c.red(), c.green(), c.blue()]
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.abs_diff(*b) <= 8)
            })
            .count()
    }

    #[test]
    fn histogram_draws_every_group_and_renders() {
        let s = samples();
        let svg = histogram_svg(
            "scores",
            &s,
            &[Threshold {
                name: "balanced",
                value: 0.5,
            }],
            &BTreeMap::new(),
        );
        assert!(svg.contains("40 bona fide, 40 attacks scored; 1 not acquired"));
        assert!(svg.contains("attack: print") && svg.contains("attack: replay"));
        assert!(svg.contains("balanced 0.50"));
        let png = png(&svg, 1.0).unwrap();
        let px = resvg::tiny_skia::Pixmap::decode_png(&png).unwrap();
        assert_eq!((px.width(), px.height()), (WIDTH as u32, HEIGHT as u32));
        // Bars of each group are drawn in its colour, and the text has dark pixels.
        for colour in [BONA_FIDE, PALETTE[1], PALETTE[2]] {
            assert!(count_colour(&png, colour) > 200, "{colour} not drawn");
        }
        // The title (top 30 rows) has dark pixels: text is rendered with the built-in font.
        let px = resvg::tiny_skia::Pixmap::decode_png(&png).unwrap();
        let dark = px.pixels()[..30 * px.width() as usize]
            .iter()
            .filter(|p| p.red() < 96 && p.green() < 96 && p.blue() < 96)
            .count();
        assert!(dark > 30, "title not drawn ({dark} dark pixels)");
    }

    #[test]
    fn a_perfect_separation_still_gets_axes_from_one_percent() {
        let pts = [(1.0, 0.0), (0.0, 0.0), (0.0, 1.0)];
        let svg = det_svg(
            "DET",
            "",
            &[Curve {
                name: "perfect",
                points: &pts,
                colour: 0,
                dashed: false,
            }],
            &[],
        );
        assert!(svg.contains(">≤1</text>"), "{svg}");
        assert!(svg.contains(">90</text>"));
    }

    #[test]
    fn det_curve_lies_on_probit_axes() {
        let pts = [(0.0, 0.9), (0.05, 0.2), (0.2, 0.05), (0.5, 0.0)];
        let svg = det_svg(
            "DET",
            "",
            &[Curve {
                name: "a",
                points: &pts,
                colour: 0,
                dashed: false,
            }],
            &[Marker {
                name: "balanced",
                apcer: 0.05,
                bpcer: 0.2,
            }],
        );
        // Smallest non-zero rate 5%: the axes start at 1% (half of it, capped at 1%);
        // (5%, 20%) sits where both axes' normal deviates say.
        let (l, t, r, b) = (MARGIN.0, MARGIN.1, WIDTH - MARGIN.2, HEIGHT - MARGIN.3);
        let span = probit(0.9) - probit(0.01);
        let x = l + (probit(0.05) - probit(0.01)) / span * (r - l);
        let y = b - (probit(0.2) - probit(0.01)) / span * (b - t);
        assert!(
            svg.contains(&format!(r#"cx="{x:.1}" cy="{y:.1}""#)),
            "marker not at ({x:.1}, {y:.1}):\n{svg}"
        );
        // Rates of 0 lie on the lower edges: (0, 90%) on the left, (50%, 0) at the bottom.
        let x50 = l + (probit(0.5) - probit(0.01)) / span * (r - l);
        assert!(svg.contains(&format!("{l:.1},{t:.1} ")), "{svg}");
        assert!(svg.contains(&format!("{x50:.1},{b:.1}\"")), "{svg}");
        let png = png(&svg, 2.0).unwrap();
        let px = resvg::tiny_skia::Pixmap::decode_png(&png).unwrap();
        assert_eq!(px.width(), 2 * WIDTH as u32);
        assert!(count_colour(&png, PALETTE[0]) > 500, "curve not drawn");
    }
}
