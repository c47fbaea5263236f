//! The process-wide registry of search clients. Stores with the same hosts, credentials and
//! TLS settings share one reqwest client (its connection pool); the client lives as long as a
//! store holds it (the registry keeps weak handles only).
//!
//! Every request goes through [`SharedClient::send`]: round-robin over the hosts, plain
//! `application/json` (OpenSearch 2.x refuses Elasticsearch's compatibility media type, and
//! Elasticsearch 8 takes plain JSON), and retries with capped exponential backoff and jitter
//! for 429 and 503 answers and for requests cut before any answer. Every request this crate
//! sends is safe to repeat: writes name their ids, so a repeated `_bulk` item overwrites itself
//! or finds its own document (a `create` that finds it reports 409, which the store resolves).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use base64::Engine;
use parking_lot::Mutex;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;

use super::config::{config_err, SearchSettings};
use super::errors::connection_err;
use crate::error::{Error, Result};

/// The first retry waits this long; each later one twice as long, up to [`BACKOFF_CAP`].
const BACKOFF_BASE: Duration = Duration::from_millis(50);
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// Idle connections are dropped before a proxy or the server would cut them.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Which server answers: their point-in-time APIs differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    OpenSearch,
    Elasticsearch,
}

pub struct SharedClient {
    http: reqwest::Client,
    hosts: Vec<String>,
    next_host: AtomicUsize,
    max_attempts: u32,
    pub(crate) flavour: Flavour,
    /// The server's version number (`GET /`), for diagnostics.
    pub(crate) version: String,
    pub(crate) key: String,
    requests: AtomicU64,
    retries: AtomicU64,
}

/// A snapshot for `pool_stats()`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientStats {
    pub key: String,
    pub flavour: &'static str,
    pub version: String,
    pub requests: u64,
    pub retries: u64,
    /// Stores holding this client.
    pub stores: usize,
}

/// An answer: status and body.
pub(crate) struct Answer {
    pub status: u16,
    pub body: bytes::Bytes,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn text(&self) -> Result<&str> {
        std::str::from_utf8(&self.body)
            .map_err(|e| Error::data_format("json", format!("response is not UTF-8: {e}")))
    }

    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::data_format("json", format!("response is not JSON: {e}")))
    }
}

type Registry = Mutex<HashMap<(String, u64), Weak<SharedClient>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

fn secret_fingerprint(s: &SearchSettings) -> u64 {
    // A per-process random key: tells secrets apart without a stable hash of them.
    static SEED: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    SEED.get_or_init(std::collections::hash_map::RandomState::new)
        .hash_one((&s.api_key, s.basic_auth.as_ref().map(|(_, p)| p)))
}

impl SharedClient {
    /// The live client for these settings, else a new one (which asks `GET /` who answers:
    /// an unreachable server or refused credentials fail here).
    pub(crate) async fn acquire(s: &SearchSettings) -> Result<Arc<SharedClient>> {
        let map_key = (s.client_key(), secret_fingerprint(s));
        if let Some(live) = registry().lock().get(&map_key).and_then(Weak::upgrade) {
            return Ok(live);
        }
        let http = build(s)?;
        let mut client = SharedClient {
            http,
            hosts: s
                .hosts
                .iter()
                .map(|h| h.trim_end_matches('/').to_string())
                .collect(),
            next_host: AtomicUsize::new(0),
            max_attempts: s.max_attempts,
            flavour: Flavour::Elasticsearch,
            version: String::new(),
            key: map_key.0.clone(),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        };
        let hello = client.send(Method::GET, "/", None).await?;
        if !hello.ok() {
            return Err(super::errors::http_err(
                "connect",
                &client.hosts[0],
                hello.status,
                &hello.body,
            ));
        }
        let j = hello.json()?;
        let version = &j["version"];
        client.flavour = if version["distribution"].as_str() == Some("opensearch") {
            Flavour::OpenSearch
        } else {
            Flavour::Elasticsearch
        };
        client.version = version["number"].as_str().unwrap_or("?").to_string();
        let shared = Arc::new(client);
        let mut reg = registry().lock();
        // Another opener may have raced us; keep the first client so both share it.
        if let Some(live) = reg.get(&map_key).and_then(Weak::upgrade) {
            return Ok(live);
        }
        reg.retain(|_, w| w.strong_count() > 0);
        reg.insert(map_key, Arc::downgrade(&shared));
        Ok(shared)
    }

