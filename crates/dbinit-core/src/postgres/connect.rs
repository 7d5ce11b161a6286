//! Opening one connection, TLS through rustls + ring when the sslmode asks for it.

use std::time::Duration;

use tokio_postgres::{Client, NoTls};
use tracing::debug;

use super::{PgError, PostgresSettings, SslMode, classify, describe, tls};
use crate::dependency;
use crate::retry::Class;

/// Opens one connection to `dbname`, spawning its driver task on the current runtime.
pub async fn connect(
    pg: &PostgresSettings,
    dbname: &str,
    app_name: &str,
    timeout: Duration,
) -> Result<Client, ConnectError> {
    let mut cfg = tokio_postgres::Config::new();
    let timeout = pg.connect_timeout.unwrap_or(timeout);
    cfg.host(&pg.host)
        .port(pg.port)
        .user(&pg.user)
        .dbname(dbname)
        .application_name(pg.application_name.as_deref().unwrap_or(app_name))
        .target_session_attrs(pg.target_session_attrs)
        .connect_timeout(timeout.max(Duration::from_millis(10)))
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30));
    if let Some(p) = &pg.password {
        cfg.password(p.expose());
    }
    if let Some(o) = &pg.options {
        cfg.options(o);
    }
    let client = match pg.sslmode {
        SslMode::Disable => {
            let (client, conn) = cfg.connect(NoTls).await.map_err(PgError)?;
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
                tls::client_config(pg).map_err(ConnectError::TlsSetup)?,
            );
            let (client, conn) = cfg.connect(tls).await.map_err(PgError)?;
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
    let driver = tokio::spawn(async move {
        if let Err(e) = conn.await {
            debug!(error = %describe(&e), "postgres connection closed");
        }
    });
    super::scope::register(driver.abort_handle());
}

/// Why [`connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The driver or the server said no.
    #[error(transparent)]
    Pg(#[from] PgError),
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
            Self::Pg(e) => classify(&e.0),
            Self::Unresponsive(_) => Class::Transient,
            Self::TlsSetup(_) => Class::Refused,
        }
    }
}

impl From<tokio_postgres::Error> for ConnectError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Pg(PgError(e))
    }
}

/// How errors name the application's database.
pub fn target_label(pg: &PostgresSettings) -> String {
    format!(
        "PostgreSQL at {}:{} (database {:?})",
        pg.host, pg.port, pg.database
    )
}

/// Connects to the application's database (after creating it, and for the work connection);
/// a refusal is exit 4, anything else exit 1.
pub async fn connect_target(
    pg: &PostgresSettings,
    app: &str,
    timeout: Duration,
) -> dependency::Result<Client> {
    connect(pg, &pg.database, app, timeout).await.map_err(|e| {
        let dependency = target_label(pg);
        match e.class() {
            Class::Refused => dependency::Error::Refused {
                dependency,
                cause: Box::new(e),
            },
            _ => dependency::Error::Unusable {
                dependency,
                cause: Box::new(e),
            },
        }
    })
}
