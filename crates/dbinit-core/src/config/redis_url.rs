//! Redis settings: `REDIS_URL` (with percent-decoding), or `REDIS_HOST` and friends, or the
//! file's `redis:` section. Redis is configured only by a URL, a host or that section: a lone
//! `REDIS_PORT` is what Kubernetes injects beside a Service named `redis`, not a request to
//! check Redis.

use super::args::RedisArgs;
use super::file::FileRedis;
use super::parse::{
    agree, describe, invalid, nonempty, parse_port, password, percent_decode, pick,
    read_secret_file, service_link_warning, set,
};
use super::tls_files::check_ca_file;
use crate::redis::RedisSettings;
use crate::secret::Secret;
use crate::setting::ConfigError;

type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// The checked Redis settings, or `None` when Redis is not configured; warnings (an ignored
/// or service-link port) go to `warnings`.
pub(super) fn resolve_redis(
    a: RedisArgs,
    f: Option<FileRedis>,
    warnings: &mut Vec<String>,
) -> Result<Option<RedisSettings>> {
    let file_given = f.is_some();
    let f = f.unwrap_or_default();
    let redis_url = match (set(a.redis_url), set(a.redis_url_file)) {
        (Some(_), Some(_)) => {
            return Err(ConfigError(
                "REDIS_URL (--redis-url) and REDIS_URL_FILE (--redis-url-file) are both set; use one of them".into(),
            ));
        }
        (Some(u), None) => Some(u),
        (None, Some(path)) => Some(read_secret_file("REDIS_URL_FILE", &path)?),
        (None, None) => None,
    };
    let sslrootcert = pick(
        a.redis_sslrootcert,
        "REDIS_SSLROOTCERT",
        f.sslrootcert,
        "redis.sslrootcert",
    );
    let sslrootcert_what = describe(sslrootcert.label);
    let sslrootcert = sslrootcert.value;
    let host = nonempty(pick(a.redis_host, "REDIS_HOST", f.host, "redis.host"))?;
    let port = pick(a.redis_port, "REDIS_PORT", f.port, "redis.port");
    let db = pick(a.redis_db, "REDIS_DB", f.db, "redis.db");
    let username = nonempty(pick(
        a.redis_username,
        "REDIS_USERNAME",
        f.username,
        "redis.username",
    ))?;
    let password = password(
        a.redis_password,
        "REDIS_PASSWORD (--redis-password)",
        pick(
            a.redis_password_file,
            "REDIS_PASSWORD_FILE",
            f.password_file,
            "redis.password_file",
        ),
    )?;
    let configured = host.is_some() || redis_url.is_some() || file_given;
    let port = match port.value {
        Some(raw) => {
            let p = parse_port(port.label, &raw)?;
            // With a URL, a service link's port belongs to some Service, not to the URL.
            let used = configured && !(p.service_link && redis_url.is_some());
            if p.service_link {
                warnings.push(service_link_warning(port.label, &raw, p.value, used));
            } else if !used {
                warnings.push(format!(
                    "{} is set, but Redis is configured only by REDIS_URL or REDIS_HOST; ignored",
                    super::parse::describe(port.label)
                ));
            }
            used.then_some(p.value)
        }
        None => None,
    };
    let db = match db.value {
        Some(raw) => Some(match raw.trim().parse::<i64>() {
            Ok(n) if n >= 0 => n,
            _ => {
                return Err(invalid(
                    db.label,
                    &raw,
                    "is not a database number (0, 1, ...)",
                ));
            }
        }),
        None => None,
    };
    let check_ca = |r: &mut RedisSettings| -> Result<()> {
        if let Some(p) = &sslrootcert {
            if !r.tls {
                return Err(ConfigError(format!(
                    "{sslrootcert_what} is set but the connection is not TLS: use a rediss:// or valkeys:// URL (or tls: true in the config file), or unset it"
                )));
            }
            check_ca_file(&sslrootcert_what, p)?;
            r.sslrootcert = Some(p.clone());
        }
        Ok(())
    };
    if let Some(url) = redis_url {
        if host.is_some() {
            return Err(ConfigError(
                "REDIS_URL (--redis-url) and REDIS_HOST (--redis-host) are both set; use one of them".into(),
            ));
        }
        let mut r = parse_redis_url(&url)?;
        if r.socket.is_some() && port.is_some() {
            return Err(ConfigError(
                "REDIS_PORT (--redis-port) is set but REDIS_URL is a unix socket (redis+unix://); unset one of them".into(),
            ));
        }
        r.port = port.map_or(Ok(r.port), |p| {
            agree(Some(p), "REDIS_PORT", Some(r.port)).map(|p| p.unwrap_or(r.port))
        })?;
        r.password = password.or(r.password);
        r.username = username.or(r.username);
        if let Some(d) = db {
            r.db = d;
        }
        check_ca(&mut r)?;
        return Ok(Some(r));
    }
    let Some(host) = host else {
        if file_given || password.is_some() || db.is_some() {
            return Err(ConfigError(
                "Redis settings are given but no REDIS_HOST (--redis-host) or REDIS_URL (--redis-url)"
                    .into(),
            ));
        }
        return Ok(None);
    };
    let mut r = RedisSettings {
        host,
        port: port.unwrap_or(6379),
        socket: None,
        tls: f.tls.unwrap_or(false),
        sslrootcert: None,
        username,
        password,
        db: db.unwrap_or(0),
        resp3: false,
    };
    check_ca(&mut r)?;
    Ok(Some(r))
}

