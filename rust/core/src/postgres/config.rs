//! Connection settings: validated once, turned into a tokio-postgres config, and summarised as a
//! pool key that never contains the password.

use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::Host;

use super::tls::{self, SslMode};
use crate::error::{Error, Result};

/// What a store is opened with (API.md §5, postgres).
#[derive(Debug, Clone, Default)]
pub struct PgSettings {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub database: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub connection_string: Option<String>,
    pub table: String,
    pub schema_name: String,
    pub min_pool_size: usize,
    pub max_pool_size: usize,
    /// Seconds; becomes the server's `statement_timeout` on every connection.
    pub command_timeout: Option<f64>,
    /// An sslmode name (tls.rs); None: the connection string's `sslmode`, else `PGSSLMODE`,
    /// else `prefer`, as libpq and asyncpg do.
    pub ssl: Option<String>,
    pub auto_create_table: bool,
    /// False for PgBouncer in transaction pooling: no named statement outlives its
    /// transaction (asyncpg's `statement_cache_size=0`).
    pub prepared_statements: bool,
}

impl PgSettings {
    /// Defaults of API.md §5 for everything but the server.
    pub fn new() -> Self {
        PgSettings {
            table: "records".into(),
            schema_name: "public".into(),
            min_pool_size: 2,
            max_pool_size: 5,
            auto_create_table: true,
            prepared_statements: true,
            ..Default::default()
        }
    }
}

pub(crate) fn config_err(parameter: &str, message: impl std::fmt::Display) -> Error {
    Error::Config {
        parameter: parameter.to_string(),
        message: message.to_string(),
    }
}

pub(crate) fn valid_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 63
}

/// The settings a pool is shared by, and the driver config that connects with them.
pub(crate) struct Resolved {
    pub pg: tokio_postgres::Config,
    /// Everything that tells two pools apart except the password.
    pub key: String,
    pub min: usize,
    pub max: usize,
    pub connect_timeout: Duration,
    /// The rustls config when connections may use TLS.
    pub tls: Option<rustls::ClientConfig>,
}

