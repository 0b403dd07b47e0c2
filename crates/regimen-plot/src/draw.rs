//! Sizing the figure and drawing it with `plotters`, generically over the backend.
//!
//! The figure is planned before anything is drawn: legends sit under their panel (never over the
//! curves), so their height is measured first and either added to the picture (automatic height)
//! or taken from the charts (explicit height). Every size scales with the panel width, so a wide
//! picture keeps readable text.

use ab_glyph::FontRef;
use plotters::coord::Shift;
use plotters::coord::combinators::{IntoLogRange, LogCoord};
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::layout::{Panel, Series, grid};
use crate::style::{FAMILY, GRID, INK, LineStyle, MUTED_INK, line_style, tick_label};
use crate::text::measure;
use crate::{PlotError, PlotOptions};

/// Width of one panel column when the width is not given.
const AUTO_PANEL_WIDTH: u32 = 520;
/// Height of one chart (without its legend) when the height is not given.
const AUTO_CHART_HEIGHT: u32 = 380;
/// A chart shorter than this is unreadable; an explicit height must leave at least this much.
const MIN_CHART_HEIGHT: u32 = 100;
/// Radius at scale 1 of a marker of a points-only plot.
const MARKER_RADIUS: f64 = 3.0;
/// Bounds on each side of the picture.
const MIN_SIDE: u32 = 200;
const MAX_SIDE: u32 = 8_000;

/// The planned figure: sizes of every part, ready to draw on any backend.
pub(crate) struct Figure<'a> {
    panels: &'a [Panel<'a>],
    options: &'a PlotOptions,
    cols: usize,
    width: u32,
    height: u32,
    panel_width: u32,
    title_height: u32,
    /// Per panel, how its legend is laid out.
    legends: Vec<Legend>,
    /// Per row of panels, the chart height and the legend height below it.
    rows: Vec<(u32, u32)>,
    scale: f64,
    /// Device pixels per picture pixel: PNGs are drawn larger and scaled down to smooth edges.
    ratio: u32,
}

/// Legend entries in columns filled top to bottom, so a run's splits stay together.
struct Legend {
    rows: usize,
    /// Left edge of each column, in picture pixels from the legend's left edge.
    columns: Vec<u32>,
}

/// Pixel sizes at scale 1.
struct Metrics;
impl Metrics {
    const TITLE: f64 = 24.0;
    const CAPTION: f64 = 19.0;
    const AXIS_DESC: f64 = 15.0;
    const TICK: f64 = 13.0;
    const LEGEND: f64 = 14.0;
    const LEGEND_ROW: f64 = 22.0;
    const LEGEND_PAD: f64 = 8.0;
    const SAMPLE: f64 = 30.0;
    const SAMPLE_GAP: f64 = 7.0;
    const COL_GAP: f64 = 22.0;
    const MARGIN: f64 = 10.0;
    const MARGIN_RIGHT: f64 = 20.0;
    const X_LABEL_AREA: f64 = 44.0;
    const Y_LABEL_AREA: f64 = 68.0;
}

