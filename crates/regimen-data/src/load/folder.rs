//! Image folders: one subfolder of PNG or JPEG images per class.
//!
//! This is how people sort their own images, so it needs no other metadata: the sorted subfolder
//! names are the classes. Optional top-level `train/` and `test/` folders, laid out the same way,
//! become the data and the format's own test split. Channels are decided for the whole dataset at
//! once (if any image has colour, all become RGB; otherwise all are grayscale), because a model
//! needs one input shape; for the same reason images of different sizes are an error rather than
//! silently resized, naming two files that differ.

use std::path::{Path, PathBuf};

use image::DynamicImage;

use super::{LoadOptions, dataset_name, file_name, is_image_name, list_dir};
use crate::error::DataError;
use crate::types::{Samples, Source, Targets, Task};

/// Loads an image-folder dataset.
pub(crate) fn load(path: &Path, options: &LoadOptions) -> Result<Source, DataError> {
    let train_dir = path.join("train");
    let test_dir = path.join("test");
    let data_root = if train_dir.is_dir() { train_dir } else { path.to_owned() };
    let class_dirs: Vec<PathBuf> = list_dir(&data_root)?.into_iter().filter(|p| p.is_dir() && *p != test_dir).collect();
    let classes: Vec<String> = match &options.classes {
        Some(classes) => classes.clone(),
        None => class_dirs.iter().map(|d| file_name(d)).collect(),
    };
    let data_files = list_images(&class_dirs, &classes)?;
    if data_files.is_empty() {
        return Err(DataError::NoImages { path: path.to_owned() });
    }
    let test_files = if test_dir.is_dir() {
        let dirs: Vec<PathBuf> = list_dir(&test_dir)?.into_iter().filter(|p| p.is_dir()).collect();
        Some(list_images(&dirs, &classes)?)
    } else {
        None
    };

    let data_images = decode_all(&data_files)?;
    let test_images = test_files.as_deref().map(decode_all).transpose()?;
    let all = data_images.iter().chain(test_images.iter().flatten());
    let colour = all.clone().any(|(_, image, _)| image.color().has_color());
    if let Some((first, first_image, _)) = data_images.first() {
        let first_size = (first_image.width(), first_image.height());
        for (other, image, _) in all {
            let other_size = (image.width(), image.height());
            if other_size != first_size {
                return Err(DataError::MixedImageSizes {
                    first: first.clone(),
                    first_size,
                    other: other.clone(),
                    other_size,
                });
            }
        }
    }
    let data = to_samples(&data_images, colour);
    let test = test_images.map(|images| to_samples(&images, colour));
    Ok(Source { name: dataset_name(path), task: Task::Classification { classes }, data, test })
}

/// The image files under each class folder, sorted, with the index of the folder's class.
fn list_images(class_dirs: &[PathBuf], classes: &[String]) -> Result<Vec<(PathBuf, u32)>, DataError> {
    let mut files = Vec::new();
    for dir in class_dirs {
        let name = file_name(dir);
        let Some(class) = classes.iter().position(|c| *c == name) else {
            return Err(DataError::LabelOutOfRange {
                path: dir.clone(),
                position: None,
                label: name,
                classes: classes.to_vec(),
            });
        };
        for file in list_dir(dir)? {
            if file.is_file() && is_image_name(&file) {
                files.push((file, class as u32));
            }
        }
    }
    Ok(files)
}

/// Decodes every file, keeping its path and class.
fn decode_all(files: &[(PathBuf, u32)]) -> Result<Vec<(PathBuf, DynamicImage, u32)>, DataError> {
    files
        .iter()
        .map(|(path, class)| {
            let image = image::ImageReader::open(path)
                .map_err(|e| DataError::io(path, e))?
                .with_guessed_format()
                .map_err(|e| DataError::io(path, e))?
                .decode()
                .map_err(|e| DataError::Image { path: path.clone(), message: e.to_string() })?;
            Ok((path.clone(), image, *class))
        })
        .collect()
}

