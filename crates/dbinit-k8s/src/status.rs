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

use crate::record::{Phase, RunRecord};

/// How many runs the `history` key keeps.
pub const HISTORY_LEN: usize = 20;

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
    labels: BTreeMap<String, String>,
}

impl StatusWriter {
    /// A writer for the ConfigMap `name` in `api`'s namespace.
    pub fn new(api: Api<ConfigMap>, name: &str, timeout: Duration) -> Self {
        Self {
            api,
            name: name.to_string(),
            timeout,
            labels: BTreeMap::new(),
        }
    }

    /// Adds labels to the ConfigMap when this writer creates it (an existing one keeps its own).
    pub fn with_labels(mut self, labels: BTreeMap<String, String>) -> Self {
        self.labels = labels;
        self
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
            if record.phase != Phase::Running {
                history.push(serde_json::to_string(record).unwrap_or_default());
                let excess = history.len().saturating_sub(HISTORY_LEN);
                history.drain(..excess);
            }
            data.extend(record.to_data());
            data.insert("history".into(), history.join("\n"));
            let result = match current {
                None => {
                    let cm = ConfigMap {
                        metadata: crate::managed_metadata(&self.name, &self.labels),
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
