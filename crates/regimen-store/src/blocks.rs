//! Metric points packed into blocks: one row per series per batch, not one row per point.
//!
//! A row per point made SQLite's B-tree the bottleneck of the writer: inserting a million
//! `(run, key, step, seq)` rows cost about 1.5 µs each, capping sustained ingest near 0.6M
//! points/s. A batch instead appends, for each series it touches, one block of up to
//! [`BLOCK_POINTS`] points encoded here, so the database sees thousands of rows per million
//! points and the writer's cost is the encoding, a few nanoseconds a point.
//!
//! Nothing reads single points in SQL: listings use `metric_summary`, and a run's series are read
//! whole and decoded here, so packing loses no query.
//!
//! The format, version [`FORMAT`]: one tag byte, then per point the step, epoch and wall time as
//! zigzag LEB128 varints of the difference from the previous point (wrapping, so any `u64`/`i64`
//! round-trips), then the value's 8 bytes, little-endian. A point at the next step of the same
//! epoch a few milliseconds later takes 11 bytes, against 37 for the old row; NaN keeps its bits.

use crate::model::{MetricPoint, SeriesView};
use crate::time::Timestamp;

/// The most points in one block; a series with more in one batch gets several blocks.
pub(crate) const BLOCK_POINTS: usize = 4096;

/// The tag byte that starts every block; a new encoding gets a new tag.
const FORMAT: u8 = 1;

/// Appends points to a block being built.
#[derive(Debug)]
pub(crate) struct BlockEncoder {
    bytes: Vec<u8>,
    count: usize,
    prev: (u64, u64, i64),
    extremes: Extremes,
}

/// The points of a block that a zoomed-out chart must draw: at its lowest and highest step, its
/// lowest and highest finite value, and its first NaN. Each keeps its arrival order, so that ties
/// resolve as a full read would.
#[derive(Debug, Default, Clone)]
struct Extremes {
    first: Option<(usize, MetricPoint)>,
    last: Option<(usize, MetricPoint)>,
    min: Option<(usize, MetricPoint)>,
    max: Option<(usize, MetricPoint)>,
    nan: Option<(usize, MetricPoint)>,
}

/// What a stored block says about itself without being decoded: its step range, and its
/// [`Extremes`] encoded as a block of their own.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BlockSummary {
    pub low_step: u64,
    pub high_step: u64,
    pub extremes: Vec<u8>,
    pub extremes_count: usize,
}

impl BlockEncoder {
    /// An empty block.
    pub(crate) fn new() -> BlockEncoder {
        BlockEncoder { bytes: vec![FORMAT], count: 0, prev: (0, 0, 0), extremes: Extremes::default() }
    }

    /// Appends one point.
    pub(crate) fn push(&mut self, step: u64, epoch: u64, wall: Timestamp, value: f64) {
        let (prev_step, prev_epoch, prev_wall) = self.prev;
        put_delta(&mut self.bytes, step.wrapping_sub(prev_step) as i64);
        put_delta(&mut self.bytes, epoch.wrapping_sub(prev_epoch) as i64);
        put_delta(&mut self.bytes, wall.0.wrapping_sub(prev_wall));
        self.bytes.extend_from_slice(&value.to_bits().to_le_bytes());
        self.prev = (step, epoch, wall.0);
        let here = Some((self.count, MetricPoint { step, epoch, wall, value }));
        let e = &mut self.extremes;
        if e.first.as_ref().is_none_or(|(_, kept)| step < kept.step) {
            e.first = here;
        }
        if e.last.as_ref().is_none_or(|(_, kept)| step >= kept.step) {
            e.last = here;
        }
        if value.is_nan() {
            if e.nan.is_none() {
                e.nan = here;
            }
        } else {
            if e.min.as_ref().is_none_or(|(_, kept)| value < kept.value) {
                e.min = here;
            }
            if e.max.as_ref().is_none_or(|(_, kept)| value > kept.value) {
                e.max = here;
            }
        }
        self.count += 1;
    }

    /// The block's step range and extremes, for the summary columns stored beside it; `None` for
    /// an empty block.
    pub(crate) fn summary(&self) -> Option<BlockSummary> {
        let e = &self.extremes;
        let (low_step, high_step) = (e.first.as_ref()?.1.step, e.last.as_ref()?.1.step);
        let mut kept: Vec<&(usize, MetricPoint)> =
            [&e.first, &e.last, &e.min, &e.max, &e.nan].into_iter().flatten().collect();
        kept.sort_by_key(|(order, point)| (point.step, *order));
        kept.dedup_by_key(|(order, _)| *order);
        let mut encoder = BlockEncoder::new();
        for (_, p) in &kept {
            encoder.push(p.step, p.epoch, p.wall, p.value);
        }
        Some(BlockSummary { low_step, high_step, extremes_count: encoder.count, extremes: encoder.bytes })
    }

