//! The command-line options, as clap reads them: flags with their environment-variable
//! fallbacks, as raw strings. [`super::resolve`] turns them into typed settings, so every
//! error can name both the variable and the flag an operator set.

use std::path::PathBuf;

use crate::secret::Secret;

/// Where an image built `FROM dbinit` puts its own migrations (`COPY migrations /migrations`).
pub const IMAGE_MIGRATIONS_DIR: &str = "/migrations";

/// PostgreSQL connection options, as an operator sets them in a pod spec.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "PostgreSQL")]
pub struct PostgresArgs {
    /// Connection URL (postgres://user:password@host:port/db?sslmode=require); the
    /// POSTGRES_* settings fill in what it leaves out and must agree with what it says.
    /// Parameters: sslmode, sslrootcert, sslcert, sslkey, options, application_name,
    /// connect_timeout, target_session_attrs; any other libpq parameter is an error
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<Secret>,
    /// File holding the connection URL, e.g. a mounted Secret (not with DATABASE_URL)
    #[arg(
        long,
        env = "DATABASE_URL_FILE",
        value_name = "PATH",
        hide_env_values = true
    )]
    pub database_url_file: Option<PathBuf>,
    /// Server host name or address [default: localhost]
    #[arg(
        long,
        env = "POSTGRES_HOST",
        value_name = "HOST",
        hide_env_values = true
    )]
    pub postgres_host: Option<String>,
    /// Server port [default: 5432]; Kubernetes' service-link form tcp://host:port is read
    /// for its port, with a warning
    #[arg(
        long,
        env = "POSTGRES_PORT",
        value_name = "PORT",
        hide_env_values = true
    )]
    pub postgres_port: Option<String>,
    /// User to connect as [default: postgres]
    #[arg(
        long,
        env = "POSTGRES_USER",
        value_name = "USER",
        hide_env_values = true
    )]
    pub postgres_user: Option<String>,
    /// Password (prefer POSTGRES_PASSWORD_FILE with a mounted Secret)
    #[arg(
        long,
        env = "POSTGRES_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub postgres_password: Option<Secret>,
    /// File holding the password, e.g. a mounted Secret; one trailing newline is ignored
    #[arg(
        long,
        env = "POSTGRES_PASSWORD_FILE",
        value_name = "PATH",
        hide_env_values = true
    )]
    pub postgres_password_file: Option<PathBuf>,
    /// The application's database, created if missing [default: agentic_deals]
    #[arg(long, env = "POSTGRES_DB", value_name = "NAME", hide_env_values = true)]
    pub postgres_db: Option<String>,
    /// Database used to check readiness and to create the application's database [default: postgres]
    #[arg(
        long,
        env = "POSTGRES_MAINTENANCE_DB",
        value_name = "NAME",
        hide_env_values = true
    )]
    pub postgres_maintenance_db: Option<String>,
    /// TLS: disable, prefer (encrypt if offered), require (encrypt, no verification),
    /// verify-ca (encrypt, verify the chain), verify-full (encrypt, verify chain and host
    /// name) [default: prefer]
    #[arg(
        long,
        env = "POSTGRES_SSLMODE",
        value_name = "MODE",
        hide_env_values = true
    )]
    pub postgres_sslmode: Option<String>,
    /// PEM file of CA certificates for verify-ca and verify-full [default: the system roots]
    #[arg(
        long,
        env = "POSTGRES_SSLROOTCERT",
        value_name = "PATH",
        hide_env_values = true
    )]
    pub postgres_sslrootcert: Option<PathBuf>,
    /// PEM file with a client certificate, for `cert` authentication (with POSTGRES_SSLKEY)
    #[arg(
        long,
        env = "POSTGRES_SSLCERT",
        value_name = "PATH",
        hide_env_values = true
    )]
    pub postgres_sslcert: Option<PathBuf>,
    /// PEM file with the client certificate's private key; mode 0600 (0640 if owned by root)
    #[arg(
        long,
        env = "POSTGRES_SSLKEY",
        value_name = "PATH",
        hide_env_values = true
    )]
    pub postgres_sslkey: Option<PathBuf>,
}

