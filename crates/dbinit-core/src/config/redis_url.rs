//! Redis settings: `REDIS_URL` (with percent-decoding), or `REDIS_HOST` and friends, or the
//! file's `redis:` section. Redis is configured only by a URL, a host or that section: a lone
//! `REDIS_PORT` is what Kubernetes injects beside a Service named `redis`, not a request to
//! check Redis.

use super::ConfigError;
use super::args::RedisArgs;
use super::file::FileRedis;
use super::parse::{agree, invalid, nonempty, parse_port, password, pick, service_link_warning};
use crate::redis::RedisSettings;
use crate::secret::Secret;

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
    let configured = host.is_some() || a.redis_url.is_some() || file_given;
    let port = match port.value {
        Some(raw) => {
            let p = parse_port(port.label, &raw)?;
            // With a URL, a service link's port belongs to some Service, not to the URL.
            let used = configured && !(p.service_link && a.redis_url.is_some());
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
    if let Some(url) = a.redis_url {
        if host.is_some() {
            return Err(ConfigError(
                "REDIS_URL and REDIS_HOST are both set; use one".into(),
            ));
        }
        let mut r = parse_redis_url(&url)?;
        r.port = port.map_or(Ok(r.port), |p| {
            agree(Some(p), "REDIS_PORT", Some(r.port)).map(|p| p.unwrap_or(r.port))
        })?;
        r.password = password.or(r.password);
        r.username = username.or(r.username);
        if let Some(d) = db {
            r.db = d;
        }
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
    Ok(Some(RedisSettings {
        host,
        port: port.unwrap_or(6379),
        tls: f.tls.unwrap_or(false),
        username,
        password,
        db: db.unwrap_or(0),
    }))
}

/// Parses `redis://[user:password@]host[:port][/db]` or `rediss://...`; errors never echo
/// the URL.
pub(super) fn parse_redis_url(url: &Secret) -> Result<RedisSettings> {
    let bad = |why: &str| {
        ConfigError(format!(
            "invalid REDIS_URL (--redis-url): {why} (expected redis://[user:password@]host[:port][/db] or rediss://...)"
        ))
    };
    let raw = url.expose();
    let (tls, rest) = if let Some(r) = raw.strip_prefix("rediss://") {
        (true, r)
    } else if let Some(r) = raw.strip_prefix("redis://") {
        (false, r)
    } else {
        return Err(bad("not a redis:// or rediss:// URL"));
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
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
    let db = match path {
        "" => 0,
        p => p
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| bad("the path must be a database number"))?,
    };
    Ok(RedisSettings {
        host,
        port,
        tls,
        username,
        password,
        db,
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
