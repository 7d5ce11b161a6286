//! The configuration reference, read from the parsers the binaries run: `dbinit`'s
//! ([`dbinit_core::cli::Cli`]) and `dbinit-job`'s ([`dbinit_k8s::JobCli`]), through clap's
//! [`CommandFactory`]. One table per help heading (PostgreSQL, Redis, ...), saying which
//! commands take it, then the options only one command has. The meaning is each option's own
//! `--help` text, so the reference says exactly what `--help` says.
//!
//! Which options are shared is read from the shared option groups themselves (`ConnArgs`,
//! `MigrateArgs`, `OutcomeArgs`, `JobArgs`): every other option is its command's own (clap
//! carries a flattened group's help heading over to the options declared after it, so the
//! heading alone cannot say).

use clap::{Arg, ArgAction, Args, Command, CommandFactory};

use crate::cell;

/// An option as the reference shows it, with the commands that take it.
#[derive(Debug, Clone)]
pub struct Setting {
    /// `--postgres-host`, without the dashes.
    pub long: String,
    /// `-o`, when it has one.
    pub short: Option<char>,
    /// `POSTGRES_HOST`, when it has one.
    pub env: Option<String>,
    /// `HOST`, when it takes a value.
    pub value: Option<String>,
    /// The values clap accepts, when it lists them.
    pub choices: Vec<String>,
    /// Its `--help` text.
    pub help: String,
    /// Its help heading (`PostgreSQL`, ...) when it belongs to a shared group; none for a
    /// command's own options.
    pub heading: Option<String>,
    /// `dbinit run`, `dbinit-job`, ...
    pub commands: Vec<String>,
}

/// Both binaries' parsers.
pub fn parsers() -> Vec<Command> {
    vec![
        dbinit_core::cli::Cli::command(),
        dbinit_k8s::JobCli::command(),
    ]
}

/// The long flags of the option groups that several commands flatten.
fn shared_flags() -> Vec<String> {
    let mut c = Command::new("shared");
    c = dbinit_core::config::ConnArgs::augment_args(c);
    c = dbinit_core::config::MigrateArgs::augment_args(c);
    c = dbinit_core::config::OutcomeArgs::augment_args(c);
    c = dbinit_k8s::config::JobArgs::augment_args(c);
    c.get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect()
}

/// Every option of every command of both binaries (`--help` and `--version` aside), in the
/// order the parsers define them, merged by (flag, heading, help).
pub fn settings() -> Vec<Setting> {
    let shared = shared_flags();
    let mut out: Vec<Setting> = Vec::new();
    for bin in parsers() {
        // `dbinit` alone is `dbinit run`: its options are run's, listed under run.
        let commands: Vec<(String, &Command)> = if bin.has_subcommands() {
            bin.get_subcommands()
                .map(|s| (format!("{} {}", bin.get_name(), s.get_name()), s))
                .collect()
        } else {
            vec![(bin.get_name().to_string(), &bin)]
        };
        for (name, cmd) in commands {
            for arg in cmd.get_arguments().filter(|a| shown(a)) {
                let mut s = setting(arg, &name);
                if !shared.contains(&s.long) {
                    s.heading = None;
                }
                match out
                    .iter_mut()
                    .find(|o| o.long == s.long && o.heading == s.heading && o.help == s.help)
                {
                    Some(o) => o.commands.push(name.clone()),
                    None => out.push(s),
                }
            }
        }
    }
    out
}

fn shown(arg: &Arg) -> bool {
    !arg.is_hide_set()
        && arg.get_long().is_some()
        && !matches!(arg.get_action(), ArgAction::Help | ArgAction::Version)
}

fn setting(arg: &Arg, command: &str) -> Setting {
    let takes_value = matches!(arg.get_action(), ArgAction::Set | ArgAction::Append);
    Setting {
        long: arg.get_long().unwrap_or_default().to_string(),
        short: arg.get_short(),
        env: arg.get_env().map(|e| e.to_string_lossy().into_owned()),
        value: takes_value.then(|| {
            arg.get_value_names()
                .and_then(|v| v.first())
                .map(|v| v.to_string())
                .unwrap_or_else(|| arg.get_id().to_string().to_uppercase())
        }),
        choices: if takes_value {
            arg.get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| v.get_name().to_string())
                .collect()
        } else {
            Vec::new()
        },
        help: arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default(),
        heading: arg.get_help_heading().map(str::to_string),
        commands: vec![command.to_string()],
    }
}

