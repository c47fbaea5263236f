//! What a search store is opened with (API.md §5, elasticsearch), validated once, and the key
//! its shared HTTP client is registered under (never a secret in it).

use std::time::Duration;

use serde_json::Value as J;

use crate::error::{Error, Result};

/// Settings of one store: which nodes, which index, how to authenticate and write.
#[derive(Debug, Clone)]
pub struct SearchSettings {
    /// Base URLs (`http://127.0.0.1:9200`); requests go round-robin over them.
    pub hosts: Vec<String>,
    pub index: String,
    /// Sent as `Authorization: ApiKey <key>` (the base64 form Elasticsearch hands out).
    pub api_key: Option<String>,
    pub basic_auth: Option<(String, String)>,
    pub verify_certs: bool,
    /// A PEM bundle trusted instead of the built-in web roots.
    pub ca_certs: Option<String>,
    /// Writes ask the server to refresh before answering, so the next search sees them
    /// (0.11.0's default).
    pub refresh: bool,
    /// Index settings and mappings used when the store creates the index.
    pub settings: Option<J>,
    pub mappings: Option<J>,
    /// Creates the index on open when it is missing (readers opened by the CLI do not).
    pub create_index: bool,
    /// A `_bulk` request is cut at this many body bytes or this many documents.
    pub bulk_bytes: usize,
    pub bulk_docs: usize,
    /// Requests in flight at once for one batch.
    pub max_concurrency: usize,
    /// Attempts of one request answered 429/503 or cut before an answer.
    pub max_attempts: u32,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

impl SearchSettings {
    /// The defaults of API.md §5 for one host.
    pub fn new(host: impl Into<String>, index: impl Into<String>) -> SearchSettings {
        SearchSettings {
            hosts: vec![host.into()],
            index: index.into(),
            api_key: None,
            basic_auth: None,
            verify_certs: true,
            ca_certs: None,
            refresh: true,
            settings: None,
            mappings: None,
            create_index: true,
            bulk_bytes: 8 << 20,
            bulk_docs: 10_000,
            max_concurrency: 4,
            max_attempts: 5,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.hosts.is_empty() {
            return Err(config_err("hosts", "give at least one host URL"));
        }
        for h in &self.hosts {
            if !(h.starts_with("http://") || h.starts_with("https://")) {
                return Err(config_err(
                    "hosts",
                    format!("{h:?} must start with http:// or https://"),
                ));
            }
        }
        let i = &self.index;
        // Elasticsearch's rules for index names, checked here so a bad name never reaches a URL.
        let index_ok = !i.is_empty()
            && i.len() <= 255
            && i != "."
            && i != ".."
            && !i.starts_with(['-', '_', '+'])
            && i.chars().all(|c| {
                !c.is_uppercase()
                    && !c.is_control()
                    && !matches!(
                        c,
                        '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ' ' | ',' | '#' | ':'
                    )
            });
        if !index_ok {
            return Err(config_err(
                "index",
                format!(
                    "{i:?} is not an index name (lowercase, no spaces or \\ / * ? \" < > | , # :, \
                     not starting with - _ +)"
                ),
            ));
        }
        for (name, v) in [("settings", &self.settings), ("mappings", &self.mappings)] {
            if let Some(v) = v {
                if !v.is_object() {
                    return Err(config_err(name, "expected a mapping (JSON object)"));
                }
            }
        }
        if self.bulk_bytes < 1024 {
            return Err(config_err("bulk_bytes", "must be at least 1024"));
        }
        if self.bulk_docs == 0 {
            return Err(config_err("bulk_docs", "must be at least 1"));
        }
        if self.max_concurrency == 0 {
            return Err(config_err("max_concurrency", "must be at least 1"));
        }
        if self.max_attempts == 0 {
            return Err(config_err("max_retries", "must be at least 1 (attempts)"));
        }
        Ok(())
    }

    /// The client registry's public key: what shapes the client, the user name but no secret.
    pub(crate) fn client_key(&self) -> String {
        format!(
            "search hosts={} user={} api_key={} verify_certs={} ca_certs={} attempts={} \
             connect={:?} request={:?}",
            self.hosts.join(","),
            self.basic_auth.as_ref().map_or("-", |(u, _)| u.as_str()),
            if self.api_key.is_some() { "yes" } else { "no" },
            self.verify_certs,
            self.ca_certs.as_deref().unwrap_or("-"),
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