/// Converts decoded images of one size into `[channels, height, width]` samples in `[0, 1]`.
fn to_samples(images: &[(PathBuf, DynamicImage, u32)], colour: bool) -> Samples {
    let (width, height) = images.first().map_or((0, 0), |(_, i, _)| (i.width() as usize, i.height() as usize));
    let channels = if colour { 3 } else { 1 };
    let mut features = Vec::with_capacity(images.len() * channels * width * height);
    for (_, image, _) in images {
        if colour {
            let rgb = image.to_rgb32f();
            let raw = rgb.as_raw();
            for c in 0..3 {
                features.extend(raw.iter().skip(c).step_by(3));
            }
        } else {
            features.extend_from_slice(image.to_luma32f().as_raw());
        }
    }
    Samples {
        shape: vec![channels, height, width],
        features,
        targets: Targets::Classes(images.iter().map(|(_, _, class)| *class).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb, RgbImage};

    fn gray(dir: &Path, name: &str, size: (u32, u32), value: u8) -> Result<(), Box<dyn std::error::Error>> {
        std::fs::create_dir_all(dir)?;
        GrayImage::from_pixel(size.0, size.1, Luma([value])).save(dir.join(name))?;
        Ok(())
    }

    #[test]
    fn loads_grayscale_class_folders() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        gray(&dir.path().join("dog"), "a.png", (4, 3), 255)?;
        gray(&dir.path().join("cat"), "b.png", (4, 3), 0)?;
        gray(&dir.path().join("cat"), "c.png", (4, 3), 51)?;
        std::fs::write(dir.path().join("cat").join("notes.txt"), "ignored")?;
        let source = super::super::load(dir.path(), &LoadOptions::default())?;
        assert_eq!(source.task, Task::Classification { classes: vec!["cat".into(), "dog".into()] });
        assert_eq!(source.data.shape, vec![1, 3, 4]);
        assert_eq!(source.data.targets, Targets::Classes(vec![0, 0, 1]));
        assert_eq!(source.data.row(1)[0], 0.2);
        assert_eq!(source.data.row(2)[11], 1.0);
        assert!(source.test.is_none());
        Ok(())
    }

    #[test]
    fn any_colour_image_makes_all_rgb_and_test_folder_is_test() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let train = dir.path().join("train");
        gray(&train.join("a"), "1.png", (2, 2), 255)?;
        std::fs::create_dir_all(train.join("b"))?;
        RgbImage::from_pixel(2, 2, Rgb([255, 0, 0])).save(train.join("b").join("2.png"))?;
        gray(&dir.path().join("test").join("b"), "3.png", (2, 2), 0)?;
        let source = super::super::load(dir.path(), &LoadOptions::default())?;
        assert_eq!(source.data.shape, vec![3, 2, 2]);
        assert_eq!(source.data.row(0), &[1.0; 12]);
        assert_eq!(source.data.row(1), &[1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        let test = source.test.ok_or("test split expected")?;
        assert_eq!(test.targets, Targets::Classes(vec![1]));
        assert_eq!(test.shape, vec![3, 2, 2]);
        Ok(())
    }

    #[test]
    fn loads_jpeg() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        gray(&dir.path().join("x"), "1.jpg", (8, 8), 200)?;
        let source = super::super::load(dir.path(), &LoadOptions::default())?;
        assert_eq!(source.data.shape, vec![1, 8, 8]);
        assert!((source.data.row(0)[0] - 200.0 / 255.0).abs() < 0.02);
        Ok(())
    }

    #[test]
    fn mixed_sizes_name_both_files() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        gray(&dir.path().join("a"), "small.png", (4, 4), 1)?;
        gray(&dir.path().join("b"), "big.png", (5, 4), 1)?;
        let err = super::super::load(dir.path(), &LoadOptions::default());
        let message = err.as_ref().err().map(ToString::to_string).unwrap_or_default();
        assert!(matches!(err, Err(DataError::MixedImageSizes { first_size: (4, 4), other_size: (5, 4), .. })));
        assert!(message.contains("small.png is 4x4") && message.contains("big.png is 5x4"), "{message}");
        Ok(())
    }

    #[test]
    fn class_folder_outside_declared_classes() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        gray(&dir.path().join("cat"), "1.png", (2, 2), 1)?;
        gray(&dir.path().join("cow"), "1.png", (2, 2), 1)?;
        let options = LoadOptions { classes: Some(vec!["cat".into(), "dog".into()]), ..LoadOptions::default() };
        let err = super::super::load(dir.path(), &options);
        assert!(matches!(err, Err(DataError::LabelOutOfRange { position: None, ref label, .. }) if label == "cow"));
        Ok(())
    }

    #[test]
    fn corrupt_image_is_named() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("a"))?;
        std::fs::write(dir.path().join("a").join("bad.png"), b"not a png")?;
        let options = LoadOptions { format: Some(super::super::Format::Folder), ..LoadOptions::default() };
        let err = super::super::load(dir.path(), &options);
        assert!(matches!(err, Err(DataError::Image { ref path, .. }) if path.ends_with("bad.png")), "{err:?}");
        Ok(())
    }

    #[test]
    fn folder_without_images() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("a"))?;
        let options = LoadOptions { format: Some(super::super::Format::Folder), ..LoadOptions::default() };
        assert!(matches!(super::super::load(dir.path(), &options), Err(DataError::NoImages { .. })));
        Ok(())
    }
}
