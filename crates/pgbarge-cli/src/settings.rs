//! Phase two of configuration: raw arguments plus the environment, validated once into an
//! immutable value. Later stages read `Settings`, never flags or environment variables.

use std::io::IsTerminal;

use pgbarge::conninfo::{ConnInfo, Environment};
use pgbarge::plan::{Content, LoadMode};
use pgbarge::select::Pattern;
use pgbarge::{Error, Result};

use std::collections::BTreeMap;
use std::path::PathBuf;

use pgbarge::catalog::TableName;

use crate::args::{CopyArgs, ModeArg, TablesArgs, VerifyArgs};
use crate::planfile::SavedPlan;

/// Validated settings for `pgbarge copy`.
#[derive(Debug)]
pub struct CopySettings {
    pub source: ConnInfo,
    pub target: ConnInfo,
    pub patterns: Vec<Pattern>,
    /// `--all`: every source table.
    pub all: bool,
    /// Modes per table (from a saved plan).
    pub per_table: BTreeMap<TableName, LoadMode>,
    /// Where to save the resolved plan.
    pub save_plan: Option<PathBuf>,
    pub exclude: Vec<Pattern>,
    pub mode: Option<LoadMode>,
    /// `--since COLUMN` of a sync.
    pub since: Option<String>,
    pub content: Content,
    pub jobs: Option<usize>,
    pub split_above: Option<u64>,
    pub part_size: Option<u64>,
    pub resume: bool,
    /// `--follow`: keep applying the source's changes after the copy.
    pub follow: bool,
    /// `--fire-triggers`: follow though the target's ordinary triggers fire.
    pub fire_triggers: bool,
    /// Retries, stall timeout and fail-fast for the copy stage.
    pub copy_options: pgbarge::copy::CopyOptions,
    /// Schemas named whole in a saved plan.
    pub whole_schemas: Vec<String>,
    pub with_parents: bool,
    pub without_fks: bool,
    pub strict: bool,
    /// `--exclude-object`, or the saved plan's.
    pub exclude_objects: Vec<pgbarge::select::ObjectPattern>,
    pub owner: Option<String>,
    pub grants: bool,
    pub verify: bool,
    pub dry_run: bool,
    pub yes: bool,
    pub json: bool,
    pub quiet: bool,
    pub verbose: bool,
    /// stdin and stderr are terminals: pgbarge may ask questions.
    pub interactive: bool,
}

/// `--tls-verify` (or `PGBARGE_TLS_VERIFY`): a connection over the network must check
/// the server's certificate. Set once, from the command line, before any settings.
pub static TLS_VERIFY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

impl CopySettings {
    /// What the library's copy session is asked for.
    pub fn copy_request(&self) -> pgbarge::session::copy::CopyRequest {
        pgbarge::session::copy::CopyRequest {
            patterns: self.patterns.clone(),
            exclude: self.exclude.clone(),
            all: self.all,
            whole_schemas: self.whole_schemas.clone(),
            with_parents: self.with_parents,
            plan: self.plan_options(),
            copy: self.copy_options.clone(),
            resume: self.resume,
            follow: self
                .follow
                .then_some(pgbarge::session::copy::FollowRequest {
                    fire_triggers: self.fire_triggers,
                }),
            dry_run: self.dry_run,
            verify: self.verify,
        }
    }

    /// The choices that shape the plan.
    pub fn plan_options(&self) -> pgbarge::plan::PlanOptions {
        pgbarge::plan::PlanOptions {
            per_table: self.per_table.clone(),
            mode: self.mode,
            content: self.content,
            jobs: self.jobs,
            split_above: self.split_above,
            part_size: self.part_size,
            schema: pgbarge::plan::SchemaOptions {
                without_fks: self.without_fks,
                owner: self.owner.clone(),
                grants: self.grants,
                strict: self.strict,
                refused: Default::default(),
                exclude_objects: self.exclude_objects.clone(),
            },
            source_encoding: self.copy_options.source_encoding.clone(),
            since: self.since.clone(),
        }
    }
}

fn conninfo(value: Option<&str>, flag: &str, var: &str, env: &Environment) -> Result<ConnInfo> {
    let text = value.ok_or_else(|| {
        Error::usage(format!(
            "no {flag} connection given: pass {flag} 'postgres://user@host:5432/db' (or a libpq \
             key=value string), or set {var}."
        ))
    })?;
    let info =
        ConnInfo::parse(text, env).map_err(|e| Error::usage(format!("{flag}: {}", e.message())))?;
    if TLS_VERIFY.get().copied().unwrap_or(false) {
        if let Some(risk) = info.tls_risk(&format!("the {flag} server")) {
            return Err(Error::usage(format!(
                "{flag}: refused with --tls-verify: {risk}. {}.",
                pgbarge::conninfo::TLS_FIX
            )));
        }
    }
    Ok(info)
}

