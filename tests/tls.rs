//! TLS against real servers with a private CA made in the test: PostgreSQL with `ssl=on`
//! (sslmodes, a server certificate whose names do not match, client certificates) and
//! redis-server with a TLS port and ACL users.

use dbinit_tests::tls::{Pki, TlsRedis, start_tls_pg};
use dbinit_tests::{PG_PASSWORD, Pg, command, run};

fn kv(k: &str, v: impl ToString) -> (String, String) {
    (k.to_string(), v.to_string())
}

fn wait_deps(env: &[(String, String)]) -> dbinit_tests::Finished {
    let mut c = command("dbinit");
    c.arg("wait-deps")
        .envs(env.iter().cloned())
        .env("DBINIT_TIMEOUT", "20s");
    run(c)
}

/// Password rules over TLS only; plain TCP is rejected, so a passing run proves TLS was used.
const HBA_TLS_ONLY: &[&str] = &[
    "hostssl all certuser 127.0.0.1/32 cert",
    "hostssl all all 127.0.0.1/32 scram-sha-256",
    "hostnossl all all 127.0.0.1/32 reject",
];

fn tls_env(pg: &Pg, sslmode: &str) -> Vec<(String, String)> {
    let mut env = pg.env();
    env.push(kv("POSTGRES_SSLMODE", sslmode));
    env
}

#[test]
fn verify_full_passes_with_the_private_ca_and_matching_names() {
    let pki = Pki::new();
    let server = pki.server_cert("server", "localhost", &["DNS:localhost", "IP:127.0.0.1"]);
    let pg = start_tls_pg(&pki, &server, HBA_TLS_ONLY);
    let mut env = tls_env(&pg, "verify-full");
    env.push(kv("POSTGRES_SSLROOTCERT", pki.ca().display()));
    let out = wait_deps(&env);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!out.all_output().contains(PG_PASSWORD));

    // Without the CA, the system roots do not know it: a TLS refusal, at once.
    let out = wait_deps(&tls_env(&pg, "verify-full"));
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(out.elapsed.as_secs() < 5, "{:?}", out.elapsed);
}

#[test]
fn verify_full_fails_on_a_name_mismatch_require_still_encrypts() {
    let pki = Pki::new();
    let server = pki.server_cert(
        "server",
        "db.example.internal",
        &["DNS:db.example.internal"],
    );
    let pg = start_tls_pg(&pki, &server, HBA_TLS_ONLY);
    let mut env = tls_env(&pg, "verify-full");
    env.push(kv("POSTGRES_SSLROOTCERT", pki.ca().display()));
    let out = wait_deps(&env);
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(out.elapsed.as_secs() < 5, "fails fast: {:?}", out.elapsed);
    assert!(
        out.stderr.to_lowercase().contains("tls") || out.stderr.contains("certificate"),
        "{}",
        out.stderr
    );

    // require: encrypted, no verification (libpq's meaning); the hostnossl reject line
    // proves the connection was encrypted.
    let out = wait_deps(&tls_env(&pg, "require"));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // disable: the server's reject line for plain TCP is a refusal (exit 4).
    let out = wait_deps(&tls_env(&pg, "disable"));
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(out.stderr.contains("28000"), "{}", out.stderr);
}

#[test]
fn rediss_with_an_acl_user_and_the_ca_from_ssl_cert_file() {
    let pg = Pg::start_new();
    let pki = Pki::new();
    let server = pki.server_cert("redis", "localhost", &["DNS:localhost", "IP:127.0.0.1"]);
    let redis = TlsRedis::start(&pki, &server, &["app on >app-redis-pw ~* &* +@all"]);
    let mut env = pg.env();
    env.extend([
        kv(
            "REDIS_URL",
            format!("rediss://app:app-redis-pw@127.0.0.1:{}/2", redis.tls_port),
        ),
        kv("SSL_CERT_FILE", pki.ca().display()),
    ]);
    let out = wait_deps(&env);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("redis is ready"), "{}", out.stderr);
    assert!(!out.all_output().contains("app-redis-pw"));

    // The wrong password for the ACL user: refused at once.
    env[4] = kv(
        "REDIS_URL",
        format!("rediss://app:wrong-pw@127.0.0.1:{}/2", redis.tls_port),
    );
    let out = wait_deps(&env);
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(!out.all_output().contains("wrong-pw"));
}
