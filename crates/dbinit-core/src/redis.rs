//! Redis: where it is ([`RedisSettings`]), checking that it answers PING after AUTH, and
//! what a failure means.

use std::path::PathBuf;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, ProtocolVersion, RedisConnectionInfo,
};

use crate::retry::Class;
use crate::secret::Secret;

/// Where and how to reach Redis, validated.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Unix socket (`redis+unix:///path`); `host` and `port` are then unused.
    pub socket: Option<PathBuf>,
    /// TLS (`rediss://`, `valkeys://`).
    pub tls: bool,
    /// CA bundle (PEM) for TLS instead of the system roots (`REDIS_SSLROOTCERT`).
    pub sslrootcert: Option<PathBuf>,
    /// ACL user name.
    pub username: Option<String>,
    /// Password for AUTH.
    pub password: Option<Secret>,
    /// Logical database selected after AUTH.
    pub db: i64,
    /// Speak RESP3 (`?protocol=resp3`): HELLO 3 instead of AUTH.
    pub resp3: bool,
}

impl RedisSettings {
    /// Where the server is, for messages: `host:port` or the socket's path.
    pub fn address(&self) -> String {
        match &self.socket {
            Some(p) => p.display().to_string(),
            None => format!("{}:{}", self.host, self.port),
        }
    }
}

/// Connects (TLS for `rediss://`), authenticates, selects the database and sends PING.
pub async fn ping(r: &RedisSettings, timeout: Duration) -> redis::RedisResult<()> {
    let addr = if let Some(p) = &r.socket {
        ConnectionAddr::Unix(p.clone())
    } else if r.tls {
        ConnectionAddr::TcpTls {
            host: r.host.clone(),
            port: r.port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(r.host.clone(), r.port)
    };
    let mut settings = RedisConnectionInfo::default()
        .set_db(r.db)
        .set_protocol(if r.resp3 {
            ProtocolVersion::RESP3
        } else {
            ProtocolVersion::RESP2
        })
        // CLIENT SETINFO costs a round trip and tells the server nothing it needs.
        .set_skip_set_lib_name();
    if let Some(p) = &r.password {
        settings = settings.set_password(p.expose());
    }
    if let Some(u) = &r.username {
        settings = settings.set_username(u);
    }
    let info = addr.into_connection_info()?.set_redis_settings(settings);
    let client = match (&r.sslrootcert, r.tls) {
        (Some(ca), true) => {
            let root_cert = std::fs::read(ca).map_err(|e| {
                redis::RedisError::from((
                    redis::ErrorKind::InvalidClientConfig,
                    "cannot read REDIS_SSLROOTCERT",
                    format!("{}: {e}", ca.display()),
                ))
            })?;
            redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                },
            )?
        }
        _ => redis::Client::open(info)?,
    };
    let timeout = timeout.max(Duration::from_millis(10));
    let cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    let mut con: MultiplexedConnection = client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await?;
    let pong: String = redis::cmd("PING").query_async(&mut con).await?;
    if pong != "PONG" {
        return Err(redis::RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "PING did not answer PONG",
        )));
    }
    Ok(())
}

/// How a failed Redis attempt should be treated.
pub fn classify(e: &redis::RedisError) -> Class {
    match e.code() {
        Some("NOAUTH" | "WRONGPASS" | "NOPERM") => return Class::Refused,
        Some("LOADING" | "BUSY" | "MASTERDOWN" | "TRYAGAIN") => return Class::Transient,
        _ => {}
    }
    if e.kind() == redis::ErrorKind::AuthenticationFailed || tls_rejected(e) {
        Class::Refused
    } else if e.is_io_error()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_connection_dropped()
    {
        Class::Transient
    } else {
        Class::Other
    }
}

/// A TLS handshake that failed on a certificate or a protocol mismatch: waiting will not fix
/// it. The redis crate wraps rustls' error in an `io::Error` that hides it from
/// `source()`, so its fixed rustls text is what there is to go by.
fn tls_rejected(e: &redis::RedisError) -> bool {
    let text = e.to_string();
    e.is_io_error()
        && [
            "invalid peer certificate",
            "peer is incompatible",
            "received fatal alert",
        ]
        .iter()
        .any(|t| text.contains(t))
}

/// What a failed attempt means for an operator: which setting to fix for an auth error.
pub fn reason(e: &redis::RedisError, r: &RedisSettings) -> String {
    match e.code() {
        Some("NOAUTH") => "the server requires a password and none is configured (set REDIS_PASSWORD or REDIS_PASSWORD_FILE)".into(),
        Some("WRONGPASS") => format!(
            "authentication failed for user {:?}: wrong password",
            r.username.as_deref().unwrap_or("default")
        ),
        _ if e.kind() == redis::ErrorKind::AuthenticationFailed => format!(
            "authentication failed for user {:?}: {e}",
            r.username.as_deref().unwrap_or("default")
        ),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_errors_are_permanent_io_errors_transient() {
        let auth = redis::RedisError::from((redis::ErrorKind::AuthenticationFailed, "x"));
        assert_eq!(classify(&auth), Class::Refused);
        let io =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(classify(&io), Class::Transient);
    }
}
