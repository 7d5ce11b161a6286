//! One run, as the status ConfigMap records it, built from what the run itself knows: its
//! report and its result. Recording a failure never asks the database again.

use std::collections::BTreeMap;

use dbinit_core::Error;
use dbinit_core::migrate::report::RunReport;
use dbinit_core::migrate::set::MigrationSet;
use dbinit_core::secret::{Secret, scrub};
use dbinit_core::tool::report::ToolReport;
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Where a run is, as the `phase` key says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Holding the Lease, migrating.
    #[default]
    Running,
    /// Finished with exit code 0.
    Succeeded,
    /// Finished with another exit code.
    Failed,
}

/// RFC 3339 UTC with a fixed microsecond precision, so records sort as text too.
pub fn now() -> String {
    Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// One run, as recorded. Field names are the ConfigMap keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// Where the run is.
    pub phase: Phase,
    /// Lease holder identity of the run.
    pub holder: String,
    /// Lease epoch (leaseTransitions at acquire): strictly increasing across holders.
    pub epoch: i32,
    /// RFC 3339, when the lease was acquired.
    pub started_at: String,
    /// RFC 3339, when the run ended (empty while running).
    pub finished_at: String,
    /// Run time in milliseconds.
    pub duration_ms: u64,
    /// Target database.
    pub database: String,
    /// Highest version in the migration set.
    pub target_version: String,
    /// Highest applied version after the run.
    pub applied_version: String,
    /// Migrations and seeds this run applied, comma-separated.
    pub applied_this_run: String,
    /// Migrations and seeds still pending, comma-separated.
    pub pending: String,
    /// Applied migrations newer than this release's set (a newer release ran, e.g. before a
    /// rollback), comma-separated; empty when the database is not ahead.
    pub ahead: String,
    /// Why it failed; scrubbed of secrets.
    pub error: String,
    /// Process exit code.
    pub exit_code: u8,
    /// Checksum of the whole migration set.
    pub migration_set_checksum: String,
    /// dbinit version.
    pub dbinit_version: String,
    /// Tool mode: the migration tool (`alembic`), empty when unknown or in SQL mode.
    #[serde(default)]
    pub tool: String,
    /// Tool mode: the migration command, as a person would type it.
    #[serde(default)]
    pub command: String,
    /// Tool mode: how the command ended (`exited with status 1`, `was killed by signal
    /// SIGTERM (15)`), or `not run` when the database was up to date.
    #[serde(default)]
    pub command_status: String,
}

impl RunRecord {
    /// The record of a run that just took the Lease as `holder` in `epoch`.
    pub fn started(holder: &str, epoch: i32, database: &str, set: &MigrationSet) -> Self {
        Self {
            phase: Phase::Running,
            holder: holder.to_string(),
            epoch,
            started_at: now(),
            database: database.to_string(),
            target_version: set
                .target_version()
                .map(|v| v.to_string())
                .unwrap_or_default(),
            migration_set_checksum: set.checksum(),
            dbinit_version: env!("CARGO_PKG_VERSION").into(),
            ..Self::default()
        }
    }

    /// Fills in how the run ended from its report (what it applied, the version reached,
    /// what is pending) and its result (phase, exit code, scrubbed error). No I/O.
    pub fn finish(
        &mut self,
        report: &RunReport,
        result: &Result<(), Error>,
        secrets: &[&Secret],
        run_started: Instant,
    ) {
        self.finished_at = now();
        self.duration_ms = run_started.elapsed().as_millis() as u64;
        self.applied_this_run = report.applied_this_run().join(",");
        self.applied_version = report.version.map(|v| v.to_string()).unwrap_or_default();
        self.pending = report.pending.join(",");
        self.ahead = report.ahead.join(",");
        match result {
            Ok(()) => {
                self.phase = Phase::Succeeded;
                self.exit_code = 0;
            }
            Err(e) => {
                self.phase = Phase::Failed;
                self.exit_code = e.exit_code() as u8;
                self.error = scrub(&e.render(), secrets.iter().copied());
            }
        }
    }

    /// [`RunRecord::finish`] for a tool-mode run: the versions are the tool's (the image's
    /// head, the table's), `applied_this_run` what was pending before and is not after, and
    /// the error carries the command's exit status and last stderr lines, scrubbed.
    pub fn finish_tool(
        &mut self,
        report: &ToolReport,
        result: &Result<(), Error>,
        secrets: &[&Secret],
        run_started: Instant,
    ) {
        self.finish(
            &RunReport::new(&report.database),
            result,
            secrets,
            run_started,
        );
        self.tool = report.tool.map(|t| t.id().to_string()).unwrap_or_default();
        self.command = scrub(
            report.command.as_deref().unwrap_or(""),
            secrets.iter().copied(),
        );
        self.command_status = match (&report.end, report.ran) {
            (Some(end), _) => end.clone(),
            (None, true) => "started".into(),
            (None, false) => "not run".into(),
        };
        let state = report.state();
        self.target_version = state.map(|s| s.image_head.join(",")).unwrap_or_default();
        self.applied_version = state.map(|s| s.database_head.join(",")).unwrap_or_default();
        self.pending = state.map(|s| s.pending.join(",")).unwrap_or_default();
        self.ahead = state.map(|s| s.ahead.join(",")).unwrap_or_default();
        let before: Vec<String> = report
            .before
            .as_ref()
            .map(|s| s.pending.clone())
            .unwrap_or_default();
        let mut applied: Vec<String> = match (&report.after, report.ran) {
            (Some(after), true) => before
                .into_iter()
                .filter(|p| !after.pending.contains(p))
                .collect(),
            _ => Vec::new(),
        };
        applied.extend(report.seeds.iter().cloned());
        self.applied_this_run = applied.join(",");
    }

