//! The embedded font, and the PNG backend that places its glyphs properly.
//!
//! PNG text must not depend on system fonts (CI is a clean machine), so DejaVu Sans is compiled
//! in and registered with `plotters` as the generic `sans-serif` family, which is also what SVGs
//! name. `plotters`' own `ab_glyph` renderer drops each glyph's left side bearing and rounds the
//! pen to whole pixels glyph by glyph, which makes letter spacing visibly uneven ("ep och"), so
//! [`Bitmap`] wraps the bitmap backend, lays text out with `ab_glyph` at sub-pixel positions and
//! delegates everything else unchanged.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, Glyph, PxScale, ScaleFont, point};
use plotters::prelude::BitMapBackend;
use plotters::style::{FontStyle, register_font};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind};

use crate::PlotError;
use crate::style::FAMILY;

/// DejaVu Sans 2.37 (Bitstream Vera license, see `assets/LICENSE-DejaVu.txt`).
static DEJAVU_SANS: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// The embedded font, parsed and registered with `plotters` once per process.
pub(crate) fn font() -> Result<&'static FontRef<'static>, PlotError> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| {
        let parsed = FontRef::try_from_slice(DEJAVU_SANS).ok()?;
        register_font(FAMILY.as_str(), FontStyle::Normal, DEJAVU_SANS).ok()?;
        Some(parsed)
    })
    .as_ref()
    .ok_or_else(|| PlotError::Draw("the embedded DejaVu Sans font could not be parsed".to_string()))
}

/// Glyphs of `text` at `size` pixels, positioned in a box whose top-left corner is the origin,
/// and the box's width and height.
fn layout(font: &FontRef<'static>, size: f64, text: &str) -> (Vec<Glyph>, f32, f32) {
    let scale = PxScale::from(size as f32);
    let scaled = font.as_scaled(scale);
    let mut glyphs = Vec::with_capacity(text.len());
    let mut caret = 0.0;
    let mut previous = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(previous) = previous {
            caret += scaled.kern(previous, id);
        }
        glyphs.push(id.with_scale_and_position(scale, point(caret, scaled.ascent())));
        caret += scaled.h_advance(id);
        previous = Some(id);
    }
    (glyphs, caret, scaled.height())
}

/// The width and height in pixels `text` takes at `size` pixels.
pub(crate) fn measure(font: &FontRef<'static>, size: f64, text: &str) -> (u32, u32) {
    let (_, width, height) = layout(font, size, text);
    (width.ceil() as u32, height.ceil() as u32)
}

/// A [`BitMapBackend`] whose text is laid out by [`layout`].
pub(crate) struct Bitmap<'a> {
    inner: BitMapBackend<'a>,
    font: &'static FontRef<'static>,
}

impl<'a> Bitmap<'a> {
    /// Wraps `inner`, drawing its text with `font`.
    pub fn new(inner: BitMapBackend<'a>, font: &'static FontRef<'static>) -> Self {
        Self { inner, font }
    }
}

type Error<'a> = DrawingErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>;

impl<'a> DrawingBackend for Bitmap<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), Error<'a>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), Error<'a>> {
        self.inner.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<(), Error<'a>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(&mut self, from: BackendCoord, to: BackendCoord, style: &S) -> Result<(), Error<'a>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), Error<'a>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), Error<'a>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), Error<'a>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), Error<'a>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(&mut self, pos: BackendCoord, (iw, ih): (u32, u32), src: &[u8]) -> Result<(), Error<'a>> {
        self.inner.blit_bitmap(pos, (iw, ih), src)
    }

    fn estimate_text_size<S: BackendTextStyle>(&self, text: &str, style: &S) -> Result<(u32, u32), Error<'a>> {
        Ok(measure(self.font, style.size(), text))
    }

    /// Anchors, rotation and clipping follow `plotters`' default `draw_text`; only the glyph
    /// placement differs.
    fn draw_text<S: BackendTextStyle>(&mut self, text: &str, style: &S, pos: BackendCoord) -> Result<(), Error<'a>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let (glyphs, width, height) = layout(self.font, style.size(), text);
        let (width, height) = (width.round() as i32, height.round() as i32);
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0,
            HPos::Center => -width / 2,
            HPos::Right => -width,
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let transform = style.transform();
        let (w, h) = self.get_size();
        let mut pixels = Vec::new();
        for glyph in glyphs {
            let Some(outline) = self.font.outline_glyph(glyph) else { continue };
            let min = outline.px_bounds().min;
            outline.draw(|x, y, coverage| {
                let (x, y) = transform.transform(min.x as i32 + x as i32 + dx, min.y as i32 + y as i32 + dy);
                let (x, y) = (pos.0 + x, pos.1 + y);
                if coverage > 0.0 && (0..w as i32).contains(&x) && (0..h as i32).contains(&y) {
                    pixels.push(((x, y), f64::from(coverage.min(1.0))));
                }
            });
        }
        for (at, coverage) in pixels {
            self.inner.draw_pixel(at, color.mix(coverage))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_font_parses_and_measures() {
        let font = font().unwrap();
        let (w, h) = measure(font, 20.0, "loss");
        assert_eq!(h, 20);
        assert!((30..50).contains(&w), "{w}");
        assert!(measure(font, 20.0, "val.loss").0 > w);
        assert_eq!(measure(font, 20.0, ""), (0, 20));
    }
}