/// `--source` (or `PGBARGE_SOURCE`), resolved.
fn source(args: &crate::args::Source, env: &Environment) -> Result<ConnInfo> {
    conninfo(args.source.as_deref(), "--source", "PGBARGE_SOURCE", env)
}

/// `--target` (or `PGBARGE_TARGET`), resolved.
fn target(args: &crate::args::Target, env: &Environment) -> Result<ConnInfo> {
    conninfo(args.target.as_deref(), "--target", "PGBARGE_TARGET", env)
}

/// `--retries N`, or the default.
fn retry_policy(retries: Option<u32>) -> pgbarge::retry::RetryPolicy {
    pgbarge::retry::RetryPolicy {
        retries: retries.unwrap_or(pgbarge::retry::DEFAULT_RETRIES),
        ..Default::default()
    }
}

/// `--ledger-schema` (or `PGBARGE_LEDGER_SCHEMA`), checked.
fn ledger(args: &crate::args::Ledger) -> Result<pgbarge::ledger::Store> {
    args.ledger_schema
        .as_deref()
        .map(pgbarge::ledger::Store::new)
        .transpose()
        .map(Option::unwrap_or_default)
}

/// `--source` and `--target` (or their variables), resolved.
fn endpoints(args: &crate::args::Endpoints, env: &Environment) -> Result<(ConnInfo, ConnInfo)> {
    Ok((source(&args.source, env)?, target(&args.target, env)?))
}

impl CopySettings {
    pub fn from_args(args: CopyArgs) -> Result<Self> {
        let env = Environment::from_process();
        let (source, target) = endpoints(&args.endpoints, &env)?;
        let mut patterns = args
            .tables
            .iter()
            .map(|t| Pattern::parse(t))
            .collect::<Result<Vec<_>>>()?;
        let saved = args.plan.as_deref().map(SavedPlan::load).transpose()?;
        let mut per_table = BTreeMap::new();
        if let Some(saved) = &saved {
            // Exact names: a table dropped since is "missing", found by preflight.
            for t in &saved.tables {
                patterns.push(Pattern::parse(&t.table_name().sql())?);
                // --mode given with the plan overrides every table's saved mode.
                if let (Some(mode), None) = (t.mode, args.mode) {
                    per_table.insert(t.table_name(), mode);
                }
            }
        }
        let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        let exclude = args
            .exclude
            .iter()
            .map(|t| Pattern::parse(t))
            .collect::<Result<Vec<_>>>()?;
        Ok(CopySettings {
            source,
            target,
            patterns,
            all: args.all,
            per_table,
            save_plan: args.save_plan,
            exclude,
            mode: args.mode.map(|m| match m {
                ModeArg::Append => LoadMode::Append,
                ModeArg::Truncate => LoadMode::Truncate,
                ModeArg::Replace => LoadMode::Replace,
                ModeArg::Upsert => LoadMode::Upsert,
                ModeArg::Sync => LoadMode::Sync,
            }),
            since: match (&args.since, args.mode) {
                (Some(_), Some(m)) if !matches!(m, ModeArg::Sync) => {
                    return Err(Error::usage(
                        "--since applies to --mode sync: it chooses which source rows a sync \
                         compares.",
                    ))
                }
                (Some(column), _) => Some(column.clone()),
                (None, _) => saved.as_ref().and_then(|s| s.since.clone()),
            },
            content: if let Some(saved) = &saved {
                saved.content
            } else if args.schema_only {
                Content::SchemaOnly
            } else if args.data_only {
                Content::DataOnly
            } else {
                Content::SchemaAndData
            },
            jobs: args
                .jobs
                .map(usize::from)
                .or(saved.as_ref().map(|s| s.jobs)),
            split_above: match (&args.split_above, &saved) {
                (Some(text), _) => Some(parse_size(text)?),
                (None, Some(saved)) => Some(saved.split_above),
                (None, None) => None,
            },
            part_size: match (&args.part_size, &saved) {
                (Some(text), _) => Some(parse_size(text)?),
                (None, Some(saved)) => saved.part_size,
                (None, None) => None,
            },
            resume: args.resume,
            follow: args.follow,
            fire_triggers: args.fire_triggers,
            copy_options: pgbarge::copy::CopyOptions {
                retry: retry_policy(args.retries),
                stall_timeout: match &args.stall_timeout {
                    Some(text) => parse_duration(text)?,
                    None => pgbarge::copy::DEFAULT_STALL_TIMEOUT,
                },
                fail_fast: args.fail_fast,
                source_encoding: match &args.source_encoding {
                    Some(e) => Some(encoding_name(e)?),
                    None => None,
                },
                ledger: ledger(&args.ledger)?,
                ..Default::default()
            },
            whole_schemas: saved
                .as_ref()
                .map(|s| s.whole_schemas.clone())
                .unwrap_or_default(),
            with_parents: args.with_parents,
            without_fks: args.without_fks || saved.as_ref().is_some_and(|s| s.without_fks),
            strict: args.strict,
            exclude_objects: match &saved {
                Some(saved) => saved.exclude_objects.clone(),
                None => args.exclude_object.clone(),
            }
            .iter()
            .map(|p| pgbarge::select::ObjectPattern::parse(p))
            .collect::<Result<Vec<_>>>()?,
            owner: args.owner.or(saved.as_ref().and_then(|s| s.owner.clone())),
            grants: args.grants || saved.as_ref().is_some_and(|s| s.grants),
            verify: args.verify,
            dry_run: args.dry_run,
            yes: args.yes,
            json: args.json,
            quiet: args.quiet,
            verbose: args.verbose,
            interactive,
        })
    }
}

