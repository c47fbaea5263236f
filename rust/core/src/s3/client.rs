//! The process-wide registry of S3 clients. Stores with the same endpoint, region, credentials,
//! bucket and client settings share one client (its HTTP connection pool) and one concurrency
//! cap; the client lives as long as a store holds it (the registry keeps weak handles only).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    SharedHttpClient,
};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use parking_lot::Mutex;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::config::S3Settings;
use crate::error::{Error, Result};

/// Idle connections are dropped before the server would cut them (SeaweedFS: 120 s, AWS S3
/// about 20 s): a reused connection the server already closed fails the request on it.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(15);
const DEFAULT_REGION: &str = "us-east-1";

pub struct SharedClient {
    pub(crate) s3: aws_sdk_s3::Client,
    permits: Semaphore,
    /// The public key: settings without secrets.
    pub(crate) key: String,
    pub(crate) max_concurrency: usize,
    requests: AtomicU64,
    waits: AtomicU64,
}

/// A snapshot for `pool_stats()`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientStats {
    pub key: String,
    pub max_concurrency: usize,
    pub in_flight: usize,
    pub requests: u64,
    pub waits: u64,
    /// Stores holding this client.
    pub stores: usize,
}

type Registry = Mutex<HashMap<(String, u64), Weak<SharedClient>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

fn secret_fingerprint(s: &S3Settings) -> u64 {
    // A per-process random key: tells secrets apart without a stable hash of them.
    static SEED: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    SEED.get_or_init(std::collections::hash_map::RandomState::new)
        .hash_one((&s.secret_access_key, &s.session_token))
}

/// One HTTP client for every S3 client of the process: rustls on ring, pooled connections. Its
/// connections live on the runtime that opened them: the process has one (the extension's).
fn http_client() -> SharedHttpClient {
    static HTTP: OnceLock<SharedHttpClient> = OnceLock::new();
    HTTP.get_or_init(|| {
        aws_smithy_http_client::Builder::new()
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https()
    })
    .clone()
}

impl SharedClient {
    /// The live client for these settings, else a new one.
    pub(crate) async fn acquire(s: &S3Settings) -> Result<Arc<SharedClient>> {
        let map_key = (s.client_key(), secret_fingerprint(s));
        if let Some(live) = registry().lock().get(&map_key).and_then(Weak::upgrade) {
            return Ok(live);
        }
        let s3 = build(s).await?;
        let shared = Arc::new(SharedClient {
            s3,
            permits: Semaphore::new(s.max_concurrency),
            key: map_key.0.clone(),
            max_concurrency: s.max_concurrency,
            requests: AtomicU64::new(0),
            waits: AtomicU64::new(0),
        });
        let mut reg = registry().lock();
        // Another opener may have raced us; keep the first client so both share it.
        if let Some(live) = reg.get(&map_key).and_then(Weak::upgrade) {
            return Ok(live);
        }
        reg.retain(|_, w| w.strong_count() > 0);
        reg.insert(map_key, Arc::downgrade(&shared));
        Ok(shared)
    }

    /// A slot for one request; held while it runs.
    pub(crate) async fn permit(&self) -> Result<SemaphorePermit<'_>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if self.permits.available_permits() == 0 {
            self.waits.fetch_add(1, Ordering::Relaxed);
        }
        self.permits
            .acquire()
            .await
            .map_err(|_| Error::Closed("s3 client".into()))
    }

    pub fn stats(self: &Arc<Self>) -> ClientStats {
        ClientStats {
            key: self.key.clone(),
            max_concurrency: self.max_concurrency,
            in_flight: self
                .max_concurrency
                .saturating_sub(self.permits.available_permits()),
            requests: self.requests.load(Ordering::Relaxed),
            waits: self.waits.load(Ordering::Relaxed),
            stores: Arc::strong_count(self),
        }
    }
}

async fn build(s: &S3Settings) -> Result<aws_sdk_s3::Client> {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(s.connect_timeout)
        .read_timeout(s.request_timeout)
        .operation_attempt_timeout(s.request_timeout)
        // Every attempt and the backoff between them, with a margin for the jitter.
        .operation_timeout(s.request_timeout * s.max_attempts + Duration::from_secs(5))
        .build();
    let mut b = aws_sdk_s3::config::Builder::new();
    let explicit = match (&s.access_key_id, &s.secret_access_key) {
        (Some(id), Some(secret)) => Some(Credentials::new(
            id.clone(),
            secret.clone(),
            s.session_token.clone(),
            None,
            "dataknobs-config",
        )),
        _ => None,
    };
    if explicit.is_none() || s.region.is_none() {
        // The standard chain: environment, shared config and credentials files, and the
        // rest of aws-config's default providers.
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client());
        if let Some(r) = &s.region {
            loader = loader.region(Region::new(r.clone()));
        }
        let sdk = loader.load().await;
        b = aws_sdk_s3::config::Builder::from(&sdk);
        if s.region.is_none() && sdk.region().is_none() {
            b = b.region(Region::new(DEFAULT_REGION));
        }
    }
    if let Some(r) = &s.region {
        b = b.region(Region::new(r.clone()));
    }
    if let Some(creds) = explicit {
        b = b.credentials_provider(creds);
    }
    if let Some(url) = &s.endpoint_url {
        b = b.endpoint_url(url.clone()).force_path_style(true);
    }
    let config = b
        .behavior_version(BehaviorVersion::latest())
        .http_client(http_client())
        .retry_config(RetryConfig::standard().with_max_attempts(s.max_attempts))
        .timeout_config(timeouts)
        // Checksums only where the API requires one (multi-object delete): S3-compatible
        // servers differ in the trailing-checksum encodings they accept.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build();
    Ok(aws_sdk_s3::Client::from_conf(config))
}

/// Number of live clients in the process (for tests and diagnostics).
pub fn live_clients() -> usize {
    registry()
        .lock()
        .values()
        .filter(|w| w.strong_count() > 0)
        .count()
}
