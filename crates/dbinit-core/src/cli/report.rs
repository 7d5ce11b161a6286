//! `dbinit status` and `dbinit plan`: print what was found (with the tool's state in tool
//! mode), and for `status --exit-code` end with the code that says it.

use tokio::time::Instant;

use super::{Output, StatusCmd, interruptible, resolve_mode};
use crate::config::Use;
use crate::error::Error;
use crate::exit::ExitCode;
use crate::migrate::report::Verdict;
use crate::migrate::{self, preview};
use crate::outcome;
use crate::secret::scrub;
use crate::tool::{
    self,
    observe::{ToolPlan, ToolStatus},
};

pub(super) async fn plan_cmd(c: StatusCmd, started: Instant) -> ExitCode {
    let (settings, m, t, out) = match resolve_mode(c.cmd, c.tool, Use::Read) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let ctx = settings.context(&settings.identity(), started);
    let r = interruptible(async {
        let plan = preview::preview(&ctx, &m).await?;
        let Some(t) = &t else {
            return Ok::<_, Error>((plan, None));
        };
        let state = tool::observe::state(&ctx, t, !plan.create_database).await?;
        let would_run_command = tool::observe::would_run(t, state.as_ref());
        Ok((
            plan.clone(),
            Some(ToolPlan {
                plan,
                tool: state,
                command: t.display(),
                would_run_command,
            }),
        ))
    })
    .await;
    match r {
        Ok((report, tool_plan)) => {
            let text = match (c.output, &tool_plan) {
                (Output::Json, Some(p)) => serde_json::to_string_pretty(p).unwrap_or_default(),
                (Output::Json, None) => serde_json::to_string_pretty(&report).unwrap_or_default(),
                (Output::Text, Some(p)) => p.text(),
                (Output::Text, None) => report.text(),
            };
            println!("{}", scrub(text.trim_end(), settings.secrets()));
            let failed = tool_plan
                .as_ref()
                .and_then(|p| p.tool.as_ref())
                .is_some_and(|s| s.verdict == tool::state::Verdict::Failed);
            match &report.refusal {
                None if failed => ExitCode::Diverged,
                None => ExitCode::Ok,
                Some(r) => ExitCode::ALL
                    .into_iter()
                    .chain(ExitCode::LINT)
                    .find(|c| *c as u8 == r.exit_code)
                    .unwrap_or(ExitCode::Failure),
            }
        }
        Err(e) => outcome::finish(Err(e), &out, &settings.secrets()),
    }
}

pub(super) async fn status_cmd(c: StatusCmd, started: Instant) -> ExitCode {
    let (settings, m, t, out) = match resolve_mode(c.cmd, c.tool, Use::Read) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let ctx = settings.context(&settings.identity(), started);
    let r = interruptible(async {
        let report = migrate::status(&ctx, &m).await?;
        let Some(t) = &t else {
            return Ok::<_, Error>((report, None));
        };
        let state = tool::observe::state(&ctx, t, report.exists).await?;
        Ok((
            report.clone(),
            Some(ToolStatus {
                status: report,
                tool: state,
                command: t.display(),
            }),
        ))
    })
    .await;
    match r {
        Ok((report, tool_status)) => {
            let text = match (c.output, &tool_status) {
                (Output::Json, Some(s)) => serde_json::to_string_pretty(s).unwrap_or_default(),
                (Output::Json, None) => serde_json::to_string_pretty(&report).unwrap_or_default(),
                (Output::Text, Some(s)) => s.text(),
                (Output::Text, None) => report.text(),
            };
            println!("{}", text.trim_end());
            if !c.exit_code {
                return ExitCode::Ok;
            }
            let tool_state = tool_status.as_ref().and_then(|s| s.tool.as_ref());
            let verdict = tool_status
                .as_ref()
                .map_or(report.verdict, ToolStatus::exit_verdict);
            let code = match verdict {
                Verdict::Ahead if c.allow_ahead => ExitCode::Ok,
                v => v.exit_code(),
            };
            // The tool's own words when the verdict is the tool's.
            let line = match tool_state {
                Some(s)
                    if verdict != report.verdict || s.verdict != tool::state::Verdict::UpToDate =>
                {
                    format!("{}: {}", verdict_word(verdict), s.describe())
                }
                _ => report.verdict_line(),
            };
            if code == ExitCode::Ok {
                tracing::info!(exit_code = 0, "{line}");
            } else {
                tracing::error!(exit_code = code as u8, kind = code.as_str(), "{line}");
            }
            let message = if code == ExitCode::Ok {
                format!("ok: {line}")
            } else {
                format!("{} (exit {}): {line}", code.as_str(), code as u8)
            };
            outcome::write_termination_message(&out, &message);
            code
        }
        Err(e) => outcome::finish(Err(e), &out, &settings.secrets()),
    }
}

/// The verdict's word, as `--output json` spells it.
fn verdict_word(v: Verdict) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
