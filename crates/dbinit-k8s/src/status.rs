//! The status ConfigMap: what the last migration run did, readable with
//! `kubectl get configmap NAME -o yaml` without reading any logs.
//!
//! Written with `replace` under the resourceVersion read (a conflict re-reads and retries),
//! so concurrent writers never lose each other's history lines.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;
use serde::{Deserialize, Serialize};

/// How many runs the `history` key keeps.
pub const HISTORY_LEN: usize = 20;

/// One run, as recorded. Field names are the ConfigMap keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// `Running`, `Succeeded` or `Failed`.
    pub phase: String,
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
    /// Why it failed; scrubbed of secrets.
    pub error: String,
    /// Process exit code.
    pub exit_code: u8,
    /// Checksum of the whole migration set.
    pub migration_set_checksum: String,
    /// dbinit version.
    pub dbinit_version: String,
}

impl RunRecord {
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

/// Why the status could not be written.
#[derive(Debug, thiserror::Error)]
#[error("failed to write the status ConfigMap {name}: {reason}")]
pub struct StatusError {
    /// ConfigMap name.
    pub name: String,
    /// The API's words.
    pub reason: String,
    /// The HTTP status when the apiserver answered.
    pub code: Option<u16>,
}

impl StatusError {
    /// RBAC refused the write.
    pub fn is_forbidden(&self) -> bool {
        self.code == Some(403)
    }
}

/// Writes run records into one ConfigMap.
#[derive(Clone)]
pub struct StatusWriter {
    api: Api<ConfigMap>,
    name: String,
    timeout: Duration,
}

impl StatusWriter {
    /// A writer for the ConfigMap `name` in `api`'s namespace.
    pub fn new(api: Api<ConfigMap>, name: &str, timeout: Duration) -> Self {
        Self {
            api,
            name: name.to_string(),
            timeout,
        }
    }

    fn err(&self, e: impl std::fmt::Display, code: Option<u16>) -> StatusError {
        StatusError {
            name: self.name.clone(),
            reason: e.to_string(),
            code,
        }
    }

    async fn timed<T>(
        &self,
        f: impl std::future::Future<Output = kube::Result<T>>,
    ) -> Result<T, StatusError> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(kube::Error::Api(s))) => {
                Err(self.err(format!("{} ({})", s.message, s.code), Some(s.code)))
            }
            Ok(Err(e)) => Err(self.err(e, None)),
            Err(_) => Err(self.err(format!("no answer within {:?}", self.timeout), None)),
        }
    }

    /// Sets every key from `record`; a finished record (not `Running`) is also appended to
    /// `history`, which keeps the last [`HISTORY_LEN`] runs.
    pub async fn write(&self, record: &RunRecord) -> Result<(), StatusError> {
        for _ in 0..8 {
            let current = self.timed(self.api.get_opt(&self.name)).await?;
            let mut data = current
                .as_ref()
                .and_then(|c| c.data.clone())
                .unwrap_or_default();
            let mut history: Vec<String> = data
                .get("history")
                .map(|h| h.lines().map(str::to_string).collect())
                .unwrap_or_default();
            if record.phase != "Running" {
                history.push(serde_json::to_string(record).unwrap_or_default());
                let excess = history.len().saturating_sub(HISTORY_LEN);
                history.drain(..excess);
            }
            data.extend(record.to_data());
            data.insert("history".into(), history.join("\n"));
            let result = match current {
                None => {
                    let cm = ConfigMap {
                        metadata: crate::managed_metadata(&self.name),
                        data: Some(data),
                        ..ConfigMap::default()
                    };
                    self.timed(self.api.create(&PostParams::default(), &cm))
                        .await
                }
                Some(mut cm) => {
                    // metadata.resourceVersion stays as read: a concurrent write is a 409.
                    cm.data = Some(data);
                    self.timed(self.api.replace(&self.name, &PostParams::default(), &cm))
                        .await
                }
            };
            match result {
                Ok(_) => return Ok(()),
                Err(e) if e.code == Some(409) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(self.err("kept conflicting with other writers", None))
    }

    /// Reads the current record and its history.
    pub async fn read(
        &self,
    ) -> Result<Option<(BTreeMap<String, String>, Vec<RunRecord>)>, StatusError> {
        let cm = self.timed(self.api.get_opt(&self.name)).await?;
        Ok(cm.and_then(|c| c.data).map(|d| {
            let h = RunRecord::parse_history(d.get("history").map(String::as_str).unwrap_or(""));
            (d, h)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_has_every_design_key_as_strings() {
        let r = RunRecord {
            phase: "Succeeded".into(),
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
    fn history_round_trips() {
        let r = RunRecord {
            phase: "Failed".into(),
            error: "boom".into(),
            ..RunRecord::default()
        };
        let line = serde_json::to_string(&r).expect("json");
        let parsed = RunRecord::parse_history(&format!("{line}\nnot json\n{line}"));
        assert_eq!(parsed, vec![r.clone(), r]);
    }
}
