//! The [`ArtifactStore`] conformance suite: the cases every implementation passes, turned into one
//! `#[test]` per case by [`artifact_conformance!`](crate::artifact_conformance).
//!
//! S3 cases need a server: `REGIMEN_TEST_S3` names a bucket on it (`s3://regimen-test`), reached
//! with the usual `AWS_*` variables (`.ci/run` starts moto and sets them). Each [`TestBucket`] is a
//! fresh prefix in that bucket, emptied when dropped. Without the variable the S3 cases are
//! skipped, unless `REGIMEN_REQUIRE_S3=1` (set by CI) makes that a failure.

use std::any::Any;
use std::sync::Arc;

use crate::{ArtifactError, ArtifactStore, fetch_folder, publish_folder};

/// Builds a fresh, empty store; the second value lives as long as it. `None` when the backend's
/// server is not available to this run.
pub type Factory = fn() -> Option<(Arc<dyn ArtifactStore>, Box<dyn Any>)>;

/// The variable naming the test bucket.
pub const BUCKET_ENV: &str = "REGIMEN_TEST_S3";

/// The variable that makes a missing test bucket an error.
pub const REQUIRE_ENV: &str = "REGIMEN_REQUIRE_S3";

/// A fresh prefix in the test bucket, emptied when dropped.
#[derive(Debug)]
pub struct TestBucket {
    url: String,
}

impl TestBucket {
    /// A new prefix in the test bucket; `None` (with a note) when none is configured or required.
    ///
    /// # Panics
    /// When a bucket is required but not configured.
    pub fn create() -> Option<TestBucket> {
        let Ok(bucket) = std::env::var(BUCKET_ENV) else {
            if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
                panic!("{REQUIRE_ENV}=1 but {BUCKET_ENV} is not set: `.ci/run` starts an S3 server and sets it");
            }
            eprintln!("skipped: no S3 server ({BUCKET_ENV} is not set; `.ci/run` starts one)");
            return None;
        };
        Some(TestBucket { url: format!("{}/t{:016x}", bucket.trim_end_matches('/'), rand::random::<u64>()) })
    }

    /// The `s3://bucket/prefix` URL of the prefix.
    pub fn url(&self) -> String {
        self.url.clone()
    }
}

impl Drop for TestBucket {
    fn drop(&mut self) {
        if let Ok(store) = crate::S3::from_url(&self.url) {
            let _ = store.delete_prefix("");
        }
    }
}

/// Objects read back as written; absent keys read as `None`; a put replaces.
pub fn objects_round_trip(store: &dyn ArtifactStore) -> Result<(), ArtifactError> {
    assert_eq!(store.get("runs/r1/a.bin")?, None);
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    store.put("runs/r1/a.bin", &big)?;
    store.put("runs/r1/empty", b"")?;
    assert_eq!(store.get("runs/r1/a.bin")?.as_deref(), Some(big.as_slice()));
    assert_eq!(store.get("runs/r1/empty")?.as_deref(), Some(&b""[..]));
    store.put("runs/r1/a.bin", b"second")?;
    assert_eq!(store.get("runs/r1/a.bin")?.as_deref(), Some(&b"second"[..]));
    Ok(())
}

/// Exactly one of several writers creates a key, and the loser changes nothing.
pub fn conditional_puts_never_clobber(store: &dyn ArtifactStore) -> Result<(), ArtifactError> {
    assert!(store.put_new("k/manifest", b"first")?);
    assert!(!store.put_new("k/manifest", b"second")?);
    assert_eq!(store.get("k/manifest")?.as_deref(), Some(&b"first"[..]));
    let store: &(dyn ArtifactStore + Sync) = store;
    let winners: usize = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..8u8).map(|i| scope.spawn(move || store.put_new("race/key", &[i; 64]))).collect();
        racers.into_iter().map(|r| r.join().expect("racer").map(usize::from)).sum::<Result<usize, _>>()
    })?;
    assert_eq!(winners, 1, "exactly one writer creates the key");
    let kept = store.get("race/key")?.unwrap_or_default();
    assert!(kept.len() == 64 && kept.iter().all(|b| *b == kept[0]), "one writer's object, whole");
    Ok(())
}

/// Listing is by folder, sorted, with sizes; deleting a folder leaves its neighbours.
pub fn folders_list_and_delete(store: &dyn ArtifactStore) -> Result<(), ArtifactError> {
    for key in ["runs/r1/b", "runs/r1/sub/c", "runs/r10/a", "runs/r1/a"] {
        store.put(key, key.as_bytes())?;
    }
    let listed = store.list("runs/r1")?;
    let expected = [("runs/r1/a", 9), ("runs/r1/b", 9), ("runs/r1/sub/c", 13)];
    assert_eq!(listed, expected.map(|(k, n)| (k.to_string(), n)).to_vec(), "runs/r10 is not in runs/r1");
    assert_eq!(store.list("")?.len(), 4);
    assert_eq!(store.delete_prefix("runs/r1")?, 3);
    assert_eq!(store.list("")?, vec![("runs/r10/a".to_string(), 10)]);
    assert!(store.list("nothing/here")?.is_empty());
    Ok(())
}