    /// One request (a JSON body or an NDJSON `_bulk` body), retried as the module says. The
    /// answer may be any status; only a request that never got one is an error.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(bytes::Bytes, &'static str)>,
    ) -> Result<Answer> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let host =
                &self.hosts[self.next_host.fetch_add(1, Ordering::Relaxed) % self.hosts.len()];
            let mut req = self.http.request(method.clone(), format!("{host}{path}"));
            if let Some((bytes, content_type)) = &body {
                req = req
                    .header(CONTENT_TYPE, HeaderValue::from_static(content_type))
                    .body(bytes.clone());
            }
            let outcome = match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    match resp.bytes().await {
                        Ok(body) => Ok(Answer { status, body }),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            let retry = match &outcome {
                Ok(a) => matches!(a.status, 429 | 503),
                Err(e) => e.is_connect() || e.is_timeout() || e.is_request() || e.is_body(),
            };
            if !retry || attempt >= self.max_attempts {
                return outcome.map_err(|e| {
                    connection_err(format!(
                        "{method} {host}{path}: {} (after {attempt} attempts)",
                        error_chain(&e)
                    ))
                });
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(backoff(attempt)).await;
        }
    }

    pub(crate) fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    pub fn stats(self: &Arc<Self>) -> ClientStats {
        ClientStats {
            key: self.key.clone(),
            flavour: match self.flavour {
                Flavour::OpenSearch => "opensearch",
                Flavour::Elasticsearch => "elasticsearch",
            },
            version: self.version.clone(),
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            stores: Arc::strong_count(self),
        }
    }
}

/// The wait before attempt `attempt + 1`: exponential, capped, with full jitter (so clients
/// throttled together do not come back together).
pub(crate) fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_CAP);
    // Jitter from the clock's nanoseconds: no RNG dependency for one number per retry.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let frac = f64::from(nanos % 1000) / 1000.0;
    ceiling.mul_f64(0.5 + frac / 2.0)
}

/// An error and its causes on one line (reqwest's Display stops at the first).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

fn build(s: &SearchSettings) -> Result<reqwest::Client> {
    let mut headers = HeaderMap::new();
    let auth = match (&s.api_key, &s.basic_auth) {
        (Some(key), _) => Some(format!("ApiKey {key}")),
        (None, Some((user, password))) => Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )),
        (None, None) => None,
    };
    if let Some(a) = auth {
        let mut v = HeaderValue::from_str(&a)
            .map_err(|_| config_err("api_key", "holds characters a header cannot carry"))?;
        v.set_sensitive(true);
        headers.insert(AUTHORIZATION, v);
    }
    let mode = if s.verify_certs {
        crate::postgres::tls::SslMode::VerifyFull
    } else {
        crate::postgres::tls::SslMode::Require
    };
    let tls = crate::postgres::tls::client_config(mode, s.ca_certs.as_deref())
        .map_err(|e| match e {
            Error::Config { message, .. } => config_err("ca_certs", message),
            other => other,
        })?
        .ok_or_else(|| config_err("verify_certs", "no TLS configuration"))?;
    reqwest::Client::builder()
        .default_headers(headers)
        .use_preconfigured_tls(tls)
        .connect_timeout(s.connect_timeout)
        .timeout(s.request_timeout)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| config_err("hosts", error_chain(&e)))
}

/// Number of live clients in the process (for tests and diagnostics).
pub fn live_clients() -> usize {
    registry()
        .lock()
        .values()
        .filter(|w| w.strong_count() > 0)
        .count()
}
