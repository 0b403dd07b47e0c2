//! [`ArtifactStore`] on Amazon S3 or any S3-compatible server (MinIO, Ceph, moto…), through
//! Apache Arrow's `object_store`.
//!
//! `object_store` is async; the store keeps one small tokio runtime of its own and blocks on it,
//! so callers stay synchronous. Conditional puts are S3's `If-None-Match: *`, which the server must
//! honour (AWS since 2024, MinIO, moto since 5.0.15): a server that ignores it would let two
//! writers overwrite each other, which `publish_folder` then detects by verifying what it wrote.

use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::{ArtifactError, ArtifactStore, check_key};

/// Objects in an S3 bucket, under an optional prefix.
#[derive(Debug)]
pub struct S3 {
    store: AmazonS3,
    prefix: String,
    location: String,
    runtime: tokio::runtime::Runtime,
}

impl S3 {
    /// The store at `s3://bucket[/prefix]`. Credentials and region come from `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` and `AWS_REGION` (default `us-east-1`), or the
    /// machine's instance role; `AWS_ENDPOINT_URL` points at another S3-compatible server
    /// (path-style requests; plain `http://` is allowed for a server on a trusted network).
    pub fn from_url(url: &str) -> Result<S3, ArtifactError> {
        let spec = |why: &str| ArtifactError::Spec { spec: url.to_string(), why: why.to_string() };
        let rest = url.strip_prefix("s3://").ok_or_else(|| spec("an S3 location starts with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_end_matches('/');
        if bucket.is_empty() {
            return Err(spec("it names no bucket (s3://BUCKET/PREFIX)"));
        }
        if !prefix.is_empty() {
            check_key(prefix).map_err(|_| spec("its prefix must be plain names separated by `/`"))?;
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none() {
            builder = builder.with_region("us-east-1");
        }
        if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
            builder = builder.with_endpoint(&endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        let store = builder.build().map_err(|e| spec(&e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("regimen-s3")
            .enable_all()
            .build()
            .map_err(|e| spec(&format!("cannot start its I/O thread: {e}")))?;
        Ok(S3 { store, prefix: prefix.to_string(), location: format!("s3://{bucket}/{prefix}"), runtime })
    }

    fn object(&self, key: &str) -> Result<ObjectPath, ArtifactError> {
        check_key(key)?;
        Ok(match self.prefix.as_str() {
            "" => ObjectPath::from(key),
            prefix => ObjectPath::from(format!("{prefix}/{key}")),
        })
    }

    fn failed(&self, action: &'static str, key: &str) -> impl FnOnce(object_store::Error) -> ArtifactError + '_ {
        let key = key.to_string();
        move |source| ArtifactError::Store { location: self.location.clone(), action, key, source: Box::new(source) }
    }

    /// The key of an object path, relative to the store's prefix.
    fn key_of(&self, path: &ObjectPath) -> String {
        let full = path.as_ref();
        match self.prefix.as_str() {
            "" => full.to_string(),
            prefix => full.strip_prefix(prefix).map_or(full, |rest| rest.trim_start_matches('/')).to_string(),
        }
    }
}

impl ArtifactStore for S3 {
    fn location(&self) -> &str {
        &self.location
    }

    fn put_new(&self, key: &str, bytes: &[u8]) -> Result<bool, ArtifactError> {
        let path = self.object(key)?;
        let payload = PutPayload::from(bytes.to_vec());
        match self.runtime.block_on(self.store.put_opts(&path, payload, PutOptions::from(PutMode::Create))) {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => Ok(false),
            Err(error) => Err(self.failed("create", key)(error)),
        }
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), ArtifactError> {
        let path = self.object(key)?;
        self.runtime
            .block_on(self.store.put(&path, PutPayload::from(bytes.to_vec())))
            .map_err(self.failed("write", key))?;
        Ok(())
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ArtifactError> {
        let path = self.object(key)?;
        let read = self.runtime.block_on(async { self.store.get(&path).await?.bytes().await });
        match read {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(self.failed("read", key)(error)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, ArtifactError> {
        let folder = match (prefix, self.prefix.as_str()) {
            ("", "") => None,
            ("", own) => Some(ObjectPath::from(own)),
            (prefix, _) => Some(self.object(prefix)?),
        };
        let listed: Vec<object_store::ObjectMeta> = self
            .runtime
            .block_on(self.store.list(folder.as_ref()).try_collect())
            .map_err(self.failed("list", prefix))?;
        let mut found: Vec<(String, u64)> = listed.iter().map(|m| (self.key_of(&m.location), m.size)).collect();
        found.sort();
        Ok(found)
    }

    fn delete_prefix(&self, prefix: &str) -> Result<u64, ArtifactError> {
        let listed = self.list(prefix)?;
        for (key, _) in &listed {
            let path = self.object(key)?;
            match self.runtime.block_on(self.store.delete(&path)) {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(self.failed("delete", key)(error)),
            }
        }
        Ok(listed.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::conformance::{Factory, TestBucket};

    const ON_S3: Factory = || {
        let bucket = TestBucket::create()?;
        let store = S3::from_url(&bucket.url()).unwrap_or_else(|e| panic!("{e}"));
        Some((Arc::new(store), Box::new(bucket)))
    };

    crate::artifact_conformance!(conformance, ON_S3);

    #[test]
    fn locations_name_a_bucket() {
        for bad in ["s3://", "s3:///x", "s3://b/../x"] {
            assert!(S3::from_url(bad).is_err(), "{bad}");
        }
    }
}