impl<'a> Figure<'a> {
    /// Lays the panels out in a grid and sizes the picture, measuring the legends; it will be
    /// drawn at one device pixel per picture pixel unless [`Figure::with_ratio`] says otherwise.
    pub fn plan(panels: &'a [Panel<'a>], options: &'a PlotOptions, font: &FontRef<'static>) -> Result<Self, PlotError> {
        let (row_count, cols) = grid(panels.len());
        let width = options.width.unwrap_or(cols as u32 * AUTO_PANEL_WIDTH);
        check_side("width", width)?;
        let panel_width = width / cols as u32;
        let scale = (f64::from(panel_width) / f64::from(AUTO_PANEL_WIDTH)).clamp(0.75, 2.5);
        let px = |v: f64| (v * scale).round() as u32;
        let title_height = if options.title.is_some() { px(Metrics::TITLE * 2.0) } else { 0 };

        let legend_width =
            panel_width.saturating_sub(px(Metrics::MARGIN + Metrics::Y_LABEL_AREA + Metrics::MARGIN_RIGHT));
        let legends: Vec<Legend> = panels.iter().map(|p| legend(p, legend_width, scale, font)).collect();
        let legend_heights: Vec<u32> = legends
            .chunks(cols)
            .map(|row| {
                let lines = row.iter().map(|l| l.rows).max().unwrap_or(0) as f64;
                px(Metrics::LEGEND_PAD * 2.0 + lines * Metrics::LEGEND_ROW)
            })
            .collect();
        let legends_total: u32 = legend_heights.iter().sum();

        let (height, chart_height) = match options.height {
            None => {
                let chart = px(f64::from(AUTO_CHART_HEIGHT));
                (title_height + chart * row_count as u32 + legends_total, chart)
            }
            Some(height) => {
                check_side("height", height)?;
                let needed = title_height + legends_total + MIN_CHART_HEIGHT * row_count as u32;
                if height < needed {
                    return Err(PlotError::TooCrowded { height, needed });
                }
                (height, (height - title_height - legends_total) / row_count as u32)
            }
        };
        check_side("height", height)?;
        let rows = legend_heights.into_iter().map(|legend| (chart_height, legend)).collect();
        Ok(Self { panels, options, cols, width, height, panel_width, title_height, legends, rows, scale, ratio: 1 })
    }

    /// The picture's width and height in pixels.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Draws at `ratio` device pixels per picture pixel along each side.
    pub fn with_ratio(self, ratio: u32) -> Self {
        Self { ratio, ..self }
    }

    /// The drawing's width and height in device pixels.
    pub fn device_size(&self) -> (u32, u32) {
        (self.dev(self.width), self.dev(self.height))
    }

    /// Draws the whole figure on `root`, which must be [`Figure::device_size`] large.
    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        root.fill(&WHITE).map_err(drawing)?;
        let (title_area, body) = root.split_vertically(self.dev(self.title_height));
        if let Some(title) = &self.options.title {
            let style = self.font(Metrics::TITLE, &INK).pos(Pos::new(HPos::Center, VPos::Center));
            let at = (self.dev(self.width) as i32 / 2, self.dev(self.title_height) as i32 / 2);
            title_area.draw(&Text::new(title.as_str(), at, style)).map_err(drawing)?;
        }
        let xs: Vec<u32> = (1..self.cols).map(|c| self.dev(c as u32 * self.panel_width)).collect();
        let ys: Vec<u32> = self
            .rows
            .iter()
            .scan(0, |bottom, (chart, legend)| {
                *bottom += self.dev(chart + legend);
                Some(*bottom)
            })
            .collect();
        let areas = body.split_by_breakpoints(xs, &ys[..ys.len().saturating_sub(1)]);
        for (i, (panel, area)) in self.panels.iter().zip(&areas).enumerate() {
            let (chart_height, _) = self.rows[i / self.cols];
            let (chart_area, legend_area) = area.split_vertically(self.dev(chart_height));
            if self.options.log_x {
                let x: LogCoord<f64> = panel.x.clone().log_scale().into();
                self.draw_chart_on_x(&chart_area, panel, x)?;
            } else {
                let x: RangedCoordf64 = panel.x.clone().into();
                self.draw_chart_on_x(&chart_area, panel, x)?;
            }
            self.draw_legend(&legend_area, panel, &self.legends[i])?;
        }
        Ok(())
    }

    /// Picks the y coordinate for [`Figure::draw_chart`], given the x one: four combinations in all.
    fn draw_chart_on_x<DB, X>(&self, area: &DrawingArea<DB, Shift>, panel: &Panel<'_>, x: X) -> Result<(), PlotError>
    where
        DB: DrawingBackend,
        X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        if self.options.log_y {
            let y: LogCoord<f64> = panel.y.clone().log_scale().into();
            self.draw_chart(area, panel, x, y)
        } else {
            let y: RangedCoordf64 = panel.y.clone().into();
            self.draw_chart(area, panel, x, y)
        }
    }

    fn draw_chart<DB, X, Y>(
        &self,
        area: &DrawingArea<DB, Shift>,
        panel: &Panel<'_>,
        x: X,
        y: Y,
    ) -> Result<(), PlotError>
    where
        DB: DrawingBackend,
        X: Ranged<ValueType = f64> + ValueFormatter<f64>,
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let mut chart = ChartBuilder::on(area)
            .caption(panel.metric, self.font(Metrics::CAPTION, &INK))
            .margin_top(self.px(Metrics::MARGIN))
            .margin_left(self.px(Metrics::MARGIN))
            .margin_right(self.px(Metrics::MARGIN_RIGHT))
            .x_label_area_size(self.px(Metrics::X_LABEL_AREA))
            .y_label_area_size(self.px(Metrics::Y_LABEL_AREA))
            .build_cartesian_2d(x, y)
            .map_err(drawing)?;
        let desc = |text: &str, log: bool| if log { format!("{text} (log scale)") } else { text.to_string() };
        let x_desc = desc(&self.options.x_label, self.options.log_x);
        let y_desc = desc(panel.metric, self.options.log_y);
        let format = |v: &f64| tick_label(*v);
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_labels(6)
            .y_labels(6)
            .x_label_formatter(&format)
            .y_label_formatter(&format)
            .label_style(self.font(Metrics::TICK, &INK))
            .axis_desc_style(self.font(Metrics::AXIS_DESC, &INK))
            .axis_style(MUTED_INK.stroke_width(self.px(1.0)))
            .bold_line_style(GRID.stroke_width(self.px(1.0)))
            .light_line_style(TRANSPARENT)
            .set_all_tick_mark_size(self.px(4.0))
            .draw()
            .map_err(drawing)?;

        // Light splits first, so the darker val and test lines stay on top where they cross.
        let mut order: Vec<&Series<'_>> = panel.series.iter().collect();
        order.sort_by_key(|s| (s.split, s.run));
        for series in order {
            let line = line_style(series.run, series.split);
            let style = self.shape(&line);
            if self.options.points_only {
                let (radius, marker) = self.marker(&line);
                let points = series.segments.iter().flatten();
                chart.draw_series(points.map(|point| Circle::new(*point, radius, marker))).map_err(drawing)?;
                continue;
            }
            for segment in &series.segments {
                let points = segment.iter().copied();
                match segment.as_slice() {
                    [point] => {
                        let radius = self.px(line.width + 1.0) as i32;
                        chart.draw_series([Circle::new(*point, radius, style.filled())]).map_err(drawing)?;
                    }
                    _ if line.dashed => {
                        let (dash, gap) = (self.px(7.0) as i32, self.px(5.0) as i32);
                        chart.draw_series(DashedLineSeries::new(points, dash, gap, style)).map_err(drawing)?;
                    }
                    _ => {
                        chart.draw_series(LineSeries::new(points, style)).map_err(drawing)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn draw_legend<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        panel: &Panel<'_>,
        legend: &Legend,
    ) -> Result<(), PlotError> {
        let left = self.px(Metrics::MARGIN + Metrics::Y_LABEL_AREA) as i32;
        let scale = self.scale * f64::from(self.ratio);
        let row_height = Metrics::LEGEND_ROW * scale;
        let (sample, gap) = (self.px(Metrics::SAMPLE) as i32, self.px(Metrics::SAMPLE_GAP) as i32);
        for (i, series) in panel.series.iter().enumerate() {
            let (col, row) = (i / legend.rows, i % legend.rows);
            let x = left + self.dev(legend.columns[col]) as i32;
            let y = (Metrics::LEGEND_PAD * scale + row_height * (row as f64 + 0.5)).round() as i32;
            let line = line_style(series.run, series.split);
            let style = self.shape(&line);
            let ends = [(x, y), (x + sample, y)];
            if self.options.points_only {
                let (radius, marker) = self.marker(&line);
                area.draw(&Circle::new((x + sample / 2, y), radius, marker)).map_err(drawing)?;
            } else if line.dashed {
                let (dash, dash_gap) = (self.px(7.0) as i32, self.px(5.0) as i32);
                area.draw(&DashedPathElement::new(ends, dash, dash_gap, style)).map_err(drawing)?;
            } else {
                area.draw(&PathElement::new(ends, style)).map_err(drawing)?;
            }
            let ink = if series.note.is_some() { &MUTED_INK } else { &INK };
            let text_style = self.font(Metrics::LEGEND, ink).pos(Pos::new(HPos::Left, VPos::Center));
            area.draw(&Text::new(series.label(), (x + sample + gap, y), text_style)).map_err(drawing)?;
        }
        Ok(())
    }

    /// A size given at scale 1, in device pixels.
    fn px(&self, size: f64) -> u32 {
        (size * self.scale * f64::from(self.ratio)).round().max(1.0) as u32
    }

    /// A planned size in picture pixels, in device pixels.
    fn dev(&self, pixels: u32) -> u32 {
        pixels * self.ratio
    }

    fn font<'c>(&self, size: f64, color: &'c RGBColor) -> TextStyle<'c> {
        (FAMILY, size * self.scale * f64::from(self.ratio)).into_font().color(color)
    }

    fn shape(&self, line: &LineStyle) -> ShapeStyle {
        ShapeStyle { color: line.color.to_rgba(), filled: false, stroke_width: self.px(line.width) }
    }

    /// The radius in device pixels and the fill of one marker of a points-only plot.
    fn marker(&self, line: &LineStyle) -> (i32, ShapeStyle) {
        (self.px(MARKER_RADIUS) as i32, line.color.filled())
    }
}

