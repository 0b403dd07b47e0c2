//! Duplicates inside a split, copies across splits (leakage), identical inputs with different labels,
//! and near-duplicates, all in time linear in the number of rows.
//!
//! **Exact copies** are found by hashing: every row of the three splits gets the blake3 hash of its
//! feature bytes (`-0.0` written as `0.0`), truncated to 128 bits (so a false match is as likely as
//! guessing a random 128-bit number), and rows with equal hashes form a group. A group with rows
//! from two splits is leakage: a model that memorizes the train copy answers the test copy right,
//! so the test metric rewards memorization. A group with two different labels is label noise, or
//! features that do not determine the label.
//!
//! **Near-duplicates** (the same item re-encoded, resized or re-measured) cannot be found by
//! hashing raw values: one rounding difference changes the hash. Rounding every value to a coarse
//! grid does not work either, because in hundreds of dimensions some value always sits next to a
//! grid line. So this uses locality-sensitive hashing with verification:
//!
//! 1. Each row is reduced to a sketch: images are mean-pooled per channel to at most 8x8 cells
//!    (noise averages out, the layout stays); table rows are used as they are.
//! 2. Each of 10 bands picks 8 sketch dimensions at random and rounds them to a grid of half a
//!    train standard deviation with a random offset; rows whose 8 rounded values all agree land in
//!    the same bucket. Close rows share at least one bucket with high probability; unrelated rows
//!    almost never share one.
//! 3. Rows sharing a bucket are verified on their full values: they are near-duplicates when the
//!    root mean square of their difference, in train standard deviations (per channel or column),
//!    is at most [`NEAR_DUPLICATE_MAX_RMS`]. Verified pairs are joined with union-find.
//!
//! Every step is linear: bucketing sorts one key per row and band, and each row of a bucket is
//! compared with at most 8 representatives of it (for images first on the pooled cells, whose
//! weighted difference bounds the full one from below), so a crowded bucket cannot make it
//! quadratic. The price is that detection is probabilistic. A pair within a fifth of the threshold
//! shares a bucket in at least one band with probability above 99.99%; a pair near the threshold
//! may be missed, and so may a pair that only ever meets in crowded buckets (more than 8 unrelated
//! rows), which is rare except for nearly blank data. Measured: 25 of 25 shapes images re-encoded
//! with ±8/255 per pixel (0.06 std RMS) are found among 10,000. With fewer than
//! [`NEAR_DUPLICATE_MIN_FEATURES`] features, close rows are expected (3,000 points in a plane have
//! neighbours at any distance) and the near-duplicate check is skipped.

use serde_json::{Value, json};

use crate::format::{class_name, fmt_count, fmt_num, num, pct};
use crate::stats::stats;
use crate::{Check, Splits};
use regimen_data::{Layout, Samples, SplitMix64, SplitName, Targets, Task, mix64};

/// Fraction of a split made of copies of other rows of the same split above which it gets a WARN
/// (`duplicates`, and `near_duplicates` for near-copies). A few copies in a large dataset are
/// harmless; a percent or more over-weights those samples in training and in the metrics.
pub const DUPLICATE_WARN_FRACTION: f64 = 0.01;

/// Fraction of val or test rows that are exact copies of rows of an earlier split above which
/// leakage FAILs (any leaked row WARNs). Below 0.1%, leaked rows move a metric by less than 0.1
/// points, under the sampling noise of any test set smaller than a hundred thousand samples; above
/// it, the test metric is measurably inflated by memorization.
pub const LEAKAGE_FAIL_FRACTION: f64 = 0.001;

/// Fraction of val or test rows that are near-copies (not exact copies) of rows of an earlier split
/// above which `near_duplicates` WARNs. The same bar as for leakage: near-copies leak too, but
/// their detection is approximate, so they warn rather than fail.
pub const NEAR_DUPLICATE_WARN_FRACTION: f64 = 0.001;

/// Largest root mean square difference between two rows, in train standard deviations per
/// channel or column, for them to count as near-duplicates. At 0.1, a re-encoded image (JPEG at a
/// high quality, a resize and back) or a table row with rounded values qualifies; two different
/// images of one class, or two independent noisy renderings of one shape, differ by several times
/// more.
pub const NEAR_DUPLICATE_MAX_RMS: f64 = 0.1;

/// Fewest sketch dimensions (pooled image cells or table columns) for the near-duplicate check to
/// run: in fewer dimensions, close rows are normal neighbours rather than copies.
pub const NEAR_DUPLICATE_MIN_FEATURES: usize = 8;

/// Largest side of the pooled image sketch.
const SKETCH_SIDE: usize = 8;
/// Grid step of a band, in train standard deviations.
const STEP: f32 = 0.5;
/// Number of bands.
const BANDS: usize = 10;
/// Sketch dimensions per band.
const BAND_DIMS: usize = 8;
/// Representatives a bucket's rows are verified against.
const BUCKET_REPS: usize = 8;
/// Example pairs listed per check.
const EXAMPLES: usize = 5;
/// Seed of the bands' dimensions and offsets: fixed, so that reports are reproducible.
const BAND_SEED: u64 = 0x5EED_D0C7_0B5E_55ED;

/// Row flag: a val or test row whose group also has a train row.
const IN_TRAIN: u8 = 1;
/// Row flag: a test row whose group also has a val row.
const IN_VAL: u8 = 2;
/// Row flag: a row whose group has an earlier row of the same split.
const WITHIN: u8 = 4;