/// Redis connection options. Redis is checked only when REDIS_URL or REDIS_HOST (or a
/// `redis:` section of the config file) is given.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Redis (checked only when configured)")]
pub struct RedisArgs {
    /// Redis URL: redis://[user:password@]host[:port][/db][?protocol=resp3], rediss:// for
    /// TLS, valkey:// and valkeys:// alike, or redis+unix:///path/to/socket[?db=N]
    #[arg(long, env = "REDIS_URL", value_name = "URL", hide_env_values = true)]
    pub redis_url: Option<Secret>,
    /// File holding the Redis URL, e.g. a mounted Secret (not with REDIS_URL)
    #[arg(
        long,
        env = "REDIS_URL_FILE",
        value_name = "PATH",
        hide_env_values = true
    )]
    pub redis_url_file: Option<PathBuf>,
    /// Redis host (alternative to REDIS_URL)
    #[arg(long, env = "REDIS_HOST", value_name = "HOST", hide_env_values = true)]
    pub redis_host: Option<String>,
    /// Redis port [default: 6379]; alone (without REDIS_HOST) it is ignored, as Kubernetes
    /// injects REDIS_PORT=tcp://... into pods beside a Service named redis
    #[arg(long, env = "REDIS_PORT", value_name = "PORT", hide_env_values = true)]
    pub redis_port: Option<String>,
    /// Redis ACL user name (omit for requirepass)
    #[arg(
        long,
        env = "REDIS_USERNAME",
        value_name = "USER",
        hide_env_values = true
    )]
    pub redis_username: Option<String>,
    /// Redis password
    #[arg(
        long,
        env = "REDIS_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub redis_password: Option<Secret>,
    /// File holding the Redis password, e.g. a mounted Secret
    #[arg(
        long,
        env = "REDIS_PASSWORD_FILE",
        value_name = "PATH",
        hide_env_values = true
    )]
    pub redis_password_file: Option<PathBuf>,
    /// Redis logical database number [default: 0]
    #[arg(long, env = "REDIS_DB", value_name = "N", hide_env_values = true)]
    pub redis_db: Option<String>,
    /// PEM file of CA certificates for rediss:// (a private CA) [default: the system roots]
    #[arg(
        long,
        env = "REDIS_SSLROOTCERT",
        value_name = "PATH",
        hide_env_values = true
    )]
    pub redis_sslrootcert: Option<PathBuf>,
}

/// How long and how often to wait for dependencies, and how to log.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Waiting and logging")]
pub struct WaitArgs {
    /// Optional YAML file with the same settings; flags and environment win over it
    #[arg(
        long = "config",
        env = "DBINIT_CONFIG",
        value_name = "PATH",
        hide_env_values = true
    )]
    pub config_file: Option<PathBuf>,
    /// Overall deadline for PostgreSQL and Redis to become ready, e.g. 90s, 5m [default: 300s]
    #[arg(
        long,
        env = "DBINIT_TIMEOUT",
        value_name = "DURATION",
        hide_env_values = true
    )]
    pub timeout: Option<String>,
    /// Limit for one connection attempt [default: 5s]
    #[arg(
        long,
        env = "DBINIT_CONNECT_TIMEOUT",
        value_name = "DURATION",
        hide_env_values = true
    )]
    pub connect_timeout: Option<String>,
    /// First retry delay; doubles after each failure [default: 100ms]
    #[arg(
        long,
        env = "DBINIT_BACKOFF_INITIAL",
        value_name = "DURATION",
        hide_env_values = true
    )]
    pub backoff_initial: Option<String>,
    /// Largest retry delay [default: 2s]
    #[arg(
        long,
        env = "DBINIT_BACKOFF_MAX",
        value_name = "DURATION",
        hide_env_values = true
    )]
    pub backoff_max: Option<String>,
    /// Log format: text or json [default: text]; LOG_FORMAT is read only for
    /// compatibility, when DBINIT_LOG_FORMAT is unset and its value is text or json
    #[arg(
        long,
        env = "DBINIT_LOG_FORMAT",
        value_name = "FORMAT",
        hide_env_values = true
    )]
    pub log_format: Option<String>,
    /// Log filter, e.g. debug or info,dbinit_core=debug [default: info]; RUST_LOG is read
    /// only for compatibility, when DBINIT_LOG is unset and its value is a plain level
    #[arg(
        long,
        env = "DBINIT_LOG",
        value_name = "FILTER",
        hide_env_values = true
    )]
    pub log: Option<String>,
}

