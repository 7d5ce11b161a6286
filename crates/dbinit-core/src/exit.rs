//! How a failure ends the process: its exit code, from the one table that `--help`, the
//! termination message and README share, and its message, the whole chain of causes on one
//! line. Every room's error maps to a code here; nothing here knows the rooms.

/// Stable process exit codes, documented in the README. Scripts and Kubernetes
/// `restartPolicy` decisions key on them, so they never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Everything is ready.
    Ok = 0,
    /// Anything not covered below.
    Failure = 1,
    /// Bad configuration: nothing was attempted.
    Config = 2,
    /// A dependency did not become ready (or the schema did not arrive) before the deadline.
    Timeout = 3,
    /// Authentication or permission refused; retrying will not help.
    Refused = 4,
    /// A migration or seed failed and was rolled back, or the team's own migration command
    /// (tool mode) exited non-zero, was killed or ran past its timeout.
    MigrationFailed = 5,
    /// The database's history diverges from the migration set (edited or missing files).
    Diverged = 6,
    /// The migration lock was not acquired in time, or was lost.
    Lock = 7,
    /// Interrupted by SIGTERM or SIGINT; open work was rolled back.
    Interrupted = 8,
    /// The database has tables or another tool's history but no dbinit history: running V1
    /// on top of them would fail or worse, so it must be adopted (baseline/adopt) first.
    Unadopted = 9,
    /// `dbinit status --exit-code`: migrations or seeds are pending.
    Pending = 10,
    /// `dbinit status --exit-code`: the database has migrations newer than this binary's set
    /// (a newer release migrated it).
    Ahead = 11,
    /// `dbinit status --exit-code`: an INVALID index left by an interrupted no-transaction
    /// migration.
    InvalidIndex = 12,
    /// A migration already applied declared a compatibility floor (`-- dbinit:compatible-from=N`)
    /// above this binary's set: this release must not run against that schema.
    Incompatible = 13,
    /// `dbinit lint --fail-on`, or `run`/`plan` with `DBINIT_LINT_FAIL_ON`: a finding at or
    /// above that level (a blocking lock on a large table, a dropped column, ...).
    Unsafe = 14,
}

impl ExitCode {
    /// Every code, in order: the one table that `--help`, the termination message and the
    /// README (checked by a test) are written from.
    pub const ALL: [ExitCode; 11] = [
        Self::Ok,
        Self::Failure,
        Self::Config,
        Self::Timeout,
        Self::Refused,
        Self::MigrationFailed,
        Self::Diverged,
        Self::Lock,
        Self::Interrupted,
        Self::Unadopted,
        Self::Incompatible,
    ];

    /// A short stable word for the termination message and the status ConfigMap.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failure => "failed",
            Self::Config => "config",
            Self::Timeout => "timeout",
            Self::Refused => "refused",
            Self::MigrationFailed => "migration-failed",
            Self::Diverged => "diverged",
            Self::Lock => "lock",
            Self::Interrupted => "interrupted",
            Self::Unadopted => "unadopted",
            Self::Pending => "pending",
            Self::Ahead => "ahead",
            Self::InvalidIndex => "invalid-index",
            Self::Incompatible => "incompatible",
            Self::Unsafe => "unsafe",
        }
    }

    /// What the code means, in a few words; README's table row starts with exactly this.
    pub fn summary(self) -> &'static str {
        match self {
            Self::Ok => "ready",
            Self::Failure => "anything else",
            Self::Config => "bad configuration",
            Self::Timeout => "timed out waiting for a dependency",
            Self::Refused => "authentication or permission refused",
            Self::MigrationFailed => "a migration, seed or migration command failed",
            Self::Diverged => "the migration set diverges from the database",
            Self::Lock => "lock not acquired in time",
            Self::Interrupted => "interrupted by SIGTERM/SIGINT",
            Self::Unadopted => {
                "the database has tables or another tool's history but no dbinit history"
            }
            Self::Pending => "status --exit-code: migrations or seeds are pending",
            Self::Ahead => "status --exit-code: the database is ahead of this binary",
            Self::InvalidIndex => {
                "status --exit-code: an INVALID index left by a no-transaction migration"
            }
            Self::Incompatible => "the database requires a newer release (a compatibility floor)",
            Self::Unsafe => "lint: a finding at or above DBINIT_LINT_FAIL_ON (--fail-on)",
        }
    }

    /// The codes only `dbinit status --exit-code` uses, beside 0, 6 (drift) and the usual
    /// failures.
    pub const STATUS: [ExitCode; 3] = [Self::Pending, Self::Ahead, Self::InvalidIndex];

    /// The code of the migration review's gate (`lint --fail-on`, `DBINIT_LINT_FAIL_ON`).
    pub const LINT: [ExitCode; 1] = [Self::Unsafe];

    /// The codes a retry cannot fix (bad settings, a refusal, a failed or diverged migration,
    /// an unadopted or too new schema, a blocking review finding): the chart's Pod failure
    /// policy fails the Job at once on exactly these (a test reads job.yaml).
    pub const FINAL: [ExitCode; 7] = [
        Self::Config,
        Self::Refused,
        Self::MigrationFailed,
        Self::Diverged,
        Self::Unadopted,
        Self::Incompatible,
        Self::Unsafe,
    ];

    /// The table as `--help` prints it, one code per line.
    pub fn help() -> String {
        let mut s = String::from("Exit codes:\n");
        for c in Self::ALL.iter().chain(&Self::STATUS).chain(&Self::LINT) {
            s.push_str(&format!("  {}  {}\n", *c as u8, c.summary()));
        }
        s
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(c: ExitCode) -> Self {
        std::process::ExitCode::from(c as u8)
    }
}