/// The rows of the three splits under one global index: train first, then val, then test.
struct AllRows<'a> {
    task: &'a Task,
    splits: [&'a Samples; 3],
    start: [usize; 4],
    len: usize,
}

impl<'a> AllRows<'a> {
    fn new(splits: &Splits<'a>) -> AllRows<'a> {
        let len = splits.train.sample_len();
        let count =
            |s: &Samples| if len == 0 || s.sample_len() != len { 0 } else { s.len().min(s.features.len() / len) };
        let sizes = [count(splits.train), count(splits.val), count(splits.test)];
        AllRows {
            task: splits.task,
            splits: [splits.train, splits.val, splits.test],
            start: [0, sizes[0], sizes[0] + sizes[1], sizes[0] + sizes[1] + sizes[2]],
            len,
        }
    }

    fn n(&self) -> usize {
        self.start[3]
    }

    fn split(&self, g: usize) -> usize {
        if g < self.start[1] {
            0
        } else if g < self.start[2] {
            1
        } else {
            2
        }
    }

    fn local(&self, g: usize) -> usize {
        g - self.start[self.split(g)]
    }

    fn row(&self, g: usize) -> &'a [f32] {
        let i = self.local(g);
        &self.splits[self.split(g)].features[i * self.len..(i + 1) * self.len]
    }

    /// The label as comparable bits: the class, or the value's bits (`-0.0` as `0.0`).
    fn label(&self, g: usize) -> u32 {
        match &self.splits[self.split(g)].targets {
            Targets::Classes(c) => c.get(self.local(g)).copied().unwrap_or(u32::MAX),
            Targets::Values(v) => v.get(self.local(g)).map_or(u32::MAX, |&x| if x == 0.0 { 0 } else { x.to_bits() }),
        }
    }

    /// The label for a person: the class name, or the value.
    fn label_text(&self, g: usize) -> String {
        match &self.splits[self.split(g)].targets {
            Targets::Classes(_) => class_name(self.task, self.label(g) as usize),
            Targets::Values(v) => v.get(self.local(g)).map_or_else(String::new, |&x| fmt_num(f64::from(x))),
        }
    }

    /// `train 12`.
    fn name(&self, g: usize) -> String {
        format!("{} {}", split_name(self.split(g)), self.local(g))
    }

    fn size(&self, split: usize) -> usize {
        self.start[split + 1] - self.start[split]
    }
}

fn split_name(split: usize) -> SplitName {
    [SplitName::Train, SplitName::Val, SplitName::Test][split]
}

/// For each row, the flags of its group (given as one representative per row), and per group the
/// first row of each split.
struct Groups {
    flags: Vec<u8>,
    first: Vec<[u32; 3]>,
}

fn group_flags(rows: &AllRows<'_>, group: &[u32]) -> Groups {
    let n = rows.n();
    let mut present = vec![0u8; n];
    let mut first = vec![[u32::MAX; 3]; n];
    for (g, &r) in group.iter().enumerate().take(n) {
        let (r, s) = (r as usize, rows.split(g));
        present[r] |= 1 << s;
        if first[r][s] == u32::MAX {
            first[r][s] = g as u32;
        }
    }
    let flags = (0..n)
        .map(|g| {
            let (r, s) = (group[g] as usize, rows.split(g));
            let mut f = 0;
            if s > 0 && present[r] & 1 != 0 {
                f |= IN_TRAIN;
            }
            if s == 2 && present[r] & 2 != 0 {
                f |= IN_VAL;
            }
            if first[r][s] != g as u32 {
                f |= WITHIN;
            }
            f
        })
        .collect();
    Groups { flags, first }
}

/// Counts of flagged rows, with example pairs (partner, row).
#[derive(Debug, Default)]
struct Overlap {
    val_in_train: usize,
    test_in_train: usize,
    test_in_val: usize,
    within: [usize; 3],
    cross_examples: Vec<(usize, usize)>,
    within_examples: Vec<(usize, usize)>,
}

/// Counts the rows whose flags (after `mask_out`, per row) are set.
fn overlap(rows: &AllRows<'_>, group: &[u32], groups: &Groups, mask_out: Option<&[u8]>) -> Overlap {
    let mut o = Overlap::default();
    for g in 0..rows.n() {
        let f = groups.flags[g] & !mask_out.map_or(0, |m| m[g]);
        if f == 0 {
            continue;
        }
        let (s, first) = (rows.split(g), &groups.first[group[g] as usize]);
        if f & IN_TRAIN != 0 {
            if s == 1 {
                o.val_in_train += 1;
            } else {
                o.test_in_train += 1;
            }
            if o.cross_examples.len() < EXAMPLES {
                o.cross_examples.push((first[0] as usize, g));
            }
        }
        if f & IN_VAL != 0 {
            o.test_in_val += 1;
            if f & IN_TRAIN == 0 && o.cross_examples.len() < EXAMPLES {
                o.cross_examples.push((first[1] as usize, g));
            }
        }
        if f & WITHIN != 0 {
            o.within[s] += 1;
            if o.within_examples.len() < EXAMPLES {
                o.within_examples.push((first[s] as usize, g));
            }
        }
    }
    o
}

