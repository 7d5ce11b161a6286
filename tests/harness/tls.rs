//! TLS for tests: a private CA made with the `openssl` CLI in a temp dir, server
//! certificates with chosen subject alternative names, client certificates, and the real
//! servers that use them: PostgreSQL with `ssl=on` and its own `pg_hba.conf`, and
//! redis-server with a `tls-port` and ACL users.
//!
//! Nothing here is shared between tests: each builds its own CA, so one test's certificates
//! can never make another's pass.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{Pg, PgOpts, Watchdog, check, chown_to_postgres, free_port, spawn_guarded, which};

/// A certificate and its private key, as PEM files.
#[derive(Debug, Clone)]
pub struct CertPair {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS#8), mode 0600.
    pub key: PathBuf,
}

/// A private certificate authority in a temp dir, removed when dropped.
pub struct Pki {
    dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str], what: &str) {
    check(
        Command::new("openssl").args(args).current_dir(dir).output(),
        what,
    );
}

impl Pki {
    /// A fresh CA (`ca.crt`, `ca.key`), valid for two days.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("dbinit-pki-")
            .tempdir()
            .expect("tempdir");
        std::fs::write(
            dir.path().join("ca.cnf"),
            "[v3_ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n",
        )
        .expect("write ca.cnf");
        openssl(
            dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=dbinit test CA",
                "-config",
                "ca.cnf",
                "-extensions",
                "v3_ca",
            ],
            "openssl: make the CA",
        );
        Self { dir }
    }

    /// The temp dir holding every file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate (PEM), what a client trusts.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// A server certificate for `cn` whose subject alternative names are exactly `sans`
    /// (`DNS:localhost`, `IP:127.0.0.1`), signed by this CA.
    pub fn server_cert(&self, name: &str, cn: &str, sans: &[&str]) -> CertPair {
        let mut ext = String::from(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        );
        if !sans.is_empty() {
            ext.push_str(&format!("subjectAltName={}\n", sans.join(",")));
        }
        self.issue(name, cn, &ext)
    }

    /// A client certificate whose common name is `cn` (PostgreSQL's `cert` authentication
    /// maps it to the role of that name), signed by this CA.
    pub fn client_cert(&self, name: &str, cn: &str) -> CertPair {
        self.issue(
            name,
            cn,
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
        )
    }

    fn issue(&self, name: &str, cn: &str, ext: &str) -> CertPair {
        let d = self.dir.path();
        let (key, csr, crt, cnf) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
        );
        std::fs::write(d.join(&cnf), ext).expect("write extensions");
        openssl(
            d,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN={cn}"),
            ],
            "openssl: make a key and request",
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-set_serial",
                &serial(),
                "-days",
                "2",
                "-out",
                &crt,
                "-extfile",
                &cnf,
            ],
            "openssl: sign a certificate",
        );
        set_mode(&d.join(&key), 0o600);
        CertPair {
            cert: d.join(crt),
            key: d.join(key),
        }
    }

    /// Hands every file to the `postgres` system user (when we are root), as the server
    /// refuses a key file that is not its own.
    fn give_to_postgres(&self) {
        chown_to_postgres(self.dir.path());
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

fn serial() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{}", (std::process::id() as u64) << 20 | n)
}

/// Sets a file's permission bits.
pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Starts PostgreSQL with `ssl=on`, serving `server`, trusting `pki`'s CA for client
/// certificates, and authenticating with `hba` (the whole `pg_hba.conf`, one rule a line;
/// `local all all trust` is added first so the harness's own psql keeps working).
pub fn start_tls_pg(pki: &Pki, server: &CertPair, hba: &[&str]) -> Pg {
    let hba_path = pki.dir().join("pg_hba.conf");
    let mut text = String::from("local all all trust\n");
    for line in hba {
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(&hba_path, text).expect("write pg_hba.conf");
    pki.give_to_postgres();
    let path = |p: &Path| p.display().to_string();
    let pg = Pg::init(PgOpts {
        settings: vec![
            ("ssl".into(), "on".into()),
            ("ssl_cert_file".into(), path(&server.cert)),
            ("ssl_key_file".into(), path(&server.key)),
            ("ssl_ca_file".into(), path(&pki.ca())),
            ("hba_file".into(), path(&hba_path)),
        ],
        ..PgOpts::default()
    });
    pg.start();
    pg
}

/// A redis-server with a plain port, a TLS port and a unix socket, with ACL users.
pub struct TlsRedis {
    /// Plain TCP port on 127.0.0.1 (same users).
    pub port: u16,
    /// TLS port on 127.0.0.1.
    pub tls_port: u16,
    /// The unix socket.
    pub socket: PathBuf,
    _watchdog: Watchdog,
    _dir: tempfile::TempDir,
}

impl TlsRedis {
    /// Starts redis-server serving `server` on its TLS port. `users` are ACL rules as in
    /// redis.conf (`app on >secret ~* &* +@all`); the `default` user is disabled unless a
    /// rule for it is given. Clients need no certificate.
    pub fn start(pki: &Pki, server: &CertPair, users: &[&str]) -> Self {
        let bin = which("redis-server").unwrap_or_else(|| {
            panic!("redis-server not found: install Debian's `redis-server` package (make deps)")
        });
        let dir = tempfile::Builder::new()
            .prefix("dbinit-redis-tls-")
            .tempdir()
            .expect("tempdir");
        let (port, tls_port) = (free_port(), free_port());
        let socket = dir.path().join("redis.sock");
        let d = dir.path().display();
        let mut conf = format!(
            "port {port}\ntls-port {tls_port}\nbind 127.0.0.1\nunixsocket {}\nunixsocketperm 700\nsave \"\"\nappendonly no\ndir {d}\nlogfile {d}/redis.log\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\ntls-auth-clients no\n",
            socket.display(),
            server.cert.display(),
            server.key.display(),
            pki.ca().display()
        );
        if !users.iter().any(|u| u.starts_with("default ")) {
            conf.push_str("user default off\n");
        }
        for u in users {
            conf.push_str(&format!("user {u}\n"));
        }
        let conf_path = dir.path().join("redis.conf");
        std::fs::write(&conf_path, conf).expect("write redis.conf");
        let watchdog = spawn_guarded(
            &bin,
            &[conf_path.display().to_string()],
            &dir.path().join("redis.out"),
        );
        // Any answer to PING (+PONG or -NOAUTH) means the server is up.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let mut buf = [0u8; 64];
                if s.write_all(b"PING\r\n").is_ok() && s.read(&mut buf).unwrap_or(0) > 0 {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on {port}: {}",
                std::fs::read_to_string(dir.path().join("redis.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            port,
            tls_port,
            socket,
            _watchdog: watchdog,
            _dir: dir,
        }
    }
}
