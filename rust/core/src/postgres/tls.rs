//! TLS for PostgreSQL connections, with libpq's `sslmode` names over rustls (ring provider).
//!
//! `prefer` and `require` encrypt without checking the server's certificate, as libpq does
//! when no root certificate is configured; `verify-ca` checks the chain, `verify-full` the
//! chain and the host name. The roots are the file named by `sslrootcert` (connection string)
//! or `PGSSLROOTCERT`, else the Mozilla roots bundled by webpki-roots.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use percent_encoding::percent_decode_str;

use super::config::config_err;
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub const NAMES: [&'static str; 6] = [
        "disable",
        "allow",
        "prefer",
        "require",
        "verify-ca",
        "verify-full",
    ];

    pub fn parse(name: &str) -> Option<SslMode> {
        Some(match name.to_ascii_lowercase().as_str() {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// The driver's mode: whether it asks for TLS and whether it insists. `allow` means plain
    /// first in libpq, and a server that takes plain connections never needs the second try.
    pub(crate) fn driver(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as D;
        match self {
            SslMode::Disable | SslMode::Allow => D::Disable,
            SslMode::Prefer => D::Prefer,
            _ => D::Require,
        }
    }
}

/// The rustls client config for `mode`, None when connections are plain.
pub(crate) fn client_config(
    mode: SslMode,
    root_cert: Option<&str>,
) -> Result<Option<ClientConfig>> {
    if mode.driver() == tokio_postgres::config::SslMode::Disable {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| config_err("ssl", e))?;
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = Arc::new(root_store(root_cert)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| config_err("ssl", e))?;
            if mode == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(AnyHostName(webpki))
            }
        }
        _ => Arc::new(EncryptOnly(provider)),
    };
    Ok(Some(
        builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    ))
}

fn root_store(root_cert: Option<&str>) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match root_cert {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<std::result::Result<_, _>>())
                .map_err(|e| config_err("sslrootcert", format!("{path}: {e}")))?;
            if certs.is_empty() {
                return Err(config_err(
                    "sslrootcert",
                    format!("{path}: no PEM certificates"),
                ));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| config_err("sslrootcert", format!("{path}: {e}")))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(roots)
}

/// `prefer` / `require`: any certificate, but the handshake must still be signed by it.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the name in the certificate may differ.
#[derive(Debug)]
struct AnyHostName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `sslmode` and `sslrootcert` taken out of a connection string (the driver reads neither
/// `verify-ca` nor `verify-full` nor `sslrootcert`), and the rest of it.
pub(crate) struct TlsParams {
    pub rest: String,
    pub sslmode: Option<String>,
    pub sslrootcert: Option<String>,
}

pub(crate) fn take_tls_params(cs: &str) -> TlsParams {
    let mut out = TlsParams {
        rest: String::new(),
        sslmode: None,
        sslrootcert: None,
    };
    let mut take = |key: &str, value: String| -> bool {
        match key {
            "sslmode" => out.sslmode = Some(value),
            "sslrootcert" => out.sslrootcert = Some(value),
            _ => return false,
        }
        true
    };
    out.rest = if cs.contains("://") {
        // URL form: `&`-separated `key=value` pairs, percent-encoded (any `&` or `=` inside a
        // key or value is encoded, so splitting on them is exact).
        match cs.split_once('?') {
            Some((base, query)) => {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|pair| {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        let decode =
                            |t: &str| percent_decode_str(t).decode_utf8_lossy().into_owned();
                        !take(&decode(k), decode(v))
                    })
                    .collect();
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
            None => cs.to_string(),
        }
    } else {
        let mut kept = Vec::new();
        for (key, value, raw) in conninfo_pairs(cs) {
            if !take(&key, value) {
                kept.push(raw);
            }
        }
        kept.join(" ")
    };
    out
}

/// The `keyword = value` pairs of a libpq key/value connection string, with each pair's own
/// text. Written out because tokio-postgres' parser, the only other one at hand, refuses the
/// libpq options it does not implement (`sslmode=verify-full`, `sslrootcert`) and does not
/// expose its tokenizer. The grammar is libpq's: spaces around `=` are allowed; a value is a
/// run of non-space characters or a single-quoted string, in either of which `\` escapes the
/// next character. Text that is not a pair is kept as it is, for the driver to report.
fn conninfo_pairs(cs: &str) -> Vec<(String, String, String)> {
    let chars: Vec<char> = cs.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            break;
        }
        let start = i;
        let mut key = String::new();
        while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '=' {
            key.push(chars[i]);
            i += 1;
        }
        skip_ws(&mut i);
        if i >= chars.len() || chars[i] != '=' {
            out.push((
                String::new(),
                String::new(),
                chars[start..i].iter().collect(),
            ));
            continue;
        }
        i += 1;
        skip_ws(&mut i);
        let mut value = String::new();
        if i < chars.len() && chars[i] == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                value.push(chars[i]);
                i += 1;
            }
            i += 1; // the closing quote
        } else {
            while i < chars.len() && !chars[i].is_whitespace() {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                value.push(chars[i]);
                i += 1;
            }
        }
        let raw: String = chars[start..i.min(chars.len())].iter().collect();
        out.push((key, value, raw));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_params_leave_the_connection_string() {
        let p = take_tls_params(
            "postgresql://u@h:5/db?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca.pem",
        );
        assert_eq!(p.rest, "postgresql://u@h:5/db?application_name=x");
        assert_eq!(p.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(p.sslrootcert.as_deref(), Some("/tmp/ca.pem"));
        let p = take_tls_params("host=h sslmode=require dbname=d");
        assert_eq!(p.rest, "host=h dbname=d");
        assert_eq!(p.sslmode.as_deref(), Some("require"));
        let p = take_tls_params("postgresql://u@h/db");
        assert_eq!((p.rest.as_str(), p.sslmode), ("postgresql://u@h/db", None));
        // Quoted values with spaces and escapes stay whole; keyword values are not
        // percent-decoded (a % there is a %).
        let p = take_tls_params(
            r"host = h password='a b\'c' sslrootcert = '/tmp/my certs/ca%41.pem' sslmode=verify-ca",
        );
        assert_eq!(p.rest, r"host = h password='a b\'c'");
        assert_eq!(p.sslrootcert.as_deref(), Some("/tmp/my certs/ca%41.pem"));
        assert_eq!(p.sslmode.as_deref(), Some("verify-ca"));
        let p = take_tls_params(r"dbname=a\ b sslmode=require");
        assert_eq!(
            (p.rest.as_str(), p.sslmode.as_deref()),
            (r"dbname=a\ b", Some("require"))
        );
        // URL values are percent-decoded, keys too.
        let p = take_tls_params("postgres://h/d?ssl%6Dode=verify-full&x=%26");
        assert_eq!(
            (p.rest.as_str(), p.sslmode.as_deref()),
            ("postgres://h/d?x=%26", Some("verify-full"))
        );
    }

    #[test]
    fn modes() {
        for name in SslMode::NAMES {
            assert_eq!(SslMode::parse(name).map(SslMode::name), Some(name));
        }
        assert_eq!(SslMode::parse("VERIFY-FULL"), Some(SslMode::VerifyFull));
        assert!(SslMode::parse("on").is_none());
        assert!(client_config(SslMode::Disable, None).unwrap().is_none());
        assert!(client_config(SslMode::VerifyFull, None).unwrap().is_some());
        assert!(client_config(SslMode::VerifyCa, Some("/no/such/file.pem")).is_err());
    }
}
