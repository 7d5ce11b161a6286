//! Certificate and key files named by settings, checked when configuration resolves (exit 2
//! naming the setting), not at the first connection: a CA bundle, a client certificate and
//! its private key, with libpq's rule for the key's permissions.

use std::path::Path;

use crate::postgres::tls::{read_certs, read_key, read_roots};
use crate::setting::ConfigError;

type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// A PEM bundle of CA certificates; `what` names the setting
/// (`POSTGRES_SSLROOTCERT (--postgres-sslrootcert)`).
pub(super) fn check_ca_file(what: &str, path: &Path) -> Result<()> {
    read_roots(path).map(|_| ()).map_err(|e| {
        ConfigError(format!(
            "{what}: {e} (expected a PEM file of CA certificates)"
        ))
    })
}

/// A client certificate and its key. The key must not be readable by group or others
/// (0600), or, when root owns it, by others (0640), as libpq requires: a Kubernetes Secret
/// volume needs `defaultMode: 0400` or an `fsGroup`.
pub(super) fn check_client_cert(
    cert_what: &str,
    cert: &Path,
    key_what: &str,
    key: &Path,
) -> Result<()> {
    read_certs(cert).map_err(|e| {
        ConfigError(format!(
            "{cert_what}: {e} (expected a PEM file with the client certificate)"
        ))
    })?;
    let meta = std::fs::metadata(key).map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::NotFound {
            "no such file".to_string()
        } else {
            format!("cannot read: {e}")
        };
        ConfigError(format!(
            "{key_what}: {}: {why} (expected a PEM file with the client's private key)",
            key.display()
        ))
    })?;
    check_key_mode(key_what, key, &meta)?;
    read_key(key).map(|_| ()).map_err(|e| {
        ConfigError(format!(
            "{key_what}: {e} (expected a PEM file with the client's private key)"
        ))
    })
}

fn check_key_mode(what: &str, key: &Path, meta: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mode = meta.mode() & 0o777;
    let allowed = if meta.uid() == 0 { 0o640 } else { 0o600 };
    if mode & !allowed != 0 {
        return Err(ConfigError(format!(
            "{what}: {} is readable by group or others (mode {mode:04o}); the private key must be 0600 or stricter (0640 when owned by root), as libpq requires; in Kubernetes set the Secret volume's defaultMode to 0400",
            key.display()
        )));
    }
    Ok(())
}