/// `duplicates`, `leakage`, `conflicting_labels` and `near_duplicates`, from one hashing pass and
/// one near-duplicate pass over all rows of the three splits.
///
/// - `duplicates`: WARN when more than [`DUPLICATE_WARN_FRACTION`] of a split are exact copies of
///   other rows of that split.
/// - `leakage`: FAIL when more than [`LEAKAGE_FAIL_FRACTION`] of val rows are exact copies of train
///   rows, or of test rows copies of train or val rows; WARN for fewer; PASS for none.
/// - `conflicting_labels`: for classification, WARN when identical inputs carry different labels
///   (anywhere), with the number of rows no model can get right; for regression, reported only.
/// - `near_duplicates`: WARN when more than [`NEAR_DUPLICATE_WARN_FRACTION`] of val or test rows
///   are near-copies (not exact copies) of earlier splits' rows, or more than
///   [`DUPLICATE_WARN_FRACTION`] of a split are near-copies of each other; see the module docs.
///
/// Rows are named `split index` with 0-based indices into each split. A val or test split whose
/// sample shape differs from train's (a bug in the caller) is left out.
pub fn duplicate_checks(splits: &Splits<'_>) -> Vec<Check> {
    let rows = AllRows::new(splits);
    let (exact, order) = exact_groups(&rows);
    let exact_groups = group_flags(&rows, &exact);
    let exact_overlap = overlap(&rows, &exact, &exact_groups, None);
    vec![
        duplicates_check(&rows, &exact_overlap),
        leakage_check(&rows, &exact_overlap),
        conflicts_check(&rows, &exact, &order),
        near_check(splits, &rows, &exact, &exact_groups),
    ]
}

/// For each row, the first row (global index) with the same feature bytes; and all rows sorted by
/// (hash, index), so that each exact group is a run.
fn exact_groups(rows: &AllRows<'_>) -> (Vec<u32>, Vec<u32>) {
    let n = rows.n();
    let mut buffer = vec![0u8; rows.len * 4];
    let mut keyed: Vec<(u128, u32)> = (0..n)
        .map(|g| {
            for (bytes, &v) in buffer.chunks_exact_mut(4).zip(rows.row(g)) {
                // `v + 0.0` turns -0.0 into 0.0 and leaves every other value as it is.
                bytes.copy_from_slice(&(v + 0.0).to_le_bytes());
            }
            let hash = blake3::hash(&buffer);
            let mut first = [0u8; 16];
            first.copy_from_slice(&hash.as_bytes()[..16]);
            (u128::from_le_bytes(first), g as u32)
        })
        .collect();
    keyed.sort_unstable();
    let mut group = vec![0u32; n];
    let mut start = 0;
    for i in 0..keyed.len() {
        if keyed[i].0 != keyed[start].0 {
            start = i;
        }
        group[keyed[i].1 as usize] = keyed[start].1;
    }
    (group, keyed.into_iter().map(|(_, g)| g).collect())
}

