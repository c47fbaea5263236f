//! What an S3 store is opened with (API.md §5, s3), validated once, and the key its shared
//! client is registered under (never a secret in it).

use std::time::Duration;

use crate::error::{Error, Result};

/// Settings of one store: where the objects live and how the client talks to the server.
#[derive(Debug, Clone)]
pub struct S3Settings {
    pub bucket: String,
    /// Put before every key; "" or ending in "/" (the Python layer normalises it).
    pub prefix: String,
    /// None: the standard AWS chain (env, profile), else "us-east-1".
    pub region: Option<String>,
    /// A custom endpoint (SeaweedFS, MinIO, LocalStack): addressed path-style.
    pub endpoint_url: Option<String>,
    /// Both or neither; neither means the standard AWS credential chain.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Requests in flight at once, over every store sharing the client.
    pub max_concurrency: usize,
    /// Attempts per request (the SDK's standard retry mode: backoff with jitter on throttling,
    /// 5xx and transport errors).
    pub max_attempts: u32,
    pub connect_timeout: Duration,
    /// One attempt of one request.
    pub request_timeout: Duration,
    /// Creates the bucket on open when it is missing (as 0.11.0 does).
    pub create_bucket: bool,
}

impl S3Settings {
    /// The defaults of API.md §5 for everything but the bucket.
    pub fn new(bucket: impl Into<String>) -> S3Settings {
        S3Settings {
            bucket: bucket.into(),
            prefix: "records/".into(),
            region: None,
            endpoint_url: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            max_concurrency: 64,
            max_attempts: 3,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            create_bucket: true,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let b = &self.bucket;
        let bucket_ok = (3..=63).contains(&b.len())
            && b.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
            && !b.starts_with(['-', '.'])
            && !b.ends_with(['-', '.']);
        if !bucket_ok {
            return Err(config_err(
                "bucket",
                format!(
                    "{b:?} is not a bucket name (3 to 63 lowercase letters, digits, '-' and '.')"
                ),
            ));
        }
        if self.prefix.starts_with('/')
            || self.prefix.split('/').any(|seg| seg == "..")
            || self.prefix.chars().any(char::is_control)
        {
            return Err(config_err(
                "prefix",
                format!(
                    "{:?} must not start with '/' or hold '..' or control characters",
                    self.prefix
                ),
            ));
        }
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            return Err(config_err(
                "secret_access_key",
                "give both access_key_id and secret_access_key, or neither (the AWS chain)",
            ));
        }
        if self.max_concurrency == 0 {
            return Err(config_err("max_concurrency", "must be at least 1"));
        }
        if self.max_attempts == 0 {
            return Err(config_err(
                "max_retries",
                "must be at least 1 (attempts per request)",
            ));
        }
        if let Some(url) = &self.endpoint_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(config_err(
                    "endpoint_url",
                    format!("{url:?} must start with http:// or https://"),
                ));
            }
        }
        Ok(())
    }

    /// The client registry's public key: what shapes the client, the access key id but no
    /// secret (the registry adds a fingerprint of those).
    pub(crate) fn client_key(&self) -> String {
        format!(
            "s3 endpoint={} region={} access_key_id={} bucket={} max_concurrency={} \
             attempts={} connect={:?} request={:?}",
            self.endpoint_url.as_deref().unwrap_or("aws"),
            self.region.as_deref().unwrap_or("chain"),
            self.access_key_id.as_deref().unwrap_or("chain"),
            self.bucket,
            self.max_concurrency,
            self.max_attempts,
            self.connect_timeout,
            self.request_timeout,
        )
    }
}

pub(crate) fn config_err(parameter: &str, message: impl std::fmt::Display) -> Error {
    Error::Config {
        parameter: parameter.to_string(),
        message: message.to_string(),
    }
}
