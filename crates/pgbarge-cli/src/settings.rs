//! Phase two of configuration: raw arguments plus the environment, validated once into an
//! immutable value. Later stages read `Settings`, never flags or environment variables.

use std::io::IsTerminal;

use pgbarge::conninfo::{ConnInfo, Environment};
use pgbarge::plan::LoadMode;
use pgbarge::select::Pattern;
use pgbarge::{Error, Result};

use crate::args::{CopyArgs, ModeArg, TablesArgs};

/// Validated settings for `pgbarge copy`.
#[derive(Debug)]
pub struct CopySettings {
    pub source: ConnInfo,
    pub target: ConnInfo,
    pub patterns: Vec<Pattern>,
    pub mode: Option<LoadMode>,
    pub dry_run: bool,
    pub yes: bool,
    pub json: bool,
    pub quiet: bool,
    pub verbose: bool,
    /// stdin and stderr are terminals: pgbarge may ask questions.
    pub interactive: bool,
}

fn conninfo(value: Option<&str>, flag: &str, var: &str, env: &Environment) -> Result<ConnInfo> {
    let text = value.ok_or_else(|| {
        Error::usage(format!(
            "no {flag} connection given: pass {flag} 'postgres://user@host:5432/db' (or a libpq \
             key=value string), or set {var}."
        ))
    })?;
    ConnInfo::parse(text, env).map_err(|e| Error::usage(format!("{flag}: {}", e.message())))
}

impl CopySettings {
    pub fn from_args(args: CopyArgs) -> Result<Self> {
        let env = Environment::from_process();
        let source = conninfo(
            args.endpoints.source.as_deref(),
            "--source",
            "PGBARGE_SOURCE",
            &env,
        )?;
        let target = conninfo(
            args.endpoints.target.as_deref(),
            "--target",
            "PGBARGE_TARGET",
            &env,
        )?;
        let patterns = args
            .tables
            .iter()
            .map(|t| Pattern::parse(t))
            .collect::<Result<Vec<_>>>()?;
        let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        Ok(CopySettings {
            source,
            target,
            patterns,
            mode: args.mode.map(|m| match m {
                ModeArg::Append => LoadMode::Append,
                ModeArg::Truncate => LoadMode::Truncate,
            }),
            dry_run: args.dry_run,
            yes: args.yes,
            json: args.json,
            quiet: args.quiet,
            verbose: args.verbose,
            interactive,
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
            source: conninfo(args.source.as_deref(), "--source", "PGBARGE_SOURCE", &env)?,
            patterns: args
                .patterns
                .iter()
                .map(|t| Pattern::parse(t))
                .collect::<Result<Vec<_>>>()?,
            json: args.json,
        })
    }
}