/// All connection and wait options; every command flattens this.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub postgres: PostgresArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub redis: RedisArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub wait: WaitArgs,
}

/// Options of every command that works with a migration set.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Migrations")]
pub struct MigrateArgs {
    /// Directory of migrations (V1__name.sql, or sqlx's, golang-migrate's, dbmate's or
    /// Prisma's layout) to use instead of the set built into the binary, e.g. a mounted
    /// ConfigMap; seeds are read from its seeds/ subdirectory
    /// [default: /migrations if it exists, else the set built in]
    #[arg(
        long,
        env = "DBINIT_MIGRATIONS_DIR",
        value_name = "DIR",
        hide_env_values = true
    )]
    pub migrations_dir: Option<PathBuf>,
    /// The directory an image built `FROM dbinit` copies its migrations to; used when it
    /// exists and no migrations directory is given. A field so tests can point it elsewhere.
    #[arg(skip = PathBuf::from(IMAGE_MIGRATIONS_DIR))]
    pub image_migrations_dir: PathBuf,
    /// How the migration files are named: dbinit (V1__name.sql), sqlx, golang-migrate,
    /// dbmate or prisma [default: detected from the files]
    #[arg(
        long,
        env = "DBINIT_LAYOUT",
        value_name = "LAYOUT",
        hide_env_values = true
    )]
    pub layout: Option<String>,
    /// Directory of seed files [default: MIGRATIONS_DIR/seeds]
    #[arg(
        long,
        env = "DBINIT_SEEDS_DIR",
        value_name = "DIR",
        hide_env_values = true
    )]
    pub seeds_dir: Option<PathBuf>,
    /// Migration history table, refinery's format [default: refinery_schema_history]
    #[arg(
        long,
        env = "DBINIT_HISTORY_TABLE",
        value_name = "TABLE",
        hide_env_values = true
    )]
    pub history_table: Option<String>,
    /// Seed history table [default: dbinit_seed_history]
    #[arg(
        long,
        env = "DBINIT_SEEDS_TABLE",
        value_name = "TABLE",
        hide_env_values = true
    )]
    pub seeds_table: Option<String>,
    /// How long to wait for the migration lock held by another runner [default: 10m]
    #[arg(
        long,
        env = "DBINIT_LOCK_TIMEOUT",
        value_name = "DURATION",
        hide_env_values = true
    )]
    pub lock_timeout: Option<String>,
    /// `lock_timeout` of each migration's statements: a file that waits longer for a table
    /// lock is rolled back and retried, so the application's queries never queue behind it
    /// for longer; 0 waits; a file's `-- dbinit:lock-timeout=30s` header overrides it
    /// [default: 3s]
    #[arg(
        long,
        env = "DBINIT_MIGRATION_LOCK_TIMEOUT",
        value_name = "DURATION",
        hide_env_values = true
    )]
    pub migration_lock_timeout: Option<String>,
    /// `statement_timeout` of migrations and seeds, replacing any the role or database sets
    /// [default: 0, none]
    #[arg(
        long,
        env = "DBINIT_STATEMENT_TIMEOUT",
        value_name = "DURATION",
        hide_env_values = true
    )]
    pub statement_timeout: Option<String>,
    /// Before re-running a `-- dbinit:no-transaction` file, drop INVALID indexes it builds
    /// (left by an interrupted CREATE INDEX CONCURRENTLY) instead of stopping with exit 5
    #[arg(long, env = "DBINIT_REPAIR_INVALID_INDEXES", hide_env_values = true)]
    pub repair_invalid_indexes: bool,
    /// Owner of the database when dbinit creates it [default: the connecting user]
    #[arg(
        long,
        env = "DBINIT_DB_OWNER",
        value_name = "ROLE",
        hide_env_values = true
    )]
    pub db_owner: Option<String>,
    /// For a database built without dbinit: record versions up to N as applied without
    /// running them, then go on. Only acts when the database has tables but no dbinit history
    #[arg(
        long,
        env = "DBINIT_BASELINE_VERSION",
        value_name = "N",
        hide_env_values = true
    )]
    pub baseline_version: Option<String>,
    /// For a database another tool migrated: adopt its history (alembic, flyway,
    /// golang-migrate, dbmate, sqlx, django, prisma), then go on. Only acts when there is no dbinit history
    #[arg(
        long,
        env = "DBINIT_ADOPT_FROM",
        value_name = "TOOL",
        hide_env_values = true
    )]
    pub adopt_from: Option<String>,
    /// File mapping the other tool's versions to dbinit versions, one `theirs = N` per line
    /// (for Alembic revision ids, Django migrations, Flyway dotted versions; not needed when
    /// the folder holds the tool's own files)
    #[arg(
        long,
        env = "DBINIT_ADOPT_MAP",
        value_name = "PATH",
        hide_env_values = true
    )]
    pub adopt_map: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub lint: super::lint::LintArgs,
}

