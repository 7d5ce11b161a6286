//! `dbinit plan`: what `run` would do to this database, computed without writing anything —
//! no database created, no history table created, no lock taken, only reads — so it works
//! with a read-only role and answers "what will this deploy do" before the deploy.

use serde::Serialize;

use super::adopt::{self, Adoption};
use super::error::{Error, Result};
use super::header::{self, is_no_transaction};
use super::history::DbState;
use super::observe::read_plan;
use super::plan;
use super::review;
use super::set::MigrationSet;
use super::settings::MigrateSettings;
use super::sqlsplit;
use crate::lint::{Db, Review};
use crate::ready::{self, Context};

/// One file `run` would apply.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedScript {
    /// `V3__orders_total` or a seed's file name.
    pub name: String,
    /// Whether it runs in a transaction (`false`: `-- dbinit:no-transaction`, or the
    /// layout's own marker).
    pub transaction: bool,
    /// How many statements it holds.
    pub statements: usize,
    /// The compatibility floor it sets once applied (`-- dbinit:compatible-from=N`): releases
    /// whose set ends below N cannot run afterwards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compatible_from: Option<i64>,
}

/// Why `run` would stop instead.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedRefusal {
    /// The exit code `run` would end with.
    pub exit_code: u8,
    /// Its word (`unadopted`, `diverged`).
    pub kind: &'static str,
    /// The message `run` would print.
    pub message: String,
}

/// What `run` would do.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    /// The application's database.
    pub database: String,
    /// Whether `run` would create it.
    pub create_database: bool,
    /// Highest applied version.
    pub applied_version: Option<i64>,
    /// Highest version of the set.
    pub target_version: Option<i64>,
    /// Versions `run` would record without running them (a baseline or an adoption).
    pub adoption: Option<Adoption>,
    /// Migrations `run` would apply, in order.
    pub migrations: Vec<PlannedScript>,
    /// Seeds `run` would apply, in order.
    pub seeds: Vec<PlannedScript>,
    /// Applied versions newer than the set (tolerated).
    pub future: Vec<String>,
    /// Why `run` would refuse, if it would.
    pub refusal: Option<PlannedRefusal>,
    /// What the files `run` would apply will do to the live tables (`dbinit lint`'s
    /// review, with the live facts).
    pub lint: Option<Review>,
}

fn script(name: String, sql: &str, no_transaction: bool) -> PlannedScript {
    PlannedScript {
        name,
        transaction: !no_transaction,
        statements: sqlsplit::split(sql).len(),
        compatible_from: header::header(sql).ok().and_then(|h| h.compatible_from),
    }
}

fn scripts(
    set: &MigrationSet,
    p: &plan::Plan,
    skip_upto: Option<i64>,
) -> (Vec<PlannedScript>, Vec<PlannedScript>) {
    let migrations = p
        .migrations
        .iter()
        .map(|&i| &set.migrations[i])
        .filter(|m| skip_upto.is_none_or(|n| m.version() > n))
        .map(|m| script(m.to_string(), m.sql(), m.no_transaction()))
        .collect();
    let seeds = p
        .seeds
        .iter()
        .map(|&i| &set.seeds[i])
        .map(|s| script(s.name.clone(), &s.sql, is_no_transaction(&s.sql)))
        .collect();
    (migrations, seeds)
}

/// Computes the plan; reads only.
pub async fn preview(ctx: &Context<'_>, m: &MigrateSettings) -> Result<PlanReport> {
    let database = ctx.postgres.database.clone();
    let ready = ready::wait_for_dependencies(ctx).await?;
    let mut report = PlanReport {
        database,
        create_database: !ready.on_target,
        applied_version: None,
        target_version: m.set.target_version(),
        adoption: None,
        migrations: Vec::new(),
        seeds: Vec::new(),
        future: Vec::new(),
        refusal: None,
        lint: None,
    };
    let refuse = |e: Error| {
        let code = e.exit_code();
        Some(PlannedRefusal {
            exit_code: code as u8,
            kind: code.as_str(),
            message: e.render(),
        })
    };
    if !ready.on_target {
        let p = plan::plan(&m.set, &DbState::default());
        (report.migrations, report.seeds) = scripts(&m.set, &p, None);
        let pending = review::pending(&m.set, &p, None);
        let lint = review::review(pending, Db::New(&ready.client), &m.lint).await?;
        report.refusal = review::gate(&lint, m.lint.fail_on).and_then(refuse);
        report.lint = Some(lint);
        return Ok(report);
    }
    let (state, p) = read_plan(&ready.client, m).await?;
    report.applied_version = p.applied_version;
    report.future = p.future.clone();
    if let Some(d) = &p.divergence {
        report.refusal = refuse(d.clone().into());
        return Ok(report);
    }
    if !p.future.is_empty()
        && let Err(e) = super::observe::enforce_floor(&ready.client, m).await
    {
        report.refusal = refuse(e);
        return Ok(report);
    }
    match adopt::decide(&ready.client, m, &state, &report.database).await {
        Ok(a) => report.adoption = a,
        Err(e @ Error::Unadopted(_)) => {
            report.refusal = refuse(e);
            return Ok(report);
        }
        Err(e) => return Err(e),
    }
    let skip = report.adoption.as_ref().map(|a| a.version);
    (report.migrations, report.seeds) = scripts(&m.set, &p, skip);
    let pending = review::pending(&m.set, &p, skip);
    let lint = review::review(pending, Db::Live(&ready.client), &m.lint).await?;
    if let Some(e) = review::gate(&lint, m.lint.fail_on) {
        report.refusal = refuse(e);
    }
    report.lint = Some(lint);
    Ok(report)
}

impl PlanReport {
    /// The plan for people.
    pub fn text(&self) -> String {
        let mut out = if self.create_database {
            format!("would create database {:?}\n", self.database)
        } else {
            format!("database {:?} exists\n", self.database)
        };
        let v = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
        out.push_str(&format!(
            "applied version {}, target version {}\n",
            v(self.applied_version),
            v(self.target_version)
        ));
        if let Some(r) = &self.refusal {
            out.push_str(&format!(
                "run would refuse ({} exit {}): {}\n",
                r.kind, r.exit_code, r.message
            ));
            if let Some(l) = &self.lint {
                out.push_str(&l.text());
            }
            return out;
        }
        if let Some(a) = &self.adoption {
            out.push_str(&format!("would {}\n", a.summary));
        }
        for (title, list) in [("migrations", &self.migrations), ("seeds", &self.seeds)] {
            if list.is_empty() {
                continue;
            }
            out.push_str(&format!("{title} to apply:\n"));
            for s in list {
                out.push_str(&format!(
                    "  {:<40} {:<15} {} statement(s)\n",
                    s.name,
                    if s.transaction {
                        "transaction"
                    } else {
                        "no-transaction"
                    },
                    s.statements
                ));
                if let Some(n) = s.compatible_from {
                    out.push_str(&format!(
                        "    sets the compatibility floor V{n}: once applied, releases whose \
                         migrations end below V{n} cannot run against this database\n"
                    ));
                }
            }
        }
        if self.migrations.is_empty() && self.seeds.is_empty() && self.adoption.is_none() {
            out.push_str("nothing to apply\n");
        }
        if !self.future.is_empty() {
            out.push_str(&format!(
                "newer than this set (tolerated): {}\n",
                self.future.join(", ")
            ));
        }
        if let Some(l) = &self.lint {
            out.push_str(&l.text());
        }
        out
    }
}
