//! The one error type of the crate.

use std::io;
use std::path::PathBuf;

/// Why a plot could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// No curves were given at all.
    #[error("nothing to plot: no curves were given (pick runs and metrics that have recorded points)")]
    NoCurves,
    /// The output path's extension names no supported image format.
    #[error("cannot tell which image format to write for {}: {}; supported extensions are .png and .svg", path.display(), describe_extension(extension.as_deref()))]
    UnsupportedFormat {
        /// The output path as given.
        path: PathBuf,
        /// Its extension, if it has one.
        extension: Option<String>,
    },
    /// A side of the picture, given or derived, is outside what can be drawn.
    #[error("image {side} of {value} pixels is out of range: it must be between {min} and {max}")]
    InvalidSize {
        /// `width` or `height`.
        side: &'static str,
        /// The offending size in pixels.
        value: u32,
        /// Smallest accepted side.
        min: u32,
        /// Largest accepted side.
        max: u32,
    },
    /// The given height leaves too little room for the charts once titles and legends are placed.
    #[error(
        "image height of {height} pixels is too small for these panels and legends: use at least {needed}, or leave the height unset to size it automatically"
    )]
    TooCrowded {
        /// The height asked for.
        height: u32,
        /// The least height that keeps every chart readable.
        needed: u32,
    },
    /// The folder the picture should go into does not exist.
    #[error("cannot write {}: folder {} does not exist; create it first", path.display(), folder.display())]
    MissingFolder {
        /// The output path as given.
        path: PathBuf,
        /// Its parent folder.
        folder: PathBuf,
    },
    /// Creating, writing or renaming the output file failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The output path as given.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The drawing library failed (a font problem or a backend error).
    #[error("drawing the plot failed: {0}")]
    Draw(String),
    /// Encoding the rendered pixels as PNG failed.
    #[error("encoding the plot as PNG failed: {0}")]
    Encode(#[from] image::ImageError),
}

fn describe_extension(extension: Option<&str>) -> String {
    match extension {
        Some(ext) => format!("extension `.{ext}` is not supported"),
        None => "it has no extension".to_string(),
    }
}