    /// The record as ConfigMap data (every key present, strings throughout).
    pub fn to_data(&self) -> BTreeMap<String, String> {
        let value = serde_json::to_value(self).unwrap_or_default();
        let mut data = BTreeMap::new();
        if let serde_json::Value::Object(map) = value {
            for (k, v) in map {
                let s = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                data.insert(k, s);
            }
        }
        data
    }

    /// Parses the `history` key's JSON lines, skipping lines that do not parse.
    pub fn parse_history(history: &str) -> Vec<RunRecord> {
        history
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_has_every_design_key_as_strings() {
        let r = RunRecord {
            phase: Phase::Succeeded,
            epoch: 3,
            exit_code: 0,
            ..RunRecord::default()
        };
        let d = r.to_data();
        for key in [
            "phase",
            "holder",
            "epoch",
            "startedAt",
            "finishedAt",
            "durationMs",
            "database",
            "targetVersion",
            "appliedVersion",
            "appliedThisRun",
            "pending",
            "ahead",
            "error",
            "exitCode",
            "migrationSetChecksum",
            "dbinitVersion",
        ] {
            assert!(d.contains_key(key), "{key}");
        }
        assert_eq!(d["epoch"], "3");
        assert_eq!(d["phase"], "Succeeded");
    }

    #[test]
    fn a_tool_run_is_recorded_with_the_tools_versions_and_the_command() {
        use dbinit_core::tool::kind::Tool;
        use dbinit_core::tool::state::{ToolState, Verdict};
        let state = |pending: &[&str], db: &[&str]| ToolState {
            tool: Tool::Dbmate,
            table: "schema_migrations".into(),
            verdict: if pending.is_empty() {
                Verdict::UpToDate
            } else {
                Verdict::Pending
            },
            image_head: vec!["3".into()],
            database_head: db.iter().map(|s| s.to_string()).collect(),
            pending: pending.iter().map(|s| s.to_string()).collect(),
            ahead: Vec::new(),
            problem: None,
            fix: None,
        };
        let mut report = ToolReport::new("app", Some(Tool::Dbmate), Some("dbmate up".into()));
        report.before = Some(state(&["2", "3"], &["1"]));
        report.ran = true;
        report.end = Some("exited with status 0".into());
        report.after = Some(state(&[], &["3"]));
        let mut r = RunRecord::default();
        r.finish_tool(&report, &Ok(()), &[], Instant::now());
        assert_eq!(r.phase, Phase::Succeeded);
        assert_eq!(
            (r.tool.as_str(), r.command.as_str()),
            ("dbmate", "dbmate up")
        );
        assert_eq!(r.command_status, "exited with status 0");
        assert_eq!(
            (r.target_version.as_str(), r.applied_version.as_str()),
            ("3", "3")
        );
        assert_eq!(r.applied_this_run, "2,3");
        let d = r.to_data();
        assert_eq!(d["commandStatus"], "exited with status 0");
        // Up to date: not run.
        let mut report = ToolReport::new("app", Some(Tool::Dbmate), Some("dbmate up".into()));
        report.before = Some(state(&[], &["3"]));
        r.finish_tool(&report, &Ok(()), &[], Instant::now());
        assert_eq!(
            (r.command_status.as_str(), r.applied_this_run.as_str()),
            ("not run", "")
        );
    }

    #[test]
    fn history_round_trips() {
        let r = RunRecord {
            phase: Phase::Failed,
            error: "boom".into(),
            ..RunRecord::default()
        };
        let line = serde_json::to_string(&r).expect("json");
        let parsed = RunRecord::parse_history(&format!("{line}\nnot json\n{line}"));
        assert_eq!(parsed, vec![r.clone(), r]);
    }

    #[test]
    fn a_failed_run_is_recorded_from_its_report() {
        let mut report = RunReport::new("app");
        report.migrations = vec!["V1__a".into(), "V2__b".into()];
        report.version = Some(2);
        report.pending = vec!["V3__c".into()];
        report.ahead = vec!["V9__newer".into()];
        let mut r = RunRecord::default();
        let pw = Secret::new("hunter22");
        let err: Result<(), Error> = Err(dbinit_core::dependency::Error::Unusable {
            dependency: "PostgreSQL".into(),
            cause: "said hunter22".into(),
        }
        .into());
        r.finish(&report, &err, &[&pw], Instant::now());
        assert_eq!(r.phase, Phase::Failed);
        assert_eq!(r.exit_code, 1);
        assert_eq!(r.applied_this_run, "V1__a,V2__b");
        assert_eq!(r.applied_version, "2");
        assert_eq!(r.pending, "V3__c");
        assert_eq!(r.ahead, "V9__newer");
        assert_eq!(r.error, "PostgreSQL is not usable: said ***");
        assert_eq!(r.to_data()["phase"], "Failed");
    }

    #[test]
    fn sixty_four_bit_versions_are_recorded_whole() {
        let mut report = RunReport::new("app");
        report.migrations = vec!["20230404095503_init.sql".into()];
        report.version = Some(i64::MAX);
        let mut r = RunRecord::default();
        r.finish(&report, &Ok(()), &[], Instant::now());
        assert_eq!(r.applied_version, "9223372036854775807");
        assert_eq!(r.to_data()["appliedVersion"], "9223372036854775807");
    }
}