fn example_text(rows: &AllRows<'_>, pairs: &[(usize, usize)], joiner: &str) -> String {
    pairs
        .iter()
        .take(3)
        .map(|&(a, b)| format!("{} {joiner} {}", rows.name(b), rows.name(a)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn examples_json(rows: &AllRows<'_>, pairs: &[(usize, usize)]) -> Value {
    Value::Array(pairs.iter().map(|&(a, b)| json!([rows.name(a), rows.name(b)])).collect())
}

fn per_split(counts: [usize; 3]) -> Value {
    json!({"train": counts[0], "val": counts[1], "test": counts[2]})
}

fn duplicates_check(rows: &AllRows<'_>, o: &Overlap) -> Check {
    let fractions: Vec<f64> = (0..3).map(|s| o.within[s] as f64 / rows.size(s).max(1) as f64).collect();
    let total: usize = o.within.iter().sum();
    let worst = (0..3).max_by(|&a, &b| fractions[a].total_cmp(&fractions[b])).unwrap_or(0);
    let check = if total == 0 {
        Check::pass("duplicates", "No row appears twice within a split.")
    } else {
        let counts: Vec<String> = (0..3)
            .filter(|&s| o.within[s] > 0)
            .map(|s| {
                let name = split_name(s);
                format!(
                    "{} of {} {name} rows ({}) copy another {name} row",
                    fmt_count(o.within[s]),
                    fmt_count(rows.size(s)),
                    pct(fractions[s])
                )
            })
            .collect();
        let sentence = format!("{}, e.g. {}.", counts.join("; "), example_text(rows, &o.within_examples, "="));
        if fractions[worst] > DUPLICATE_WARN_FRACTION {
            Check::warn(
                "duplicates",
                format!("{sentence} Copies weigh those samples more in training and in the metrics."),
            )
            .with_advice(
                "Deduplicate each split (keep one copy of each row), unless the copies are deliberate oversampling.",
            )
        } else {
            Check::pass("duplicates", format!("{sentence} Few enough to be harmless."))
        }
    };
    check
        .with("within", per_split(o.within))
        .with("fraction", json!({"train": num(fractions[0]), "val": num(fractions[1]), "test": num(fractions[2])}))
        .with("examples", examples_json(rows, &o.within_examples))
}

fn leakage_check(rows: &AllRows<'_>, o: &Overlap) -> Check {
    let parts = [
        (o.val_in_train, rows.size(1), "val", "train"),
        (o.test_in_train, rows.size(2), "test", "train"),
        (o.test_in_val, rows.size(2), "test", "val"),
    ];
    let worst = parts.iter().map(|(c, n, ..)| *c as f64 / (*n).max(1) as f64).fold(0.0, f64::max);
    let found: Vec<String> = parts
        .iter()
        .filter(|(c, ..)| *c > 0)
        .map(|(c, n, a, b)| {
            format!(
                "{} of {} {a} rows ({}) copy a {b} row",
                fmt_count(*c),
                fmt_count(*n),
                pct(*c as f64 / (*n).max(1) as f64)
            )
        })
        .collect();
    let check = if found.is_empty() {
        Check::pass("leakage", "No val or test row is an exact copy of a train row, and no test row of a val row.")
    } else {
        let message = format!(
            "{}, e.g. {}: metrics on them reward memorization and will be optimistic.",
            found.join("; "),
            example_text(rows, &o.cross_examples, "=")
        );
        let check = if worst > LEAKAGE_FAIL_FRACTION {
            Check::fail("leakage", message)
        } else {
            Check::warn("leakage", message)
        };
        check.with_advice(
            "Remove from val and test every row that also appears in an earlier split, or deduplicate the whole dataset before splitting; if the data shipped its own test split, that split overlaps the training data.",
        )
    };
    check
        .with("val_in_train", o.val_in_train)
        .with("test_in_train", o.test_in_train)
        .with("test_in_val", o.test_in_val)
        .with("examples", examples_json(rows, &o.cross_examples))
}

fn conflicts_check(rows: &AllRows<'_>, group: &[u32], order: &[u32]) -> Check {
    let (mut groups, mut conflicting_rows, mut unavoidable) = (0usize, 0usize, 0usize);
    let mut examples: Vec<(usize, usize)> = Vec::new();
    let mut labels: Vec<u32> = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let r = group[order[i] as usize];
        let mut j = i + 1;
        while j < order.len() && group[order[j] as usize] == r {
            j += 1;
        }
        if j - i > 1 {
            let run = &order[i..j];
            let a = run[0] as usize;
            if let Some(&b) = run.iter().find(|&&g| rows.label(g as usize) != rows.label(a)) {
                groups += 1;
                conflicting_rows += run.len();
                labels.clear();
                labels.extend(run.iter().map(|&g| rows.label(g as usize)));
                labels.sort_unstable();
                let mut most = 0;
                let mut k = 0;
                while k < labels.len() {
                    let same = labels[k..].iter().take_while(|&&l| l == labels[k]).count();
                    most = most.max(same);
                    k += same;
                }
                unavoidable += run.len() - most;
                if examples.len() < EXAMPLES {
                    examples.push((a, b as usize));
                }
            }
        }
        i = j;
    }
    let classification = matches!(rows.task, Task::Classification { .. });
    let example = examples
        .first()
        .map(|&(a, b)| {
            let quoted =
                |g: usize| if classification { format!("\"{}\"", rows.label_text(g)) } else { rows.label_text(g) };
            format!("{} is {} but {} is {}", rows.name(a), quoted(a), rows.name(b), quoted(b))
        })
        .unwrap_or_default();
    let check = match (groups, classification) {
        (0, true) => Check::pass("conflicting_labels", "No input occurs with two different labels."),
        (0, false) => Check::pass("conflicting_labels", "No input occurs with two different targets."),
        (_, true) => Check::warn(
            "conflicting_labels",
            format!(
                "{} inputs occur with different labels ({} rows), e.g. {example}: label noise, or features that do not determine the label. Any model gets at least {} of these rows wrong.",
                fmt_count(groups),
                fmt_count(conflicting_rows),
                fmt_count(unavoidable)
            ),
        )
        .with_advice("Look at these rows: fix the labels that are wrong; if both labels are right, the features lack what the label depends on."),
        (_, false) => Check::pass(
            "conflicting_labels",
            format!(
                "{} inputs occur with different targets ({} rows), e.g. {example}: measurement noise that bounds the error any model can reach.",
                fmt_count(groups),
                fmt_count(conflicting_rows)
            ),
        ),
    };
    let examples = Value::Array(
        examples
            .iter()
            .map(|&(a, b)| json!([{"row": rows.name(a), "label": rows.label_text(a)}, {"row": rows.name(b), "label": rows.label_text(b)}]))
            .collect(),
    );
    let check = check.with("groups", groups).with("rows", conflicting_rows).with("examples", examples);
    if classification { check.with("unavoidable_errors", unavoidable) } else { check }
}

/// Union-find over row indices; the root of a set is its smallest index.
struct UnionFind {
    parent: Vec<u32>,
}

impl UnionFind {
    fn new(n: usize) -> UnionFind {
        UnionFind { parent: (0..n as u32).collect() }
    }

    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let grand = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = grand;
            x = grand;
        }
        x
    }

    fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent[hi as usize] = lo;
        }
    }
}

/// The sketch of every row: pooled images, or the rows themselves for tables.
struct Sketch {
    dims: usize,
    /// `n * dims` pooled values for images; empty for tables (the rows are the sketch).
    pooled: Vec<f32>,
    /// Per sketch dimension, one over the band grid step.
    inv_step: Vec<f32>,
    /// Per pooled cell, its pixel count over the channel's variance; empty for tables.
    cell_weight: Vec<f32>,
    /// What the sketch is, for the message.
    description: String,
}