fn flag(s: &Setting) -> String {
    let mut f = format!("`--{}", s.long);
    if let Some(v) = &s.value {
        f.push_str(&format!(" {v}"));
    }
    f.push('`');
    if let Some(c) = s.short {
        f.push_str(&format!(" (`-{c}`)"));
    }
    f
}

fn meaning(s: &Setting) -> String {
    let mut m = cell(&s.help);
    if !s.choices.is_empty() {
        let list: Vec<String> = s.choices.iter().map(|c| format!("`{c}`")).collect();
        m.push_str(&format!(" (one of {})", list.join(", ")));
    }
    m
}

/// "every `dbinit` command and `dbinit-job`", or the list.
fn taken_by(commands: &[String], all: &[String]) -> String {
    let dbinit_all: Vec<&String> = all.iter().filter(|c| c.starts_with("dbinit ")).collect();
    let has_all = dbinit_all.iter().all(|c| commands.contains(c));
    let mut parts: Vec<String> = Vec::new();
    if has_all {
        parts.push("every `dbinit` command".into());
    } else {
        let subs: Vec<String> = commands
            .iter()
            .filter(|c| c.starts_with("dbinit "))
            .map(|c| format!("`{c}`"))
            .collect();
        if !subs.is_empty() {
            parts.push(subs.join(", "));
        }
    }
    for c in commands.iter().filter(|c| !c.starts_with("dbinit ")) {
        parts.push(format!("`{c}`"));
    }
    match parts.len() {
        0 => String::new(),
        1 => parts.remove(0),
        _ => {
            let last = parts.pop().unwrap_or_default();
            format!("{} and {last}", parts.join(", "))
        }
    }
}

/// The reference as markdown, ready for the page's `generated:reference` region.
pub fn markdown() -> String {
    let all = settings();
    let every_command: Vec<String> = {
        let mut v: Vec<String> = Vec::new();
        for s in &all {
            for c in &s.commands {
                if !v.contains(c) {
                    v.push(c.clone());
                }
            }
        }
        v
    };
    let mut headings: Vec<String> = Vec::new();
    for s in &all {
        if let Some(h) = &s.heading
            && !headings.contains(h)
        {
            headings.push(h.clone());
        }
    }
    let mut out = String::new();
    for h in &headings {
        let rows: Vec<&Setting> = all
            .iter()
            .filter(|s| s.heading.as_deref() == Some(h))
            .collect();
        let mut takers: Vec<String> = Vec::new();
        for s in &rows {
            for c in &s.commands {
                if !takers.contains(c) {
                    takers.push(c.clone());
                }
            }
        }
        out.push_str(&format!(
            "### {h}\n\nTaken by {}.\n\n| variable | flag | meaning |\n|---|---|---|\n",
            taken_by(&takers, &every_command)
        ));
        for s in rows {
            let env = s.env.as_ref().map_or("—".into(), |e| format!("`{e}`"));
            out.push_str(&format!("| {env} | {} | {} |\n", flag(s), meaning(s)));
        }
        out.push('\n');
    }
    let own: Vec<&Setting> = all.iter().filter(|s| s.heading.is_none()).collect();
    if !own.is_empty() {
        out.push_str(
            "### Options of one command\n\n| command | flag | variable | meaning |\n|---|---|---|---|\n",
        );
        for s in own {
            let cmds: Vec<String> = s.commands.iter().map(|c| format!("`{c}`")).collect();
            let env = s.env.as_ref().map_or("—".into(), |e| format!("`{e}`"));
            out.push_str(&format!(
                "| {} | {} | {env} | {} |\n",
                cmds.join(", "),
                flag(s),
                meaning(s)
            ));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_binaries_options_are_all_there() {
        let all = settings();
        let find = |long: &str| {
            all.iter()
                .find(|s| s.long == long)
                .unwrap_or_else(|| panic!("--{long}"))
        };
        let host = find("postgres-host");
        assert_eq!(host.env.as_deref(), Some("POSTGRES_HOST"));
        assert!(host.commands.contains(&"dbinit run".to_string()));
        assert!(host.commands.contains(&"dbinit-job".to_string()));
        let lease = find("lease-name");
        assert_eq!(lease.commands, vec!["dbinit-job".to_string()]);
        assert!(find("output").choices.contains(&"json".to_string()));
        assert!(all.iter().all(|s| s.long != "help"));
    }

    #[test]
    fn taken_by_reads_well() {
        let all: Vec<String> = ["dbinit run", "dbinit wait", "dbinit-job"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            taken_by(&all, &all),
            "every `dbinit` command and `dbinit-job`"
        );
        assert_eq!(taken_by(&all[..1], &all), "`dbinit run`");
    }
}
