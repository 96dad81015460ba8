//! Saved plans: the resolved choices of a run (tables, per-table modes, options) as a
//! readable TOML file, so the same copy can run again tomorrow — by script or after an
//! interactive session. Connections are not saved (they come from flags or the
//! environment on replay), and so never a password.

use std::path::Path;

use pgbarge::catalog::TableName;
use pgbarge::plan::{Action, Content, LoadMode, Plan};
use pgbarge::{Error, Result};
use serde::{Deserialize, Serialize};

/// The file's format version, checked on load.
const VERSION: u32 = 1;

/// The most streams a plan may ask for (the range of `--jobs`).
pub const MAX_JOBS: usize = 64;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedPlan {
    pub version: u32,
    pub content: Content,
    pub jobs: usize,
    pub split_above: u64,
    /// The size of a split table's parts (absent: the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_size: Option<u64>,
    /// Schemas copied whole: their views, functions and sequences come along.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub whole_schemas: Vec<String>,
    /// `--exclude-object` patterns: objects of those schemas left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_objects: Vec<String>,
    /// Foreign keys to tables not copied are left out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub without_fks: bool,
    /// Privileges granted on the source are granted on the target.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub grants: bool,
    /// The role created objects are given to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// `--since`: the column a sync takes only newer rows by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(rename = "table")]
    pub tables: Vec<SavedTable>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedTable {
    pub schema: String,
    pub name: String,
    /// What to do if the target table exists (absent: load only into a missing or empty one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<LoadMode>,
}

impl SavedTable {
    pub fn table_name(&self) -> TableName {
        TableName::new(&self.schema, &self.name)
    }
}

impl SavedPlan {
    /// The choices behind `plan`. `mode`, the run's `--mode`, is recorded for every table
    /// (a table created or loaded empty this time holds rows on the next run).
    pub fn from_plan(
        plan: &Plan,
        split_above: u64,
        part_size: Option<u64>,
        mode: Option<LoadMode>,
    ) -> SavedPlan {
        SavedPlan {
            version: VERSION,
            content: plan.content,
            jobs: plan.jobs,
            split_above,
            part_size,
            whole_schemas: plan.whole_schemas.clone(),
            exclude_objects: plan.exclude_objects.clone(),
            without_fks: plan.without_fks,
            owner: plan.owner.clone(),
            grants: plan.grants,
            since: plan.since.clone(),
            tables: plan
                .tables
                .iter()
                .map(|t| SavedTable {
                    schema: t.target.schema.clone(),
                    name: t.target.name.clone(),
                    mode: match t.action {
                        Action::Append => Some(LoadMode::Append),
                        Action::Truncate => Some(LoadMode::Truncate),
                        Action::Replace => Some(LoadMode::Replace),
                        Action::Upsert => Some(LoadMode::Upsert),
                        Action::Sync => Some(LoadMode::Sync),
                        _ => mode,
                    },
                })
                .collect(),
        }
    }

    /// Writes the plan with a header saying how to replay it.
    pub fn save(&self, path: &Path, source: &str, target: &str) -> Result<()> {
        let body = toml::to_string_pretty(self)
            .map_err(|e| Error::usage(format!("cannot write the plan: {e}")))?;
        let text = format!(
            "# pgbarge plan, saved from {source} to {target}.\n\
             # Replay: pgbarge copy --plan {} --source CONN --target CONN\n\
             # (connections are not saved; passwords never are).\n\n{body}",
            path.display()
        );
        std::fs::write(path, text)
            .map_err(|e| Error::usage(format!("cannot write the plan to {}: {e}", path.display())))
    }

    pub fn load(path: &Path) -> Result<SavedPlan> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::usage(format!("cannot read the plan {}: {e}", path.display())))?;
        let plan: SavedPlan = toml::from_str(&text)
            .map_err(|e| Error::usage(format!("{} is not a pgbarge plan: {e}", path.display())))?;
        if plan.version != VERSION {
            return Err(Error::usage(format!(
                "{} is a version {} plan; this pgbarge reads version {VERSION}",
                path.display(),
                plan.version
            )));
        }
        if plan.tables.is_empty() {
            return Err(Error::usage(format!("{} names no tables", path.display())));
        }
        plan.check()
            .map_err(|why| Error::usage(format!("{}: {why}", path.display())))?;
        Ok(plan)
    }

    /// The values a file may hold, checked as their flags are: a plan file is input too
    /// (`jobs = 100000` opened 200 connections, exhausted both servers and retried for
    /// minutes).
    fn check(&self) -> std::result::Result<(), String> {
        if !(1..=MAX_JOBS).contains(&self.jobs) {
            return Err(format!(
                "jobs = {} is out of range: 1 to {MAX_JOBS}, as for --jobs",
                self.jobs
            ));
        }
        if self.split_above == 0 {
            return Err("split_above = 0: a size of at least 1 byte, as for --split-above".into());
        }
        if self.part_size == Some(0) {
            return Err("part_size = 0: a size of at least 1 byte, as for --part-size".into());
        }
        let blank = |what: &str| format!("{what} is empty");
        if self.whole_schemas.iter().any(|s| s.is_empty()) {
            return Err(blank("a name in whole_schemas"));
        }
        if self.owner.as_deref() == Some("") {
            return Err(blank("owner"));
        }
        if self.since.as_deref() == Some("") {
            return Err(blank("since"));
        }
        if self
            .tables
            .iter()
            .any(|t| t.schema.is_empty() || t.name.is_empty())
        {
            return Err(blank("a table's schema or name"));
        }
        Ok(())
    }
}
