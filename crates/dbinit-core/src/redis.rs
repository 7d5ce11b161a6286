//! Checking that Redis answers PING after AUTH, and classifying what went wrong.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};

use crate::config::RedisSettings;
use crate::postgres::Class;

/// Connects (TLS for `rediss://`), authenticates, selects the database and sends PING.
pub async fn ping(r: &RedisSettings, timeout: Duration) -> redis::RedisResult<()> {
    let addr = if r.tls {
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
        // CLIENT SETINFO costs a round trip and tells the server nothing it needs.
        .set_skip_set_lib_name();
    if let Some(p) = &r.password {
        settings = settings.set_password(p.expose());
    }
    if let Some(u) = &r.username {
        settings = settings.set_username(u);
    }
    let info = addr.into_connection_info()?.set_redis_settings(settings);
    let client = redis::Client::open(info)?;
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
    if e.kind() == redis::ErrorKind::AuthenticationFailed {
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