impl Sketch {
    fn new(rows: &AllRows<'_>, layout: Layout, std: &[f64]) -> Sketch {
        let inv = |s: f64| if s > 1e-12 { 1.0 / (STEP * s as f32) } else { 1.0 };
        match layout {
            Layout::Image { channels, height, width } if height > 0 && width > 0 => {
                let (bh, bw) = (height.div_ceil(SKETCH_SIDE), width.div_ceil(SKETCH_SIDE));
                let (gh, gw) = (height.div_ceil(bh), width.div_ceil(bw));
                let dims = channels * gh * gw;
                // Pixels per cell (the last row and column of cells may be smaller).
                let cell_size: Vec<f32> = (0..dims)
                    .map(|k| {
                        let (cy, cx) = ((k % (gh * gw)) / gw, k % gw);
                        ((height.min((cy + 1) * bh) - cy * bh) * (width.min((cx + 1) * bw) - cx * bw)) as f32
                    })
                    .collect();
                let mut pooled = vec![0.0f32; rows.n() * dims];
                for (g, out) in pooled.chunks_exact_mut(dims.max(1)).enumerate().take(rows.n()) {
                    for (c, plane) in rows.row(g).chunks_exact(height * width).enumerate() {
                        let cells = &mut out[c * gh * gw..(c + 1) * gh * gw];
                        for (y, line) in plane.chunks_exact(width).enumerate() {
                            let cell_row = &mut cells[(y / bh) * gw..(y / bh + 1) * gw];
                            for (cell, block) in cell_row.iter_mut().zip(line.chunks(bw)) {
                                *cell += block.iter().sum::<f32>();
                            }
                        }
                    }
                    for (o, size) in out.iter_mut().zip(&cell_size) {
                        *o /= size;
                    }
                }
                let inv_step = (0..dims).map(|k| inv(std.get(k / (gh * gw)).copied().unwrap_or(1.0))).collect();
                let cell_weight = (0..dims)
                    .map(|k| {
                        let s = std.get(k / (gh * gw)).copied().unwrap_or(1.0);
                        let inv_std = if s > 1e-12 { 1.0 / s as f32 } else { 1.0 };
                        cell_size[k] * inv_std * inv_std
                    })
                    .collect();
                Sketch { dims, pooled, inv_step, cell_weight, description: format!("{gh}x{gw} mean-pooled images") }
            }
            _ => Sketch {
                dims: rows.len,
                pooled: Vec::new(),
                inv_step: std.iter().map(|&s| inv(s)).collect(),
                cell_weight: Vec::new(),
                description: "rows".into(),
            },
        }
    }

    fn row<'r>(&'r self, rows: &AllRows<'r>, g: usize) -> &'r [f32] {
        if self.pooled.is_empty() { rows.row(g) } else { &self.pooled[g * self.dims..(g + 1) * self.dims] }
    }

    /// False when rows `a` and `b` cannot be within `limit` (a sum of squared differences in
    /// standard deviations over all values): the pixel-count-weighted squared difference of the cell
    /// means is a lower bound of it (by Cauchy–Schwarz), so this rejects most candidates on a few
    /// dozen values without reading the full rows.
    fn may_be_close(&self, a: usize, b: usize, limit: f32) -> bool {
        if self.cell_weight.is_empty() {
            return true;
        }
        let (sa, sb) =
            (&self.pooled[a * self.dims..(a + 1) * self.dims], &self.pooled[b * self.dims..(b + 1) * self.dims]);
        let bound: f32 = sa.iter().zip(sb).zip(&self.cell_weight).map(|((x, y), w)| (x - y) * (x - y) * w).sum();
        bound.is_nan() || bound <= limit
    }
}

/// The RMS difference of two rows in train standard deviations, or `None` when above `max_rms`.
fn close(a: &[f32], b: &[f32], inv_std: &[f32], max_rms: f64) -> Option<f64> {
    let limit = (max_rms * max_rms * a.len() as f64) as f32;
    let mut sum = 0.0f32;
    for ((ca, cb), cs) in a.chunks(32).zip(b.chunks(32)).zip(inv_std.chunks(32)) {
        for ((&x, &y), &s) in ca.iter().zip(cb).zip(cs) {
            let d = (x - y) * s;
            sum += if d.is_nan() && x.to_bits() == y.to_bits() { 0.0 } else { d * d };
        }
        if sum.is_nan() || sum > limit {
            return None;
        }
    }
    Some(f64::from(sum / a.len().max(1) as f32).sqrt())
}

/// Near-duplicate groups: one representative (the smallest row index) per row.
fn near_groups(rows: &AllRows<'_>, exact: &[u32], sketch: &Sketch, inv_std: &[f32]) -> Vec<u32> {
    let n = rows.n();
    let mut sets = UnionFind::new(n);
    for (g, &first) in exact.iter().enumerate().take(n) {
        sets.union(first, g as u32);
    }
    let mut stream = SplitMix64::new(BAND_SEED);
    // The bound on the sum of squares that `close` allows, with a little slack for rounding.
    let limit = (NEAR_DUPLICATE_MAX_RMS * NEAR_DUPLICATE_MAX_RMS * rows.len as f64 * 1.001) as f32;
    let mut keyed: Vec<(u64, u32)> = Vec::with_capacity(n);
    let mut reps: Vec<u32> = Vec::with_capacity(BUCKET_REPS);
    for band in 0..BANDS {
        // Dimensions by a partial Fisher–Yates shuffle, offsets uniform in [0, 1).
        let mut dims: Vec<usize> = (0..sketch.dims).collect();
        let k = BAND_DIMS.min(sketch.dims);
        for i in 0..k {
            let j = i + (stream.next_u64() % (sketch.dims - i) as u64) as usize;
            dims.swap(i, j);
        }
        let chosen: Vec<(usize, f32, f32)> = dims[..k]
            .iter()
            .map(|&d| (d, sketch.inv_step[d], (stream.next_u64() >> 40) as f32 / (1u64 << 24) as f32))
            .collect();
        keyed.clear();
        keyed.extend((0..n).map(|g| {
            let s = sketch.row(rows, g);
            let mut h = mix64(band as u64 ^ BAND_SEED);
            for &(d, inv, offset) in &chosen {
                let q = (s[d] * inv + offset).floor();
                let q = if q.is_finite() { q as i64 } else { i64::MIN };
                h = mix64(h ^ q as u64);
            }
            (h, g as u32)
        }));
        keyed.sort_unstable();
        let mut i = 0;
        while i < n {
            let mut j = i + 1;
            while j < n && keyed[j].0 == keyed[i].0 {
                j += 1;
            }
            if j - i > 1 {
                reps.clear();
                for &(_, m) in &keyed[i..j] {
                    let mut joined = false;
                    for &r in &reps {
                        if sets.find(r) == sets.find(m) {
                            joined = true;
                        } else if sketch.may_be_close(r as usize, m as usize, limit)
                            && close(rows.row(r as usize), rows.row(m as usize), inv_std, NEAR_DUPLICATE_MAX_RMS)
                                .is_some()
                        {
                            sets.union(r, m);
                            joined = true;
                        }
                        if joined {
                            break;
                        }
                    }
                    if !joined && reps.len() < BUCKET_REPS {
                        reps.push(m);
                    }
                }
            }
            i = j;
        }
    }
    (0..n as u32).map(|g| sets.find(g)).collect()
}