/// The URL forms, for error messages.
const URL_FORMS: &str = "redis://[user:password@]host[:port][/db][?protocol=resp3], rediss:// (TLS), valkey://, valkeys:// (TLS), or redis+unix:///path/to/socket[?db=N]";

/// Parses `redis://`, `rediss://`, `valkey://`, `valkeys://` (`[user:password@]host[:port]
/// [/db][?protocol=resp2|resp3]`) and `redis+unix://` / `valkey+unix://` / `unix://`
/// (`[user:password@]/path[?db=N][&protocol=...]`); errors never echo the URL.
pub(super) fn parse_redis_url(url: &Secret) -> Result<RedisSettings> {
    let bad = |why: &str| {
        ConfigError(format!(
            "invalid REDIS_URL (--redis-url): {why} (expected {URL_FORMS})"
        ))
    };
    let raw = url.expose();
    let (scheme, rest) = raw
        .split_once("://")
        .ok_or_else(|| bad("not a Redis URL"))?;
    let (tls, unix) = match scheme {
        "redis" | "valkey" => (false, false),
        "rediss" | "valkeys" => (true, false),
        "redis+unix" | "valkey+unix" | "unix" => (false, true),
        _ => {
            return Err(bad(
                "the scheme is not one of redis, rediss, valkey, valkeys, redis+unix",
            ));
        }
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = if unix {
        // redis+unix://[user:password@]/path: the path starts at the first `/`.
        match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        }
    } else {
        rest.split_once('/').unwrap_or((rest, ""))
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (mut username, mut password) = match userinfo {
        None => (None, None),
        Some(u) => {
            let (user, pass) = u.split_once(':').unwrap_or((u, ""));
            let user = percent_decode(user).ok_or_else(|| bad("bad percent-encoding"))?;
            let pass = percent_decode(pass).ok_or_else(|| bad("bad percent-encoding"))?;
            (
                (!user.is_empty()).then_some(user),
                (!pass.is_empty()).then(|| Secret::new(pass)),
            )
        }
    };
    let mut db = None;
    let mut resp3 = false;
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let v = percent_decode(v).ok_or_else(|| bad("bad percent-encoding"))?;
        match k {
            "protocol" => {
                resp3 = match v.to_ascii_lowercase().as_str() {
                    "resp2" | "2" => false,
                    "resp3" | "3" => true,
                    _ => return Err(bad(&format!("protocol={v:?} is not resp2 or resp3"))),
                }
            }
            "db" => db = Some(v),
            "user" | "username" if unix => username = Some(v),
            "pass" | "password" if unix => password = Some(Secret::new(v)),
            k => {
                let shown =
                    if k.len() <= 40 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                        format!("unknown parameter {k}")
                    } else {
                        "an unknown parameter".into()
                    };
                return Err(bad(&format!(
                    "{shown}; dbinit takes protocol (and db, user, pass for a unix socket)"
                )));
            }
        }
    }
    let parse_db = |p: &str| {
        p.parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| bad("the database must be a database number (0, 1, ...)"))
    };
    if unix {
        if !hostport.is_empty() || path.len() < 2 {
            return Err(bad(
                "a unix socket URL needs an absolute path: redis+unix:///path/to/socket",
            ));
        }
        let socket = percent_decode(path).ok_or_else(|| bad("bad percent-encoding"))?;
        return Ok(RedisSettings {
            host: socket.clone(),
            port: 0,
            socket: Some(socket.into()),
            tls,
            sslrootcert: None,
            username,
            password,
            db: db.as_deref().map(parse_db).transpose()?.unwrap_or(0),
            resp3,
        });
    }
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        let (h, p) = h.split_once(']').ok_or_else(|| bad("unclosed [ in host"))?;
        (h.to_string(), p.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("the port is not a number from 1 to 65535"))?,
        None => 6379,
    };
    let db = match (path, db) {
        ("", None) => 0,
        ("", Some(d)) => parse_db(&d)?,
        (p, None) => parse_db(p)?,
        (_, Some(_)) => return Err(bad("the database is given twice (path and ?db=)")),
    };
    Ok(RedisSettings {
        host,
        port,
        socket: None,
        tls,
        sslrootcert: None,
        username,
        password,
        db,
        resp3,
    })
}