    /// How many points the block holds.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// The encoded block.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Empties the block, keeping its buffer.
    pub(crate) fn clear(&mut self) {
        self.bytes.truncate(1);
        self.count = 0;
        self.prev = (0, 0, 0);
        self.extremes = Extremes::default();
    }
}

/// Decodes a block of `count` points onto `out`; `None` when the bytes are not such a block.
pub(crate) fn decode(bytes: &[u8], count: usize, out: &mut Vec<MetricPoint>) -> Option<()> {
    let (&format, mut rest) = bytes.split_first()?;
    if format != FORMAT {
        return None;
    }
    out.reserve(count);
    let (mut step, mut epoch, mut wall) = (0u64, 0u64, 0i64);
    for _ in 0..count {
        step = step.wrapping_add(take_delta(&mut rest)? as u64);
        epoch = epoch.wrapping_add(take_delta(&mut rest)? as u64);
        wall = wall.wrapping_add(take_delta(&mut rest)?);
        let (value, tail) = rest.split_first_chunk::<8>()?;
        rest = tail;
        out.push(MetricPoint { step, epoch, wall: Timestamp(wall), value: f64::from_bits(u64::from_le_bytes(*value)) });
    }
    rest.is_empty().then_some(())
}

/// Appends `delta` as a zigzag LEB128 varint: small differences of either sign take one byte.
fn put_delta(out: &mut Vec<u8>, delta: i64) {
    let mut v = ((delta << 1) ^ (delta >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint written by [`put_delta`] from the front of `bytes`.
fn take_delta(bytes: &mut &[u8]) -> Option<i64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some((v >> 1) as i64 ^ -((v & 1) as i64));
        }
    }
    None
}

// What both SQL backends share around the blocks: a batch's summary of each series it touches and
// the conversions between Rust values and integer or nullable columns.

/// A finite extreme of a series and where it was first reached: (value, step, epoch).
pub(crate) type Extreme = (f64, i64, i64);

/// What one batch adds to a metric series' summary.
pub(crate) struct Summary {
    pub count: i64,
    pub min: Option<Extreme>,
    pub max: Option<Extreme>,
    pub last_step: i64,
    pub last_epoch: i64,
    pub last: f64,
}

impl Summary {
    /// An empty summary whose last point starts as the series' first.
    pub(crate) fn new(step: i64, epoch: i64, value: f64) -> Summary {
        Summary { count: 0, min: None, max: None, last_step: step, last_epoch: epoch, last: value }
    }

    pub(crate) fn add(&mut self, step: i64, epoch: i64, value: f64) {
        self.count += 1;
        if value.is_finite() {
            // The earliest point wins a tie, as in `regimen_metrics::best`.
            let replaces = |extreme: Option<Extreme>, better: fn(f64, f64) -> bool| {
                extreme.is_none_or(|(v, s, _)| better(value, v) || (value == v && step < s))
            };
            if replaces(self.min, |a, b| a < b) {
                self.min = Some((value, step, epoch));
            }
            if replaces(self.max, |a, b| a > b) {
                self.max = Some((value, step, epoch));
            }
        }
        if step >= self.last_step {
            (self.last_step, self.last_epoch, self.last) = (step, epoch, value);
        }
    }
}

/// The value, step and epoch columns of an extreme.
pub(crate) fn columns(extreme: Option<Extreme>) -> (Option<f64>, Option<i64>, Option<i64>) {
    match extreme {
        Some((value, step, epoch)) => (Some(value), Some(step), Some(epoch)),
        None => (None, None, None),
    }
}

/// A step, count or size as an integer column.
pub(crate) fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// An integer column as a step, count or size (negative reads as 0).
pub(crate) fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// NaN is stored as NULL: SQLite has no NaN, and PostgreSQL's would sort above every number.
pub(crate) fn finite_or_null(value: f64) -> Option<f64> {
    (!value.is_nan()).then_some(value)
}

/// Whether a stored block may be read as its extremes alone for a chart of steps `from..=to` in
/// buckets `span` steps wide (see [`crate::RunStore::series_range`]): it lies inside the range,
/// within less than a bucket, and its extremes are fewer than its points. `range` and
/// `extremes_count` are the block's summary columns, NULL for blocks stored without them.
pub(crate) fn read_as_extremes(
    from: u64,
    to: u64,
    span: u64,
    range: (Option<i64>, Option<i64>),
    extremes_count: Option<i64>,
    count: i64,
) -> bool {
    match (range, extremes_count) {
        ((Some(low), Some(high)), Some(kept)) => {
            let (low, high) = (unsigned(low), unsigned(high));
            low >= from && high <= to && high - low < span && kept < count
        }
        _ => false,
    }
}

