//! PostgreSQL: where it is ([`PostgresSettings`]), how to reach it ([`connect`], [`tls`]),
//! how to write safe SQL text ([`sql`]), creating the application's database ([`database`]),
//! connections that close with the work that opened them ([`scope`]), and what a failure
//! means ([`classify`], [`PgError`], [`Error`]).

use std::path::PathBuf;

use tokio_postgres::error::SqlState;

use crate::dependency;
use crate::exit::ExitCode;
use crate::retry::Class;
use crate::secret::Secret;

pub mod connect;
pub mod database;
pub mod scope;
pub mod sql;
pub mod tls;

/// TLS policy towards PostgreSQL, with libpq's names and meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS if the server offers it, without verification (libpq's default).
    Prefer,
    /// TLS or fail, without verification.
    Require,
    /// TLS, certificate chain verified, host name not (a server certificate issued for
    /// another name by the trusted CA is accepted).
    VerifyCa,
    /// TLS, certificate chain and host name verified.
    VerifyFull,
}

impl SslMode {
    /// The accepted values, for error messages.
    pub const FORMS: &str = "disable, allow, prefer, require, verify-ca, verify-full";

    /// Whether the server's certificate chain is verified.
    pub fn verifies(self) -> bool {
        matches!(self, Self::VerifyCa | Self::VerifyFull)
    }

    /// Parses libpq's names (`allow` is taken as `prefer`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "disable" => Self::Disable,
            "prefer" | "allow" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }
}

/// Where and how to reach PostgreSQL, validated.
#[derive(Debug, Clone)]
pub struct PostgresSettings {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Role to connect as.
    pub user: String,
    /// Password, when the server asks for one.
    pub password: Option<Secret>,
    /// The application's database.
    pub database: String,
    /// Where readiness is checked and `CREATE DATABASE` is issued.
    pub maintenance_database: String,
    /// TLS policy.
    pub sslmode: SslMode,
    /// CA bundle for `verify-ca`/`verify-full` (`POSTGRES_SSLROOTCERT`).
    pub sslrootcert: Option<PathBuf>,
    /// Client certificate and its key (`POSTGRES_SSLCERT`, `POSTGRES_SSLKEY`), for
    /// `cert` authentication; both or neither, checked when configuration resolves.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// libpq's `options` (`-c search_path=app`), sent to the server at connection start.
    pub options: Option<String>,
    /// libpq's `application_name` from `DATABASE_URL`, instead of dbinit's own.
    pub application_name: Option<String>,
    /// libpq's `connect_timeout` from `DATABASE_URL`, instead of `DBINIT_CONNECT_TIMEOUT`.
    pub connect_timeout: Option<std::time::Duration>,
    /// libpq's `target_session_attrs`: `read-write` refuses a read-only server (a standby).
    pub target_session_attrs: tokio_postgres::config::TargetSessionAttrs,
    /// The system CA bundle, used when `sslrootcert` is not set (`SSL_CERT_FILE`, else
    /// Debian's path).
    pub default_roots: PathBuf,
}

/// The `application_name` every connection carries, so `pg_stat_activity` shows who we are.
pub fn application_name(identity: &str) -> String {
    let name = format!("dbinit/{} {identity}", env!("CARGO_PKG_VERSION"));
    // PostgreSQL truncates at NAMEDATALEN-1 (63 bytes), possibly mid-character.
    crate::text::truncate(&name, 63).to_string()
}

/// An error from the driver or the server, typed, that prints as a person needs it: the
/// server's message with SQLSTATE, DETAIL and HINT, or the driver's error with its causes.
#[derive(Debug, thiserror::Error)]
#[error("{}", describe(.0))]
pub struct PgError(pub tokio_postgres::Error);

impl PgError {
    /// The SQLSTATE, when the server raised the error.
    pub fn code(&self) -> Option<&SqlState> {
        self.0.code()
    }
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self(e)
    }
}

/// Why this room's own work failed: a statement outside any migration (creating the
/// database, reading a history table), or the server refusing us.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A PostgreSQL statement failed outside a migration.
    #[error("failed to {action}")]
    Statement {
        /// What was being done.
        action: String,
        /// The server's or driver's explanation.
        #[source]
        source: PgError,
    },
    /// The server refused us, or answered in a way we cannot use.
    #[error(transparent)]
    Dependency(#[from] dependency::Error),
}

impl Error {
    /// For `map_err`: a failed statement, named by what it was doing.
    pub fn statement(action: &str) -> impl FnOnce(tokio_postgres::Error) -> Self + '_ {
        move |e| Self::Statement {
            action: action.to_string(),
            source: PgError(e),
        }
    }

    /// The exit code this error ends the process with.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Statement { .. } => ExitCode::Failure,
            Self::Dependency(e) => e.exit_code(),
        }
    }
}

/// `Result` with this room's error as default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

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

/// Classifies any error from [`connect::connect`] or the first query.
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
