//! Connecting to PostgreSQL (TLS through rustls + ring) and classifying what went wrong.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};
use tracing::debug;

use crate::config::{PostgresSettings, SslMode};

/// The `application_name` every connection carries, so `pg_stat_activity` shows who we are.
pub fn application_name(identity: &str) -> String {
    let name = format!("dbinit/{} {identity}", env!("CARGO_PKG_VERSION"));
    // PostgreSQL truncates at NAMEDATALEN-1 (63 bytes), possibly mid-character.
    crate::outcome::truncate(&name, 63).to_string()
}

/// Opens one connection to `dbname`, spawning its driver task on the current runtime.
pub async fn connect(
    pg: &PostgresSettings,
    dbname: &str,
    app_name: &str,
    timeout: Duration,
) -> Result<Client, ConnectError> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&pg.host)
        .port(pg.port)
        .user(&pg.user)
        .dbname(dbname)
        .application_name(app_name)
        .connect_timeout(timeout.max(Duration::from_millis(10)))
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30));
    if let Some(p) = &pg.password {
        cfg.password(p.expose());
    }
    let client = match pg.sslmode {
        SslMode::Disable => {
            let (client, conn) = cfg.connect(NoTls).await?;
            spawn_driver(conn);
            client
        }
        mode => {
            cfg.ssl_mode(if mode == SslMode::Prefer {
                tokio_postgres::config::SslMode::Prefer
            } else {
                tokio_postgres::config::SslMode::Require
            });
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(
                tls_config(pg).map_err(ConnectError::TlsSetup)?,
            );
            let (client, conn) = cfg.connect(tls).await?;
            spawn_driver(conn);
            client
        }
    };
    Ok(client)
}

fn spawn_driver<S, T>(conn: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            debug!(error = %describe(&e), "postgres connection closed");
        }
    });
}

/// Why [`connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The driver or the server said no.
    #[error("{}", describe(.0))]
    Pg(#[from] tokio_postgres::Error),
    /// Connected, but `SELECT 1` did not answer in time.
    #[error("the server accepted the connection but did not answer a query within {0:?}")]
    Unresponsive(Duration),
    /// Our side of TLS could not be set up (unreadable CA file).
    #[error("failed to set up TLS: {0}")]
    TlsSetup(String),
}

impl ConnectError {
    /// How the attempt that produced this error should be treated.
    pub fn class(&self) -> Class {
        match self {
            Self::Pg(e) => classify(e),
            Self::Unresponsive(_) => Class::Transient,
            Self::TlsSetup(_) => Class::Refused,
        }
    }
}

/// The rustls client config for the configured sslmode.
fn tls_config(pg: &PostgresSettings) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    if pg.sslmode != SslMode::VerifyFull {
        // libpq's prefer/require encrypt without verifying; verify-full is the secure choice.
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth());
    }
    let path = pg
        .sslrootcert
        .clone()
        .or_else(|| std::env::var_os("SSL_CERT_FILE").map(Into::into))
        .unwrap_or_else(|| "/etc/ssl/certs/ca-certificates.crt".into());
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(&path)
        .map_err(|e| format!("cannot read CA certificates from {}: {e}", path.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("bad CA certificate in {}: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("bad CA certificate in {}: {e}", path.display()))?;
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// Accepts any server certificate while still checking the handshake signatures:
/// encryption without authentication, which is what libpq's `prefer`/`require` mean.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
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
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
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

/// How a failed connection attempt should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Retry with backoff: the server is not up yet, or the network blinked.
    Transient,
    /// The database we connected to does not exist (3D000).
    MissingDatabase,
    /// Bad credentials, no permission, TLS mismatch: fail fast with exit 4.
    Refused,
    /// Anything else the server said: fail, exit 1.
    Other,
}

/// Classifies a SQLSTATE seen while connecting.
pub fn classify_sqlstate(code: &SqlState) -> Class {
    let c = code.code();
    if *code == SqlState::INVALID_CATALOG_NAME {
        Class::MissingDatabase
    } else if c.starts_with("28") || *code == SqlState::INSUFFICIENT_PRIVILEGE {
        // 28P01 invalid_password, 28000 invalid_authorization_specification (pg_hba reject,
        // including "no encryption" when the server requires TLS).
        Class::Refused
    } else if c.starts_with("08")
        || c.starts_with("57P")
        || *code == SqlState::TOO_MANY_CONNECTIONS
        || *code == SqlState::CONFIGURATION_LIMIT_EXCEEDED
    {
        // 57P03 cannot_connect_now (starting up, shutting down, in recovery), 57P01 admin
        // shutdown, 53300 too many connections: all pass on their own.
        Class::Transient
    } else {
        Class::Other
    }
}

/// Classifies any error from [`connect`] or the first query.
pub fn classify(e: &tokio_postgres::Error) -> Class {
    if let Some(code) = e.code() {
        return classify_sqlstate(code);
    }
    // tokio-postgres keeps its error kind private; its Display is the kind's fixed text.
    match e.to_string().as_str() {
        "error performing TLS handshake" | "invalid configuration" | "authentication error" => {
            Class::Refused
        }
        _ => Class::Transient,
    }
}

/// Appends the server's DETAIL and HINT, which often say what to do, to a message.
pub fn push_detail_and_hint(s: &mut String, db: &tokio_postgres::error::DbError) {
    if let Some(d) = db.detail() {
        s.push_str("; ");
        s.push_str(d);
    }
    if let Some(h) = db.hint() {
        s.push_str("; hint: ");
        s.push_str(h);
    }
}

/// A person-readable account of a tokio-postgres error: the server's message and SQLSTATE,
/// or the driver's error with its causes ("error connecting to server: Connection refused").
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        push_detail_and_hint(&mut s, db);
        return s;
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    if s == "invalid configuration: password missing" {
        s.push_str(
            " (the server asked for a password: set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE)",
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_classified() {
        use Class::*;
        let cases = [
            (SqlState::INVALID_PASSWORD, Refused),
            (SqlState::INVALID_AUTHORIZATION_SPECIFICATION, Refused),
            (SqlState::INSUFFICIENT_PRIVILEGE, Refused),
            (SqlState::CANNOT_CONNECT_NOW, Transient),
            (SqlState::ADMIN_SHUTDOWN, Transient),
            (SqlState::TOO_MANY_CONNECTIONS, Transient),
            (SqlState::CONNECTION_FAILURE, Transient),
            (SqlState::INVALID_CATALOG_NAME, MissingDatabase),
            (SqlState::SYNTAX_ERROR, Other),
        ];
        for (code, want) in cases {
            assert_eq!(classify_sqlstate(&code), want, "{}", code.code());
        }
    }

    #[test]
    fn application_name_fits_namedatalen() {
        let n = application_name(&"é".repeat(100));
        assert!(n.len() <= 63 && n.starts_with("dbinit/"));
    }
}