/// Measures a panel's legend entries and picks the fewest rows whose columns fit in `width`.
fn legend(panel: &Panel<'_>, width: u32, scale: f64, font: &FontRef<'static>) -> Legend {
    let gap = (Metrics::COL_GAP * scale).round() as u32;
    let sample = ((Metrics::SAMPLE + Metrics::SAMPLE_GAP) * scale).round() as u32;
    let widths: Vec<u32> =
        panel.series.iter().map(|s| sample + measure(font, Metrics::LEGEND * scale, &s.label()).0 + gap).collect();
    let mut rows = 1;
    let columns = loop {
        let columns: Vec<u32> = widths.chunks(rows).map(|c| c.iter().copied().max().unwrap_or(0)).collect();
        if rows >= widths.len() || columns.iter().sum::<u32>() <= width + gap {
            break columns;
        }
        rows += 1;
    };
    let lefts = columns.iter().scan(0, |left, w| {
        let this = *left;
        *left += w;
        Some(this)
    });
    Legend { rows, columns: lefts.collect() }
}

fn check_side(side: &'static str, value: u32) -> Result<(), PlotError> {
    if (MIN_SIDE..=MAX_SIDE).contains(&value) {
        Ok(())
    } else {
        Err(PlotError::InvalidSize { side, value, min: MIN_SIDE, max: MAX_SIDE })
    }
}

/// Turns a `plotters` error into ours, keeping its message.
pub(crate) fn drawing<E: std::error::Error + Send + Sync>(error: DrawingAreaErrorKind<E>) -> PlotError {
    PlotError::Draw(error.to_string())
}
