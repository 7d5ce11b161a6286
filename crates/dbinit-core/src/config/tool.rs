//! Tool mode's options: the command (`-- CMD ARGS...` or `DBINIT_MIGRATE_COMMAND`, a JSON
//! array), the tool (`--tool`, else recognised from the command), where the tool's files
//! are, and the child's grace period and timeout. No command and no tool: SQL mode.

use std::time::Duration;

use super::args::ToolArgs;
use super::env::Env;
use super::parse::{duration_setting, set};
use crate::setting::ConfigError;
use crate::tool::command::{MigrateCommand, resolve_program};
use crate::tool::files::Project;
use crate::tool::kind;
use crate::tool::settings::{DEFAULT_GRACE, ToolSettings};

type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// What the command will be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// `run`: the program must exist and be executable (exit 2 before anything else).
    Run,
    /// `wait`, `status`, `plan`: the command is only read, for the tool and its files.
    Read,
}

/// Resolves tool mode, or `None` for a SQL run.
pub fn resolve_tool(a: ToolArgs, env: &Env, usage: Use) -> Result<Option<ToolSettings>> {
    const COMMAND: &str = "DBINIT_MIGRATE_COMMAND (--migrate-command)";
    let command = if !a.command.is_empty() {
        Some(MigrateCommand::new(a.command, "the command after --")?)
    } else {
        set(a.migrate_command)
            .map(|raw| MigrateCommand::from_json(&raw, COMMAND))
            .transpose()?
    };
    let named = set(a.tool)
        .map(|raw| kind::parse(&raw, "DBINIT_TOOL (--tool)"))
        .transpose()?;
    if command.is_none() && named.is_none() {
        return Ok(None);
    }
    let recognised = command.as_ref().and_then(|c| kind::recognise(c.argv()));
    if let (Some(n), Some(r)) = (named, recognised)
        && n != r.tool
    {
        return Err(ConfigError(format!(
            "DBINIT_TOOL (--tool) says {} but the migration command is {}'s; drop --tool or fix it",
            n.id(),
            r.tool.id()
        )));
    }
    let tool = named.or(recognised.map(|r| r.tool));
    let always_runs = match (&command, recognised, tool) {
        (Some(c), Some(r), _) if !r.applies_all => Some(format!(
            "`{}` is not {}'s apply-all command, so it runs under the lock every time",
            c.display(),
            r.tool.name()
        )),
        (Some(c), None, None) => Some(format!(
            "`{}` is no migration tool dbinit knows (set --tool if it is one), so it runs under the lock every time",
            c.display()
        )),
        _ => None,
    };
    let program = match (&command, usage) {
        (Some(c), Use::Run) => Some(resolve_program(
            c.program(),
            env.tool.path.as_deref(),
            &env.cwd,
        )?),
        _ => None,
    };
    // The tool's own flags are read from its own command only: a wrapper named by --tool
    // (`--tool alembic -- ./migrate.sh -c x`) leaves the tool's defaults.
    let argv = match (&command, recognised) {
        (Some(c), Some(_)) => c.argv().to_vec(),
        _ => Vec::new(),
    };
    let project = tool
        .map(|t| Project::new(t, &argv, env.tool.clone(), &env.cwd))
        .transpose()
        .map_err(ConfigError)?;
    let timeout = duration_setting(a.migrate_timeout, "DBINIT_MIGRATE_TIMEOUT", Duration::ZERO)?;
    Ok(Some(ToolSettings {
        command,
        program,
        tool,
        project,
        always_runs,
        grace: duration_setting(a.child_grace, "DBINIT_CHILD_GRACE", DEFAULT_GRACE)?,
        timeout: (!timeout.is_zero()).then_some(timeout),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(cmd: &[&str]) -> ToolArgs {
        ToolArgs {
            command: cmd.iter().map(|w| w.to_string()).collect(),
            ..ToolArgs::default()
        }
    }

    #[test]
    fn sql_mode_without_command_or_tool() {
        assert!(
            resolve_tool(ToolArgs::default(), &Env::default(), Use::Run)
                .expect("ok")
                .is_none()
        );
    }

    #[test]
    fn command_and_tool_are_recognised_and_checked() {
        let env = Env::default();
        let t = resolve_tool(args(&["alembic", "upgrade", "head"]), &env, Use::Read)
            .expect("ok")
            .expect("tool mode");
        assert_eq!(t.tool, Some(kind::Tool::Alembic));
        assert!(t.always_runs.is_none() && t.program.is_none());
        let t = resolve_tool(args(&["alembic", "downgrade", "-1"]), &env, Use::Read)
            .expect("ok")
            .expect("tool mode");
        assert!(
            t.always_runs
                .as_deref()
                .is_some_and(|w| w.contains("every time"))
        );
        let mut a = args(&["dbmate", "up"]);
        a.tool = Some("alembic".into());
        let e = resolve_tool(a, &env, Use::Read).expect_err("mismatch");
        assert!(e.0.contains("DBINIT_TOOL"), "{e}");
        let e =
            resolve_tool(args(&["no-such-migrator-xyz"]), &env, Use::Run).expect_err("not found");
        assert!(e.0.contains("no-such-migrator-xyz"), "{e}");
        let a = ToolArgs {
            migrate_command: Some("alembic upgrade head".into()),
            ..ToolArgs::default()
        };
        let e = resolve_tool(a, &env, Use::Read).expect_err("not json");
        assert!(e.0.contains("DBINIT_MIGRATE_COMMAND"), "{e}");
        let mut a = args(&["dbmate", "up"]);
        a.migrate_timeout = Some("soon".into());
        assert!(
            resolve_tool(a, &env, Use::Read)
                .expect_err("bad duration")
                .0
                .contains("DBINIT_MIGRATE_TIMEOUT")
        );
    }
}