/// Adds a decoded block of `count` stored points to a ranged view: all of `decoded` when it is the
/// block's extremes, else the points with steps in `from..=to`. The caller sorts the view by step
/// once every block is in.
pub(crate) fn add_to_view(
    view: &mut SeriesView,
    decoded: &mut Vec<MetricPoint>,
    extremes_only: bool,
    count: i64,
    from: u64,
    to: u64,
) {
    if extremes_only {
        view.total += unsigned(count);
        view.points.append(decoded);
    } else {
        let before = view.points.len();
        view.points.extend(decoded.iter().filter(|p| (from..=to).contains(&p.step)));
        view.total += (view.points.len() - before) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn roundtrip(points: &[MetricPoint]) -> Option<Vec<MetricPoint>> {
        let mut block = BlockEncoder::new();
        for p in points {
            block.push(p.step, p.epoch, p.wall, p.value);
        }
        let mut out = Vec::new();
        decode(block.bytes(), block.len(), &mut out)?;
        Some(out)
    }

    fn same(a: &[MetricPoint], b: &[MetricPoint]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                (x.step, x.epoch, x.wall, x.value.to_bits()) == (y.step, y.epoch, y.wall, y.value.to_bits())
            })
    }

    #[test]
    fn a_training_series_takes_eleven_bytes_a_point_after_the_first() {
        let mut block = BlockEncoder::new();
        for step in 1..=1000u64 {
            block.push(step, 1 + step / 100, Timestamp(1_714_564_800_000 + 5 * step as i64), 1.0 / step as f64);
        }
        assert_eq!(block.len(), 1000);
        // The tag, then the first point with its wall time in full (6 bytes), then 11 bytes each.
        assert_eq!(block.bytes().len(), 1 + (1 + 1 + 6 + 8) + 999 * 11);
        block.clear();
        assert_eq!((block.len(), block.bytes()), (0, &[FORMAT][..]));
    }

    #[test]
    fn extremes_and_nan_round_trip() {
        let points = [
            MetricPoint { step: u64::MAX, epoch: 0, wall: Timestamp(i64::MIN), value: f64::NAN },
            MetricPoint { step: 0, epoch: u64::MAX, wall: Timestamp(i64::MAX), value: f64::NEG_INFINITY },
            MetricPoint { step: 7, epoch: 7, wall: Timestamp(-1), value: -0.0 },
        ];
        let out = roundtrip(&points);
        assert!(out.as_deref().is_some_and(|out| same(out, &points)), "{out:?}");
    }

    #[test]
    fn a_summary_keeps_the_step_range_the_extremes_and_a_nan() -> Result<(), String> {
        let mut block = BlockEncoder::new();
        assert!(block.summary().is_none());
        let values = [3.0, 1.0, 7.0, f64::NAN, 7.0, 2.0];
        for (i, &v) in values.iter().enumerate() {
            block.push(10 + i as u64, 1, Timestamp(i as i64), v);
        }
        let summary = block.summary().ok_or("a summary")?;
        assert_eq!((summary.low_step, summary.high_step), (10, 15));
        let mut kept = Vec::new();
        decode(&summary.extremes, summary.extremes_count, &mut kept).ok_or("decodes")?;
        let steps: Vec<u64> = kept.iter().map(|p| p.step).collect();
        // First (3.0), min (1.0), the first of the tied maxima (7.0), the NaN, last (2.0).
        assert_eq!(steps, [10, 11, 12, 13, 15]);
        assert!(kept[3].value.is_nan());
        block.clear();
        block.push(5, 0, Timestamp(0), 1.0);
        let one = block.summary().ok_or("a summary")?;
        assert_eq!((one.low_step, one.high_step, one.extremes_count), (5, 5, 1));
        Ok(())
    }

    #[test]
    fn malformed_blocks_are_refused() {
        let mut block = BlockEncoder::new();
        block.push(1, 1, Timestamp(1), 1.0);
        let bytes = block.bytes().to_vec();
        let mut out = Vec::new();
        assert!(decode(&bytes, 2, &mut out).is_none(), "too few points");
        assert!(decode(&bytes, 0, &mut out).is_none(), "trailing bytes");
        assert!(decode(&bytes[..bytes.len() - 1], 1, &mut out).is_none(), "truncated value");
        assert!(decode(&[], 0, &mut out).is_none(), "no tag");
        assert!(decode(&[9], 0, &mut out).is_none(), "unknown format");
        assert!(
            decode(&[FORMAT, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], 1, &mut out).is_none(),
            "varint too long"
        );
    }

    proptest! {
        #[test]
        fn any_points_round_trip(raw in proptest::collection::vec((any::<u64>(), any::<u64>(), any::<i64>(), any::<u64>()), 0..200)) {
            let points: Vec<MetricPoint> =
                raw.iter().map(|&(step, epoch, wall, bits)| MetricPoint { step, epoch, wall: Timestamp(wall), value: f64::from_bits(bits) }).collect();
            let out = roundtrip(&points);
            prop_assert!(out.as_deref().is_some_and(|out| same(out, &points)));
        }
    }
}