/// Connection attempts give up after this long unless the command timeout is shorter.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn resolve(s: &PgSettings) -> Result<Resolved> {
    for (name, value) in [("table", &s.table), ("schema_name", &s.schema_name)] {
        if !valid_identifier(value) {
            return Err(config_err(
                name,
                format!(
                    "invalid identifier {value:?}: use letters, digits and _, not starting with a \
                     digit, at most 63 characters"
                ),
            ));
        }
    }
    if s.max_pool_size == 0 {
        return Err(config_err("max_pool_size", "must be at least 1"));
    }
    if s.min_pool_size > s.max_pool_size {
        return Err(config_err(
            "min_pool_size",
            format!(
                "{} is larger than max_pool_size {}",
                s.min_pool_size, s.max_pool_size
            ),
        ));
    }
    let command_timeout = match s.command_timeout {
        None => None,
        Some(t) if t.is_finite() && t > 0.0 => Some(Duration::from_secs_f64(t)),
        Some(t) => {
            return Err(config_err(
                "command_timeout",
                format!("must be a positive number of seconds, got {t}"),
            ))
        }
    };
    let tls_params = s.connection_string.as_deref().map(tls::take_tls_params);
    let (mode_name, mode_from) = match (&s.ssl, tls_params.as_ref().and_then(|p| p.sslmode.clone()))
    {
        (Some(m), _) => (m.clone(), "ssl"),
        (None, Some(m)) => (m, "connection_string"),
        (None, None) => match std::env::var("PGSSLMODE") {
            Ok(m) if !m.is_empty() => (m, "PGSSLMODE"),
            _ => ("prefer".to_string(), "ssl"),
        },
    };
    let mode = SslMode::parse(&mode_name).ok_or_else(|| {
        config_err(
            mode_from,
            format!(
                "unknown sslmode {mode_name:?}; expected one of {}",
                SslMode::NAMES.join(", ")
            ),
        )
    })?;
    let root_cert = tls_params
        .as_ref()
        .and_then(|p| p.sslrootcert.clone())
        .or_else(|| {
            std::env::var("PGSSLROOTCERT")
                .ok()
                .filter(|p| !p.is_empty())
        });
    let tls = tls::client_config(mode, root_cert.as_deref())?;
    let mut pg = match &tls_params {
        Some(p) => tokio_postgres::Config::from_str(&p.rest)
            .map_err(|e| config_err("connection_string", e))?,
        None => tokio_postgres::Config::new(),
    };
    pg.ssl_mode(mode.driver());
    if let Some(h) = &s.host {
        pg.host(h);
    }
    if pg.get_hosts().is_empty() {
        pg.host("localhost");
    }
    if let Some(p) = s.port {
        pg.port(p);
    }
    if let Some(d) = &s.database {
        pg.dbname(d);
    }
    if let Some(u) = &s.user {
        pg.user(u);
    }
    if pg.get_user().is_none() {
        pg.user("postgres");
    }
    if let Some(p) = &s.password {
        pg.password(p);
    }
    if pg.get_dbname().is_none() {
        let user = pg.get_user().unwrap_or("postgres").to_string();
        pg.dbname(&user);
    }
    let connect_timeout = command_timeout.map_or(CONNECT_TIMEOUT, |t| t.min(CONNECT_TIMEOUT));
    pg.connect_timeout(connect_timeout);
    if pg.get_application_name().is_none() {
        pg.application_name("dataknobs-data");
    }
    if let Some(t) = command_timeout {
        pg.options(format!("-c statement_timeout={}", t.as_millis().max(1)));
    }
    let hosts: Vec<String> = pg
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = pg.get_ports().iter().map(u16::to_string).collect();
    let mut key = format!(
        "postgresql://{}@{}:{}/{}?min_pool_size={}&max_pool_size={}&command_timeout={}\
         &sslmode={}{}",
        pg.get_user().unwrap_or(""),
        hosts.join(","),
        if ports.is_empty() {
            "5432".to_string()
        } else {
            ports.join(",")
        },
        pg.get_dbname().unwrap_or(""),
        s.min_pool_size,
        s.max_pool_size,
        command_timeout.map_or("none".to_string(), |t| format!("{}", t.as_secs_f64())),
        mode.name(),
        root_cert.map_or(String::new(), |p| format!("&sslrootcert={p}")),
    );
    // A connection of the prepared mode holds cached named statements that the other mode must
    // never inherit, so the two modes never share a pool.
    key.push_str(&format!("&prepared_statements={}", s.prepared_statements));
    Ok(Resolved {
        pg,
        key,
        min: s.min_pool_size,
        max: s.max_pool_size,
        connect_timeout,
        tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PgSettings {
        PgSettings {
            host: Some("127.0.0.1".into()),
            port: Some(6000),
            user: Some("u".into()),
            password: Some("s3cret".into()),
            database: Some("db".into()),
            ..PgSettings::new()
        }
    }

    #[test]
    fn key_has_no_password() {
        let r = resolve(&settings()).unwrap();
        assert!(!r.key.contains("s3cret"), "{}", r.key);
        assert!(
            r.key.starts_with("postgresql://u@127.0.0.1:6000/db?"),
            "{}",
            r.key
        );
        let mut s = settings();
        s.connection_string = Some("postgresql://x:pw@h:7000/d2".into());
        s.host = None;
        s.port = None;
        s.user = None;
        s.password = None;
        s.database = None;
        let r = resolve(&s).unwrap();
        assert!(r.key.starts_with("postgresql://x@h:7000/d2?"), "{}", r.key);
        assert!(!r.key.contains("pw"));
    }

    #[test]
    fn key_tells_the_statement_modes_apart() {
        let prepared = resolve(&settings()).unwrap().key;
        let mut s = settings();
        s.prepared_statements = false;
        let unnamed = resolve(&s).unwrap().key;
        assert!(
            prepared.ends_with("&prepared_statements=true"),
            "{prepared}"
        );
        assert!(unnamed.ends_with("&prepared_statements=false"), "{unnamed}");
    }

    #[test]
    fn validation() {
        for bad in ["", "1a", "a-b", "a\"b", "a b", &"x".repeat(64)] {
            let mut s = settings();
            s.table = bad.to_string();
            assert!(
                matches!(resolve(&s), Err(Error::Config { parameter, .. }) if parameter == "table")
            );
            let mut s = settings();
            s.schema_name = bad.to_string();
            assert!(
                matches!(resolve(&s), Err(Error::Config { parameter, .. }) if parameter == "schema_name")
            );
        }
        let mut s = settings();
        s.min_pool_size = 9;
        assert!(
            matches!(resolve(&s), Err(Error::Config { parameter, .. }) if parameter == "min_pool_size")
        );
        let mut s = settings();
        s.max_pool_size = 0;
        s.min_pool_size = 0;
        assert!(
            matches!(resolve(&s), Err(Error::Config { parameter, .. }) if parameter == "max_pool_size")
        );
        let mut s = settings();
        s.command_timeout = Some(-1.0);
        assert!(
            matches!(resolve(&s), Err(Error::Config { parameter, .. }) if parameter == "command_timeout")
        );
        let mut s = settings();
        s.connection_string = Some("postgresql://h:notaport/db".into());
        assert!(
            matches!(resolve(&s), Err(Error::Config { parameter, .. }) if parameter == "connection_string")
        );
        let mut s = settings();
        s.ssl = Some("on".into());
        assert!(matches!(resolve(&s), Err(Error::Config { parameter, .. }) if parameter == "ssl"));
    }
}