/// The whole chain of `e` in one line, `what failed: why: why that`, for a person to read.
pub fn render(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_in_order_and_none_is_shared() {
        for (i, c) in ExitCode::ALL.iter().enumerate() {
            // 0-9 by position; 13 came after the status codes 10-12.
            assert!(*c as u8 as usize == i || *c == ExitCode::Incompatible);
        }
        let mut all: Vec<u8> = ExitCode::ALL
            .iter()
            .chain(&ExitCode::STATUS)
            .chain(&ExitCode::LINT)
            .map(|c| *c as u8)
            .collect();
        all.sort();
        all.dedup();
        assert_eq!(
            all.len(),
            ExitCode::ALL.len() + ExitCode::STATUS.len() + ExitCode::LINT.len()
        );
    }

    /// The chart's Pod failure policy and deploy/job.yaml's commented copy of it list the
    /// codes of `FINAL`, so a new final code cannot be retried by a Job by oversight.
    #[test]
    fn pod_failure_policy_lists_the_final_codes() {
        let want: Vec<String> = ExitCode::FINAL
            .iter()
            .map(|c| (*c as u8).to_string())
            .collect();
        let want = format!("[{}]", want.join(", "));
        for file in ["helm/dbinit/templates/job.yaml", "deploy/job.yaml"] {
            let path = format!("{}/../../{file}", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).expect(file);
            let line = text
                .lines()
                .find(|l| l.contains("values: ["))
                .unwrap_or_else(|| panic!("{file} has a podFailurePolicy `values: [...]`"));
            assert!(line.contains(&want), "{file}: {line:?} should list {want}");
        }
    }

    /// The `## Exit codes` section of a page of the repository, and its table's rows as
    /// (code, first cell after the code): README and docs/operations.md both keep one.
    fn exit_code_rows(page: &str) -> (String, Vec<(u8, String)>) {
        let path = format!("{}/../../{page}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect(page);
        let section = text
            .split("\n## Exit codes\n")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .unwrap_or_else(|| panic!("{page} has an `## Exit codes` section"))
            .to_string();
        let rows = section
            .lines()
            .filter_map(|l| {
                let mut cells = l.strip_prefix('|')?.split('|').map(str::trim);
                let code = cells.next()?.parse().ok()?;
                Some((code, cells.next()?.to_string()))
            })
            .collect();
        (section, rows)
    }

    /// README's exit-code table is the same table: every code, in order, each row starting
    /// with the code's summary.
    #[test]
    fn readme_table_matches_the_code() {
        let (section, rows) = exit_code_rows("README.md");
        assert_eq!(rows.len(), ExitCode::ALL.len(), "{rows:?}");
        for ((code, meaning), c) in rows.iter().zip(ExitCode::ALL) {
            assert_eq!(*code, c as u8);
            assert!(
                meaning.starts_with(c.summary()),
                "README row {code} should start with {:?}: {meaning:?}",
                c.summary()
            );
        }
        for c in &ExitCode::ALL[1..] {
            assert!(
                section.contains(&format!("`{}`", c.as_str())),
                "README names the termination-message kind {}",
                c.as_str()
            );
        }
    }

    /// docs/operations.md says what to do for every code, `status --exit-code`'s and the
    /// review's included:
    /// one row per code, in numeric order, with its termination-message kind.
    #[test]
    fn operations_page_has_a_row_for_every_code() {
        let (_, rows) = exit_code_rows("docs/operations.md");
        let mut all: Vec<ExitCode> = ExitCode::ALL
            .into_iter()
            .chain(ExitCode::STATUS)
            .chain(ExitCode::LINT)
            .collect();
        all.sort_by_key(|c| *c as u8);
        assert_eq!(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            all.iter().map(|c| *c as u8).collect::<Vec<_>>(),
            "one row per code, in order"
        );
        for ((code, kind), c) in rows.iter().zip(&all) {
            assert_eq!(*kind, format!("`{}`", c.as_str()), "row {code}'s kind");
        }
    }
}