/// Validated settings for `pgbarge verify`.
#[derive(Debug)]
pub struct VerifySettings {
    pub source: ConnInfo,
    pub target: ConnInfo,
    pub patterns: Vec<Pattern>,
    /// `--exclude`: tables left out of the comparison.
    pub exclude: Vec<Pattern>,
    pub source_encoding: Option<String>,
    pub json: bool,
}

impl VerifySettings {
    pub fn from_args(args: VerifyArgs) -> Result<Self> {
        let env = Environment::from_process();
        let (source, target) = endpoints(&args.endpoints, &env)?;
        Ok(VerifySettings {
            source,
            target,
            patterns: args
                .tables
                .iter()
                .map(|t| Pattern::parse(t))
                .collect::<Result<Vec<_>>>()?,
            exclude: args
                .exclude
                .iter()
                .map(|t| Pattern::parse(t))
                .collect::<Result<Vec<_>>>()?,
            source_encoding: match &args.source_encoding {
                Some(e) => Some(encoding_name(e)?),
                None => None,
            },
            json: args.json,
        })
    }
}

/// Validated settings for `pgbarge tables`.
#[derive(Debug)]
pub struct TablesSettings {
    pub source: ConnInfo,
    pub patterns: Vec<Pattern>,
    pub json: bool,
}

impl TablesSettings {
    pub fn from_args(args: TablesArgs) -> Result<Self> {
        let env = Environment::from_process();
        Ok(TablesSettings {
            source: source(&args.source, &env)?,
            patterns: args
                .patterns
                .iter()
                .map(|t| Pattern::parse(t))
                .collect::<Result<Vec<_>>>()?,
            json: args.json,
        })
    }
}

/// Validated settings for `pgbarge clean`.
#[derive(Debug)]
pub struct CleanSettings {
    pub target: ConnInfo,
    pub ledger: pgbarge::ledger::Store,
    pub json: bool,
}

impl CleanSettings {
    pub fn from_args(args: crate::args::CleanArgs) -> Result<Self> {
        let env = Environment::from_process();
        Ok(CleanSettings {
            target: target(&args.target, &env)?,
            ledger: ledger(&args.ledger)?,
            json: args.json,
        })
    }
}

/// Validated settings for `pgbarge follow`.
#[derive(Debug)]
pub struct FollowSettings {
    pub source: ConnInfo,
    pub target: ConnInfo,
    pub ledger: pgbarge::ledger::Store,
    pub drop: bool,
    /// How the follower works (`--stall-timeout`, `--retries`, `--fire-triggers`).
    pub follow: pgbarge::follow::Options,
    pub json: bool,
    pub quiet: bool,
}