fn near_check(splits: &Splits<'_>, rows: &AllRows<'_>, exact: &[u32], exact_groups: &Groups) -> Check {
    let layout = splits.train.layout();
    let train_stats = stats(splits.train);
    let sketch = Sketch::new(rows, layout, &train_stats.std);
    if sketch.dims < NEAR_DUPLICATE_MIN_FEATURES || rows.n() == 0 {
        return Check::pass(
            "near_duplicates",
            format!(
                "Skipped: with {} feature(s) per row, close rows are ordinary neighbours rather than copies; exact copies are checked above.",
                sketch.dims
            ),
        )
        .with("skipped", true)
        .with("sketch_dims", sketch.dims);
    }
    let group_len = layout.group_len().max(1);
    let inv_std: Vec<f32> = (0..rows.len)
        .map(|j| {
            let s = train_stats.std.get(j / group_len).copied().unwrap_or(1.0);
            if s > 1e-12 { 1.0 / s as f32 } else { 1.0 }
        })
        .collect();
    let near = near_groups(rows, exact, &sketch, &inv_std);
    let groups = group_flags(rows, &near);
    let o = overlap(rows, &near, &groups, Some(&exact_groups.flags));
    let rms = |(a, b): (usize, usize)| close(rows.row(a), rows.row(b), &inv_std, f64::INFINITY).unwrap_or(f64::NAN);
    let (val, test) = (rows.size(1).max(1) as f64, rows.size(2).max(1) as f64);
    let cross_worst = (o.val_in_train as f64 / val).max(o.test_in_train as f64 / test).max(o.test_in_val as f64 / test);
    let within_worst = (0..3).map(|s| o.within[s] as f64 / rows.size(s).max(1) as f64).fold(0.0, f64::max);
    let mut found = Vec::new();
    for (count, size, a, b) in [
        (o.val_in_train, val, "val", "train"),
        (o.test_in_train, test, "test", "train"),
        (o.test_in_val, test, "test", "val"),
    ] {
        if count > 0 {
            found.push(format!(
                "{} of {} {a} rows ({}) nearly copy a {b} row",
                fmt_count(count),
                fmt_count(size as usize),
                pct(count as f64 / size)
            ));
        }
    }
    for s in 0..3 {
        if o.within[s] > 0 {
            let name = split_name(s);
            found.push(format!(
                "{} of {} {name} rows nearly copy another {name} row",
                fmt_count(o.within[s]),
                fmt_count(rows.size(s))
            ));
        }
    }
    let criterion = format!(
        "within {} train std RMS, not exact copies; compared on {}",
        fmt_num(NEAR_DUPLICATE_MAX_RMS),
        sketch.description
    );
    let check = if found.is_empty() {
        Check::pass("near_duplicates", format!("No near-copies within or across splits ({criterion})."))
    } else {
        let pairs: Vec<(usize, usize)> = o.cross_examples.iter().chain(&o.within_examples).copied().collect();
        let example = pairs
            .iter()
            .take(3)
            .map(|&(a, b)| format!("{} ≈ {} (RMS {})", rows.name(b), rows.name(a), fmt_num(rms((a, b)))))
            .collect::<Vec<_>>()
            .join(", ");
        let sentence = format!("{} ({criterion}), e.g. {example}.", found.join("; "));
        if cross_worst > NEAR_DUPLICATE_WARN_FRACTION || within_worst > DUPLICATE_WARN_FRACTION {
            Check::warn("near_duplicates", format!("{sentence} Near-copies across splits leak like exact ones."))
                .with_advice("Look at the example pairs: if they are the same item (re-encoded, resized, re-measured), remove them from val and test, or split by item instead of by row.")
        } else {
            Check::pass("near_duplicates", format!("{sentence} Few enough to be harmless."))
        }
    };
    let examples = Value::Array(
        o.cross_examples
            .iter()
            .chain(&o.within_examples)
            .map(|&(a, b)| json!({"rows": [rows.name(a), rows.name(b)], "rms": num(rms((a, b)))}))
            .collect(),
    );
    check
        .with("val_in_train", o.val_in_train)
        .with("test_in_train", o.test_in_train)
        .with("test_in_val", o.test_in_val)
        .with("within", per_split(o.within))
        .with("max_rms", NEAR_DUPLICATE_MAX_RMS)
        .with("sketch", sketch.description.clone())
        .with("sketch_dims", sketch.dims)
        .with("examples", examples)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CheckStatus;
    use crate::testing::{classes, random_rows, uniform};
    use proptest::prelude::*;

    fn run(task: &Task, train: &Samples, val: &Samples, test: &Samples) -> Vec<Check> {
        duplicate_checks(&Splits { task, train, val, test })
    }

    fn named<'c>(checks: &'c [Check], name: &str) -> &'c Check {
        let found = checks.iter().find(|c| c.name == name);
        assert!(found.is_some(), "no check {name}");
        found.unwrap_or(&checks[0])
    }

    /// Samples made of the given rows of `source`, in order.
    fn pick(source: &Samples, rows: &[usize]) -> Samples {
        source.subset(rows)
    }

    #[test]
    fn distinct_splits_pass() {
        let task = classes(3);
        let (train, val, test) =
            (random_rows(300, 20, 3, 0), random_rows(100, 20, 3, 1000), random_rows(100, 20, 3, 2000));
        let checks = run(&task, &train, &val, &test);
        for check in &checks {
            assert_eq!(check.status, CheckStatus::Pass, "{check:?}");
        }
        assert_eq!(checks.len(), 4);
        assert_eq!(named(&checks, "near_duplicates").measured["sketch"], "rows");
    }

    #[test]
    fn rows_shared_by_train_and_test_fail_as_leakage() {
        let task = classes(3);
        let train = random_rows(300, 20, 3, 0);
        let val = random_rows(100, 20, 3, 1000);
        // 10 of the 100 test rows are train rows 0, 30, 60, ...
        let mut test = random_rows(90, 20, 3, 2000);
        let copies = pick(&train, &(0..10).map(|i| i * 30).collect::<Vec<_>>());
        test.features.extend_from_slice(&copies.features);
        if let (Targets::Classes(t), Targets::Classes(c)) = (&mut test.targets, &copies.targets) {
            t.extend_from_slice(c);
        }
        let checks = run(&task, &train, &val, &test);
        let leakage = named(&checks, "leakage");
        assert_eq!(leakage.status, CheckStatus::Fail, "{leakage:?}");
        assert_eq!(leakage.measured["test_in_train"], 10);
        assert_eq!(leakage.measured["val_in_train"], 0);
        assert_eq!(leakage.measured["examples"][0], json!(["train 0", "test 90"]));
        assert!(leakage.message.contains("10 of 100 test rows (10.0%) copy a train row"), "{}", leakage.message);
        // Exact copies are not reported again as near-copies.
        let near = named(&checks, "near_duplicates");
        assert_eq!((near.status, near.measured["test_in_train"].as_u64()), (CheckStatus::Pass, Some(0)));
    }

    #[test]
    fn one_leaked_row_in_a_large_test_set_warns() {
        let task = classes(2);
        let train = random_rows(500, 10, 2, 0);
        let mut test = random_rows(2000, 10, 2, 5000);
        test.features[..10].copy_from_slice(train.row(7));
        let leakage = named(&run(&task, &train, &random_rows(50, 10, 2, 9000), &test), "leakage").clone();
        assert_eq!(leakage.status, CheckStatus::Warn, "{leakage:?}");
    }

    #[test]
    fn duplicates_within_a_split_warn() {
        let task = classes(2);
        let base = random_rows(100, 10, 2, 0);
        let train = pick(&base, &(0..100).chain(0..5).collect::<Vec<_>>());
        let checks = run(&task, &train, &random_rows(30, 10, 2, 500), &random_rows(30, 10, 2, 600));
        let dup = named(&checks, "duplicates");
        assert_eq!(dup.status, CheckStatus::Warn, "{dup:?}");
        assert_eq!(dup.measured["within"]["train"], 5);
        assert_eq!(dup.measured["examples"][0], json!(["train 0", "train 100"]));
        assert_eq!(named(&checks, "leakage").status, CheckStatus::Pass);
        assert_eq!(named(&checks, "conflicting_labels").status, CheckStatus::Pass);
    }

    #[test]
    fn identical_inputs_with_different_labels_warn() {
        let task = classes(2);
        let mut train = random_rows(100, 10, 2, 0);
        let copy = train.row(3).to_vec();
        train.features[10 * 4..10 * 5].copy_from_slice(&copy);
        if let Targets::Classes(labels) = &mut train.targets {
            labels[3] = 0;
            labels[4] = 1;
        }
        let check = named(
            &run(&task, &train, &random_rows(30, 10, 2, 500), &random_rows(30, 10, 2, 600)),
            "conflicting_labels",
        )
        .clone();
        assert_eq!(check.status, CheckStatus::Warn, "{check:?}");
        assert_eq!(
            (check.measured["groups"].as_u64(), check.measured["unavoidable_errors"].as_u64()),
            (Some(1), Some(1))
        );
        assert!(check.message.contains("train 3 is \"c0\" but train 4 is \"c1\""), "{}", check.message);
    }

    #[test]
    fn near_copies_across_splits_warn() {
        let task = classes(2);
        let train = random_rows(400, 32, 2, 0);
        // Test rows 0..20 are train rows 0..20 plus noise of 1% of a standard deviation.
        let mut test = random_rows(200, 32, 2, 3000);
        for i in 0..20 {
            for j in 0..32 {
                test.features[i * 32 + j] = train.row(i)[j] + 0.006 * uniform(77, (i * 32 + j) as u64);
            }
        }
        let checks = run(&task, &train, &random_rows(100, 32, 2, 6000), &test);
        let near = named(&checks, "near_duplicates");
        assert_eq!(near.status, CheckStatus::Warn, "{near:?}");
        assert_eq!(near.measured["test_in_train"], 20);
        assert_eq!(named(&checks, "leakage").status, CheckStatus::Pass);
        assert!(near.measured["examples"][0]["rms"].as_f64().is_some_and(|r| r < 0.02));
    }

    #[test]
    fn near_copies_of_images_are_found_and_distinct_images_are_not() {
        let task = classes(2);
        let mut train = random_rows(300, 3 * 16 * 16, 2, 0);
        train.shape = vec![3, 16, 16];
        let mut val = random_rows(100, 3 * 16 * 16, 2, 1000);
        val.shape = vec![3, 16, 16];
        let clean = run(&task, &train, &val, &val.subset(&[]));
        assert_eq!(named(&clean, "near_duplicates").status, CheckStatus::Pass);
        assert_eq!(named(&clean, "near_duplicates").measured["sketch"], "8x8 mean-pooled images");
        // Val row 5 is train row 9 with every pixel moved by up to 2% of a standard deviation.
        let len = 3 * 16 * 16;
        for j in 0..len {
            val.features[5 * len + j] = train.row(9)[j] + 0.012 * uniform(5, j as u64);
        }
        let near = named(&run(&task, &train, &val, &val.subset(&[])), "near_duplicates").clone();
        assert_eq!(near.measured["val_in_train"], 1, "{near:?}");
        assert_eq!(near.status, CheckStatus::Warn);
    }

    #[test]
    fn few_features_skip_near_duplicates() {
        let task = classes(2);
        let s = random_rows(100, 2, 2, 0);
        let near =
            named(&run(&task, &s, &random_rows(10, 2, 2, 500), &random_rows(10, 2, 2, 600)), "near_duplicates").clone();
        assert_eq!(near.measured["skipped"], true);
    }

    #[test]
    fn regression_conflicts_are_reported_not_warned() {
        let task = Task::Regression;
        let mut train = pick(&random_rows(50, 10, 1, 0), &(0..50).chain([1]).collect::<Vec<_>>());
        train.targets = Targets::Values((0..51).map(|i| i as f32).collect());
        let check = named(&run(&task, &train, &train.subset(&[]), &train.subset(&[])), "conflicting_labels").clone();
        assert_eq!(check.status, CheckStatus::Pass);
        assert_eq!(check.measured["groups"], 1);
        assert!(check.message.contains("train 1 is 1 but train 50 is 50"), "{}", check.message);
    }

    #[test]
    fn negative_zero_equals_zero() {
        let task = classes(2);
        let mut train = random_rows(20, 10, 2, 0);
        train.features[..10].fill(0.0);
        let mut test = random_rows(20, 10, 2, 100);
        test.features[..10].fill(-0.0);
        let checks = run(&task, &train, &test.subset(&[]), &test);
        assert_eq!(named(&checks, "leakage").measured["test_in_train"], 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Every planted copy is found, in the split and place it was planted, and nothing else.
        #[test]
        fn finds_every_planted_duplicate(
            plants in proptest::collection::vec((0usize..200, 0usize..3), 0..20),
            d in 1usize..40,
        ) {
            let task = classes(3);
            let base = [random_rows(200, d, 3, 0), random_rows(60, d, 3, 1000), random_rows(60, d, 3, 2000)];
            let mut splits = base.clone();
            let mut expected = [0usize; 3];
            let mut planted = std::collections::HashSet::new();
            for &(row, split) in &plants {
                if !planted.insert(row) {
                    continue;
                }
                let copy = base[0].subset(&[row]);
                splits[split].features.extend_from_slice(&copy.features);
                if let (Targets::Classes(t), Targets::Classes(c)) = (&mut splits[split].targets, &copy.targets) {
                    t.extend_from_slice(c);
                }
                expected[split] += 1;
            }
            let checks = run(&task, &splits[0], &splits[1], &splits[2]);
            prop_assert_eq!(named(&checks, "duplicates").measured["within"]["train"].as_u64(), Some(expected[0] as u64));
            prop_assert_eq!(named(&checks, "leakage").measured["val_in_train"].as_u64(), Some(expected[1] as u64));
            prop_assert_eq!(named(&checks, "leakage").measured["test_in_train"].as_u64(), Some(expected[2] as u64));
            prop_assert_eq!(named(&checks, "leakage").measured["test_in_val"].as_u64(), Some(0));
        }

        /// Every planted near-copy (noise of at most 1% of a standard deviation per value) is found.
        #[test]
        fn finds_every_planted_near_duplicate(
            plants in proptest::collection::btree_set(0usize..300, 0..15),
            d in 8usize..60,
            seed in any::<u64>(),
        ) {
            let task = classes(2);
            let train = random_rows(300, d, 2, 0);
            let mut test = random_rows(100, d, 2, 5000);
            for &row in &plants {
                let noisy: Vec<f32> = train.row(row).iter().enumerate().map(|(j, &v)| v + 0.006 * uniform(seed, (row * d + j) as u64)).collect();
                test.features.extend_from_slice(&noisy);
                if let Targets::Classes(t) = &mut test.targets {
                    t.push(0);
                }
            }
            let checks = run(&task, &train, &random_rows(50, d, 2, 9000), &test);
            let near = named(&checks, "near_duplicates");
            prop_assert_eq!(near.measured["test_in_train"].as_u64(), Some(plants.len() as u64), "{:?}", near);
        }
    }
}