/// Tool mode: the team's own migration command, run under dbinit's lock.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Tool mode (your own migration tool)")]
pub struct ToolArgs {
    /// The migration tool, so an up-to-date database skips the command: alembic, django,
    /// sqlx, golang-migrate, dbmate, prisma or flyway [default: recognised from the command]
    #[arg(long, env = "DBINIT_TOOL", value_name = "TOOL", hide_env_values = true)]
    pub tool: Option<String>,
    /// The migration command as a JSON array, run without a shell:
    /// ["alembic","upgrade","head"]; `-- CMD ARGS...` wins over it
    #[arg(
        long,
        env = "DBINIT_MIGRATE_COMMAND",
        value_name = "JSON",
        hide_env_values = true
    )]
    pub migrate_command: Option<String>,
    /// How long the command may take to exit after dbinit forwards SIGTERM to it, before its
    /// process group is killed; keep it below the pod's terminationGracePeriodSeconds
    /// [default: 20s]
    #[arg(
        long,
        env = "DBINIT_CHILD_GRACE",
        value_name = "DURATION",
        hide_env_values = true
    )]
    pub child_grace: Option<String>,
    /// How long the command may run before it is stopped (exit 5) [default: 0, no limit]
    #[arg(
        long,
        env = "DBINIT_MIGRATE_TIMEOUT",
        value_name = "DURATION",
        hide_env_values = true
    )]
    pub migrate_timeout: Option<String>,
    /// The migration command and its arguments, after `--` (so its flags are its own)
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Flags shared by every command that ends with an outcome.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Outcome")]
pub struct OutcomeArgs {
    /// File that receives a one-line summary of the run; the default is only written when it
    /// already exists (Kubernetes creates it), so running outside a pod leaves no stray file
    #[arg(
        long,
        env = "DBINIT_TERMINATION_MESSAGE_PATH",
        value_name = "PATH",
        hide_env_values = true
    )]
    pub termination_message_path: Option<PathBuf>,
}
