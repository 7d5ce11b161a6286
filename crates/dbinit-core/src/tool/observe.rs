//! The tool-mode flows that read and never write: `dbinit wait --tool T` (until the tool's
//! table holds the image's head or newer: the "schema at version >= X" wait, with no kubectl
//! and no RBAC), and the tool's state for `status` and `plan`.

use std::cell::Cell;
use std::time::Duration;

use serde::Serialize;
use tokio_postgres::Client;
use tracing::{info, warn};

use super::error::{Error, Result};
use super::files::Expected;
use super::run::{look, pending_seeds};
use super::settings::ToolSettings;
use super::state::{ToolState, Verdict};
use crate::dependency;
use crate::migrate::MigrateSettings;
use crate::migrate::preview::PlanReport;
use crate::migrate::report::StatusReport;
use crate::postgres::connect::{connect, connect_target, target_label};
use crate::ready::{self, Context};
use crate::retry::{Backoff, Class, Pace, PollError, Step, poll};
use crate::setting::ConfigError;

/// How often `wait` looks at the tool's table.
const WAIT_POLL: Backoff = Backoff {
    initial: Duration::from_millis(100),
    max: Duration::from_secs(1),
};

/// The files, or a configuration error saying why `wait` cannot know what to wait for.
fn expected_or_config(t: &ToolSettings) -> Result<Expected> {
    let p = t.project.as_ref().ok_or_else(|| {
        ConfigError(
            "dbinit wait in tool mode needs to know the tool: --tool (DBINIT_TOOL) or a migration command dbinit recognises (DBINIT_MIGRATE_COMMAND)".into(),
        )
    })?;
    p.read().map_err(|why| {
        ConfigError(format!(
            "cannot tell the head of {}'s files in this image, so there is nothing to wait for: {why}",
            p.tool.name()
        ))
        .into()
    })
}

/// Waits for the dependencies, then until the tool's table holds the head of its files in
/// the image, or newer, and the seeds are applied. A failure recorded in the table is
/// reported while waiting (a run in progress records one for a moment) and ends the wait
/// only at the deadline.
pub async fn wait(ctx: &Context<'_>, m: &MigrateSettings, t: &ToolSettings) -> Result<ToolState> {
    let expected = Ok(expected_or_config(t)?);
    let ready = ready::wait_for_dependencies(ctx).await?;
    let slot = &Cell::new(ready.on_target.then_some(ready.client));
    let warned = &Cell::new(false);
    let expected = &expected;
    let pace = Pace {
        deadline: ctx.deadline,
        backoff: WAIT_POLL,
        report_every: Duration::from_secs(5),
    };
    let step = move |_| async move {
        let mut client = slot.take();
        let step = look_once(ctx, m, t, expected, &mut client, warned).await;
        slot.set(client);
        step
    };
    poll(pace, step, |p| {
        info!(state = %p.awaited, "waiting for the migration to reach this image's head");
    })
    .await
    .map_err(|e| match e {
        PollError::Failed(e) => e,
        PollError::Deadline { last, waited, .. } => Error::WaitTimeout {
            waited,
            state: last,
        },
    })
}