/// Keys that are not plain relative paths are refused before anything is written.
pub fn bad_keys_are_refused(store: &dyn ArtifactStore) -> Result<(), ArtifactError> {
    for bad in ["", "/etc/passwd", "a/../../b", "a//b"] {
        assert!(matches!(store.put(bad, b"x"), Err(ArtifactError::InvalidKey { .. })), "{bad}");
        assert!(matches!(store.get(bad), Err(ArtifactError::InvalidKey { .. })), "{bad}");
    }
    assert!(store.list("")?.is_empty());
    Ok(())
}

/// A published folder fetches back whole and verified; an unpublished one is absent; a second
/// publisher of the same folder neither clobbers the first nor is fooled by it.
pub fn folders_publish_and_fetch_whole(store: &dyn ArtifactStore) -> Result<(), ArtifactError> {
    let dir = tempfile::tempdir().map_err(|e| io_error(e, "tmp"))?;
    let local = dir.path().join("epoch-3");
    std::fs::create_dir_all(local.join("optimizer")).map_err(|e| io_error(e, "mkdir"))?;
    std::fs::write(local.join("model.safetensors"), vec![7u8; 100_000]).map_err(|e| io_error(e, "write"))?;
    std::fs::write(local.join("optimizer/state.bin"), b"adam").map_err(|e| io_error(e, "write"))?;
    let fetched = dir.path().join("fetched/epoch-3");
    assert_eq!(fetch_folder(store, "runs/r1/checkpoints/epoch-3", &fetched)?, None, "nothing published yet");
    let published = publish_folder(store, &local, "runs/r1/checkpoints/epoch-3")?;
    assert_eq!((published.files, published.bytes, published.already), (2, 100_004, false));
    let again = publish_folder(store, &local, "runs/r1/checkpoints/epoch-3")?;
    assert!(again.already, "publishing the same folder twice is harmless");
    assert_eq!(fetch_folder(store, "runs/r1/checkpoints/epoch-3", &fetched)?, Some(2));
    assert_eq!(std::fs::read(fetched.join("optimizer/state.bin")).ok().as_deref(), Some(&b"adam"[..]));
    assert_eq!(std::fs::read(fetched.join("model.safetensors")).ok().map(|b| b.len()), Some(100_000));
    // Another machine publishes a different folder under the same name: refused, nothing changed.
    std::fs::write(local.join("model.safetensors"), vec![8u8; 100_000]).map_err(|e| io_error(e, "write"))?;
    let clash = publish_folder(store, &local, "runs/r1/checkpoints/epoch-3");
    assert!(matches!(clash, Err(ArtifactError::Mismatch { .. })), "{clash:?}");
    let refetched = dir.path().join("refetched");
    fetch_folder(store, "runs/r1/checkpoints/epoch-3", &refetched)?;
    assert_eq!(std::fs::read(refetched.join("model.safetensors")).ok().map(|b| b[0]), Some(7));
    // A single file replaces its earlier copy and is checked on the way up.
    assert_eq!(crate::publish_file(store, &local.join("model.safetensors"), "runs/r1/model.safetensors")?, 100_000);
    std::fs::write(local.join("model.safetensors"), b"resumed").map_err(|e| io_error(e, "write"))?;
    crate::publish_file(store, &local.join("model.safetensors"), "runs/r1/model.safetensors")?;
    assert_eq!(store.get("runs/r1/model.safetensors")?.as_deref(), Some(&b"resumed"[..]));
    // A damaged object is caught on the way down, and nothing is left in place.
    store.put("runs/r1/checkpoints/epoch-3/optimizer/state.bin", b"adaM")?;
    let damaged = dir.path().join("damaged");
    assert!(matches!(
        fetch_folder(store, "runs/r1/checkpoints/epoch-3", &damaged),
        Err(ArtifactError::Mismatch { .. })
    ));
    assert!(!damaged.exists());
    Ok(())
}

fn io_error(source: std::io::Error, action: &'static str) -> ArtifactError {
    ArtifactError::File(regimen_fs::FileError { path: std::path::PathBuf::from("tmp"), action, source })
}

/// One `#[test]` per conformance case for the store a [`Factory`] builds.
#[macro_export]
macro_rules! artifact_conformance {
    ($name:ident, $factory:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::artifact_conformance!(@cases $factory; objects_round_trip, conditional_puts_never_clobber,
                folders_list_and_delete, bad_keys_are_refused, folders_publish_and_fetch_whole);
        }
    };
    (@cases $factory:expr; $($case:ident),*) => {
        $(
            #[test]
            fn $case() -> Result<(), $crate::ArtifactError> {
                let factory: $crate::conformance::Factory = $factory;
                match factory() {
                    Some((store, _keep)) => $crate::conformance::$case(store.as_ref()),
                    None => Ok(()),
                }
            }
        )*
    };
}