impl FollowSettings {
    pub fn from_args(args: crate::args::FollowArgs) -> Result<Self> {
        let env = Environment::from_process();
        let (source, target) = endpoints(&args.endpoints, &env)?;
        Ok(FollowSettings {
            source,
            target,
            ledger: ledger(&args.ledger)?,
            drop: args.drop,
            follow: pgbarge::follow::Options {
                stall_timeout: match &args.stall_timeout {
                    Some(text) => parse_duration(text)?,
                    None => pgbarge::follow::DEFAULT_STALL,
                },
                retry: retry_policy(args.retries),
                fire_triggers: args.fire_triggers,
            },
            json: args.json,
            quiet: args.quiet,
        })
    }
}

/// Validated settings for `pgbarge cutover`.
#[derive(Debug)]
pub struct CutoverSettings {
    pub source: ConnInfo,
    pub target: ConnInfo,
    pub ledger: pgbarge::ledger::Store,
    pub fence: bool,
    /// How the last changes are applied (`--retries`, `--fire-triggers`).
    pub follow: pgbarge::follow::Options,
    pub json: bool,
}

impl CutoverSettings {
    pub fn from_args(args: crate::args::CutoverArgs) -> Result<Self> {
        let env = Environment::from_process();
        let (source, target) = endpoints(&args.endpoints, &env)?;
        Ok(CutoverSettings {
            source,
            target,
            ledger: ledger(&args.ledger)?,
            fence: args.fence,
            follow: pgbarge::follow::Options {
                retry: retry_policy(args.retries),
                fire_triggers: args.fire_triggers,
                ..Default::default()
            },
            json: args.json,
        })
    }
}

/// Validated settings for `pgbarge status`: the source is optional (without it, only
/// the target's ledger is shown).
#[derive(Debug)]
pub struct StatusSettings {
    pub source: Option<ConnInfo>,
    pub target: ConnInfo,
    pub ledger: pgbarge::ledger::Store,
    pub json: bool,
}

impl StatusSettings {
    pub fn from_args(args: crate::args::StatusArgs) -> Result<Self> {
        let env = Environment::from_process();
        Ok(StatusSettings {
            source: match &args.endpoints.source.source {
                Some(_) => Some(source(&args.endpoints.source, &env)?),
                None => None,
            },
            target: target(&args.endpoints.target, &env)?,
            ledger: ledger(&args.ledger)?,
            json: args.json,
        })
    }
}

/// `90`, `90s`, `2m`, `1h` → a duration (a bare number is seconds).
fn parse_duration(text: &str) -> Result<std::time::Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        Error::usage(format!(
            "invalid duration {text:?}: expected e.g. 60s, 2m or a number of seconds"
        ))
    })?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "m" | "min" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => {
            return Err(Error::usage(format!(
                "invalid duration {text:?}: the unit must be s, m or h"
            )))
        }
    };
    if secs == 0 {
        return Err(Error::usage(format!(
            "invalid duration {text:?}: it must be at least one second"
        )));
    }
    Ok(std::time::Duration::from_secs(secs))
}

/// `64MB`, `1GB`, `500kB`, `1048576` → bytes (powers of 1024, as PostgreSQL's settings).
fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        Error::usage(format!(
            "invalid size {text:?}: expected e.g. 64MB, 1GB or a number of bytes"
        ))
    })?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1 << 10,
        "mb" | "m" => 1 << 20,
        "gb" | "g" => 1 << 30,
        "tb" | "t" => 1 << 40,
        _ => {
            return Err(Error::usage(format!(
                "invalid size {text:?}: the unit must be B, kB, MB, GB or TB"
            )))
        }
    };
    match n.checked_mul(mult) {
        None => Err(Error::usage(format!("size {text:?} is too large"))),
        Some(0) => Err(Error::usage(format!(
            "size {text:?}: a size of at least 1 byte, e.g. 64MB"
        ))),
        Some(size) => Ok(size),
    }
}

/// An encoding name as PostgreSQL spells them (`WIN1252`, `LATIN1`, `EUC_JP`): letters,
/// digits, `_` and `-`; the target checks that it knows it.
fn encoding_name(text: &str) -> Result<String> {
    let name = text.trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(Error::usage(format!(
            "--source-encoding: \"{text}\" is not an encoding name (e.g. WIN1252, LATIN1)."
        )));
    }
    Ok(name.to_uppercase())
}

#[cfg(test)]
mod tests {
    use super::{parse_duration, parse_size};

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1gb").unwrap(), 1 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60").unwrap().as_secs(), 60);
        assert_eq!(parse_duration("5s").unwrap().as_secs(), 5);
        assert_eq!(parse_duration("2m").unwrap().as_secs(), 120);
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 fortnights").is_err());
    }
}
