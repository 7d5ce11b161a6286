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
fn verify_ca_accepts_a_name_mismatch_that_verify_full_refuses() {
    let pki = Pki::new();
    let server = pki.server_cert(
        "server",
        "db.example.internal",
        &["DNS:db.example.internal"],
    );
    let pg = start_tls_pg(&pki, &server, HBA_TLS_ONLY);
    let url = |mode: &str| {
        format!(
            "postgres://postgres:{PG_PASSWORD}@127.0.0.1:{}/postgres?sslmode={mode}&sslrootcert={}",
            pg.port,
            pki.ca().display()
        )
    };
    let out = wait_deps(&[kv("DATABASE_URL", url("verify-ca"))]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let out = wait_deps(&[kv("DATABASE_URL", url("verify-full"))]);
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(!out.all_output().contains(PG_PASSWORD));

    // verify-ca still verifies the chain: a CA that did not sign the server's certificate
    // is refused.
    let other = Pki::new();
    let mut env = tls_env(&pg, "verify-ca");
    env.push(kv("POSTGRES_SSLROOTCERT", other.ca().display()));
    let out = wait_deps(&env);
    assert_eq!(out.code, Some(4), "{}", out.stderr);
}

#[test]
fn client_certificate_only_authentication() {
    let pki = Pki::new();
    let server = pki.server_cert("server", "localhost", &["IP:127.0.0.1"]);
    // certuser has no password at all: the certificate is the only way in.
    let pg = start_tls_pg(&pki, &server, HBA_TLS_ONLY);
    pg.psql("postgres", "CREATE ROLE certuser LOGIN CREATEDB");
    let client = pki.client_cert("certuser", "certuser");
    let base = vec![
        kv("POSTGRES_HOST", "127.0.0.1"),
        kv("POSTGRES_PORT", pg.port),
        kv("POSTGRES_USER", "certuser"),
        kv("POSTGRES_SSLMODE", "verify-full"),
        kv("POSTGRES_SSLROOTCERT", pki.ca().display()),
    ];
    let mut env = base.clone();
    env.extend([
        kv("POSTGRES_SSLCERT", client.cert.display()),
        kv("POSTGRES_SSLKEY", client.key.display()),
    ]);
    let out = wait_deps(&env);
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    // The whole run, creating the database and migrating, as the certificate's role.
    let mut c = command("dbinit");
    c.arg("run")
        .envs(env.iter().cloned())
        .env("DBINIT_TIMEOUT", "30s");
    let out = run(c);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(pg.history("agentic_deals"), "1,2,3,4,5,6,7");

    // The same through DATABASE_URL's sslcert/sslkey.
    let url = format!(
        "postgres://certuser@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
        pg.port,
        pki.ca().display(),
        client.cert.display(),
        client.key.display()
    );
    let out = wait_deps(&[kv("DATABASE_URL", url)]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    // Without the certificate the server asks for a password there is none of: refused.
    let out = wait_deps(&base);
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    // A certificate for another role is refused by the server (cert auth maps CN to role).
    let intruder = pki.client_cert("intruder", "postgres");
    let mut env = base.clone();
    env.extend([
        kv("POSTGRES_SSLCERT", intruder.cert.display()),
        kv("POSTGRES_SSLKEY", intruder.key.display()),
    ]);
    let out = wait_deps(&env);
    assert_eq!(out.code, Some(4), "{}", out.stderr);
}

#[test]
fn rediss_and_valkeys_with_a_private_ca_and_acl_users() {
    let pg = Pg::start_new();
    let pki = Pki::new();
    let server = pki.server_cert("redis", "localhost", &["DNS:localhost", "IP:127.0.0.1"]);
    let redis = TlsRedis::start(
        &pki,
        &server,
        &[
            "app on >app-redis-pw ~* &* +@all",
            "reader on >reader-pw ~* &* -@all +ping +select",
        ],
    );
    let with = |url: String, extra: &[(String, String)]| {
        let mut env = pg.env();
        env.push(kv("REDIS_URL", url));
        env.extend(extra.iter().cloned());
        wait_deps(&env)
    };
    let ca = [kv("REDIS_SSLROOTCERT", pki.ca().display())];
    for scheme in ["rediss", "valkeys"] {
        let out = with(
            format!("{scheme}://app:app-redis-pw@127.0.0.1:{}/2", redis.tls_port),
            &ca,
        );
        assert_eq!(out.code, Some(0), "{scheme}: {}", out.stderr);
        assert!(out.stderr.contains("redis is ready"), "{}", out.stderr);
        assert!(!out.all_output().contains("app-redis-pw"));
    }
    // A user limited to PING (and SELECT) is enough: dbinit sends nothing else.
    let out = with(
        format!(
            "rediss://reader:reader-pw@127.0.0.1:{}/1?protocol=resp3",
            redis.tls_port
        ),
        &ca,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // Without the CA, the private CA is unknown: a TLS refusal, at once, not a wait.
    let out = with(
        format!("rediss://app:app-redis-pw@127.0.0.1:{}", redis.tls_port),
        &[],
    );
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(out.elapsed.as_secs() < 5, "{:?}", out.elapsed);
    // The wrong password for the ACL user: refused at once, and never shown.
    let out = with(
        format!("rediss://app:wrong-pw@127.0.0.1:{}/2", redis.tls_port),
        &ca,
    );
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(!out.all_output().contains("wrong-pw"));
    // The system roots through SSL_CERT_FILE keep working, as the chart sets them.
    let out = with(
        format!("rediss://app:app-redis-pw@127.0.0.1:{}", redis.tls_port),
        &[kv("SSL_CERT_FILE", pki.ca().display())],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // The unix socket, with the user in the URL.
    let out = with(
        format!(
            "redis+unix://app:app-redis-pw@{}?db=3",
            redis.socket.display()
        ),
        &[],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}