/// One look of [`wait`].
async fn look_once(
    ctx: &Context<'_>,
    m: &MigrateSettings,
    t: &ToolSettings,
    expected: &std::result::Result<Expected, String>,
    client: &mut Option<Client>,
    warned: &Cell<bool>,
) -> Step<ToolState, Error, String> {
    let pg = ctx.postgres;
    if client.is_none() {
        match connect(pg, &pg.database, &ctx.app, ctx.wait.connect_timeout).await {
            Ok(c) => *client = Some(c),
            Err(e) if matches!(e.class(), Class::MissingDatabase | Class::Transient) => {}
            Err(e) => {
                return Step::Fail(Error::from(dependency::Error::Refused {
                    dependency: target_label(pg),
                    cause: Box::new(e),
                }));
            }
        }
    }
    let Some(c) = client.as_ref() else {
        return Step::Wait(format!("database {:?} (not created yet)", pg.database));
    };
    let state = match look(c, t, Some(expected), false).await {
        Ok(Some(s)) => s,
        Ok(None) => return Step::Fail(ConfigError("no tool to wait for".into()).into()),
        Err(e) => {
            if c.is_closed() {
                *client = None;
            }
            return Step::Wait(e.render());
        }
    };
    match state.verdict {
        Verdict::UpToDate | Verdict::Ahead => {
            if state.verdict == Verdict::Ahead && !warned.replace(true) {
                warn!("{}", state.describe());
            }
            match pending_seeds(c, m).await {
                Ok(s) if s.is_empty() => Step::Done(state),
                Ok(s) => Step::Wait(format!(
                    "seeds {}",
                    s.iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Err(e) => Step::Wait(e.render()),
            }
        }
        _ => Step::Wait(state.describe()),
    }
}

/// The tool's state as it is now, for `status` and `plan`; `None` without a known tool.
/// Reads only; a database that does not exist has nothing applied.
pub async fn state(ctx: &Context<'_>, t: &ToolSettings, exists: bool) -> Result<Option<ToolState>> {
    let Some(p) = &t.project else {
        return Ok(None);
    };
    let expected = p.read();
    if !exists {
        let state = match &expected {
            Ok(e) => super::judge::judge(
                p.tool,
                &p.table.plain(),
                e,
                &super::recorded::Recorded::Missing,
                false,
            ),
            Err(why) => ToolState::unknown(p.tool, &p.table.plain(), why.clone()),
        };
        return Ok(Some(state));
    }
    let client = connect_target(ctx.postgres, &ctx.app, ctx.wait.connect_timeout).await?;
    look(&client, t, Some(&expected), false).await
}

/// `dbinit status` in tool mode: the seeds (and any dbinit history) as `status` reports
/// them, and the tool's state.
#[derive(Debug, Clone, Serialize)]
pub struct ToolStatus {
    /// What `status` reports without a tool.
    #[serde(flatten)]
    pub status: StatusReport,
    /// The tool's state, when a tool is known.
    pub tool: Option<ToolState>,
    /// The migration command, as a person would type it.
    pub command: Option<String>,
}

/// `dbinit plan` in tool mode: what `run` would do.
#[derive(Debug, Clone, Serialize)]
pub struct ToolPlan {
    /// What `plan` reports without a tool (the database, the seeds).
    #[serde(flatten)]
    pub plan: PlanReport,
    /// The tool's state, when a tool is known.
    pub tool: Option<ToolState>,
    /// The migration command.
    pub command: Option<String>,
    /// Whether `run` would start the command (under the lock).
    pub would_run_command: bool,
}

/// Whether `run` would start the command given `state`.
pub fn would_run(t: &ToolSettings, state: Option<&ToolState>) -> bool {
    t.command.is_some()
        && (t.always_runs.is_some()
            || !state.is_some_and(|s| {
                matches!(
                    s.verdict,
                    Verdict::UpToDate | Verdict::Ahead | Verdict::Failed
                )
            }))
}

impl ToolStatus {
    /// The verdict `--exit-code` reports: the tool's first (failed 6, pending 10, ahead 11),
    /// then the seeds'.
    pub fn exit_verdict(&self) -> crate::migrate::report::Verdict {
        use crate::migrate::report::Verdict as V;
        match self.tool.as_ref().map(|s| s.verdict) {
            Some(Verdict::Failed) => V::Diverged,
            Some(Verdict::Pending) => V::Pending,
            Some(Verdict::Ahead) if self.status.verdict == V::UpToDate => V::Ahead,
            _ => self.status.verdict,
        }
    }

    /// The report for people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        if let Some(c) = &self.command {
            out.push_str(&format!("migration command: {c}\n"));
        }
        if let Some(s) = &self.tool {
            out.push_str(&tool_text(s));
        }
        out.push_str(&self.status.text());
        out
    }
}

impl ToolPlan {
    /// The plan for people.
    pub fn text(&self) -> String {
        let mut out = self.plan.text();
        if let Some(s) = &self.tool {
            out.push_str(&tool_text(s));
        }
        if let Some(c) = &self.command {
            out.push_str(&if self.would_run_command {
                format!("would run `{c}` under the migration lock\n")
            } else {
                format!("would not run `{c}`\n")
            });
        }
        out
    }
}

/// The tool's lines of `status` and `plan`.
fn tool_text(s: &ToolState) -> String {
    let mut out = format!(
        "tool {} ({}): {}\n  image head: {}\n  database:   {}\n",
        s.tool.id(),
        s.table,
        s.verdict.as_str(),
        if s.image_head.is_empty() {
            "-".into()
        } else {
            s.image_head.join(", ")
        },
        if s.database_head.is_empty() {
            "nothing applied".into()
        } else {
            s.database_head.join(", ")
        },
    );
    if !s.pending.is_empty() {
        out.push_str(&format!("  pending:    {}\n", s.pending.join(", ")));
    }
    if !s.ahead.is_empty() {
        out.push_str(&format!(
            "  ahead:      {} (not in this image)\n",
            s.ahead.join(", ")
        ));
    }
    if let Some(p) = &s.problem {
        out.push_str(&format!("  problem:    {p}\n"));
    }
    if let Some(f) = &s.fix {
        out.push_str(&format!("  fix:        {f}\n"));
    }
    out
}
