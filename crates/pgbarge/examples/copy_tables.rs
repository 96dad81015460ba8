//! Copies tables from one server to another through the library, as a program that
//! embeds pgbarge would: connect, ask for a copy, read the outcome.
//!
//! ```text
//! cargo run --example copy_tables -- SOURCE TARGET public.orders public.customers
//! ```
//!
//! SOURCE and TARGET are libpq connection strings or URLs (PG* variables and
//! `.pgpass` apply, as for `pgbarge`). Nothing is asked: a target table that already
//! holds rows stops the copy with a preflight problem, as `pgbarge copy` does without a
//! terminal.

use std::process::ExitCode;

use pgbarge::connect::connect;
use pgbarge::conninfo::{ConnInfo, Environment};
use pgbarge::session::copy::{self, CopyRequest, Outcome, Quiet};
use pgbarge::Side;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [source, target, tables @ ..] = args.as_slice() else {
        eprintln!("usage: copy_tables SOURCE TARGET TABLE...");
        return ExitCode::from(2);
    };
    match run(source, target, tables).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("copy_tables: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Copies `tables`; `Ok(false)` when the copy ran with failures or was refused.
async fn run(source: &str, target: &str, tables: &[String]) -> pgbarge::Result<bool> {
    let env = Environment::from_process();
    let source = connect(&ConnInfo::parse(source, &env)?, Side::Source).await?;
    let target = connect(&ConnInfo::parse(target, &env)?, Side::Target).await?;
    let patterns: Vec<&str> = tables.iter().map(String::as_str).collect();
    let request = CopyRequest {
        verify: true,
        ..CopyRequest::tables(&patterns)?
    };
    // No stop but the end of the copy: a program would pass its own shutdown signal.
    let outcome = copy::run(&source, &target, request, &Quiet, std::future::pending()).await?;
    match outcome {
        Outcome::Copied(copied) => {
            for table in &copied.report.tables {
                println!("{}: {} rows", table.table, table.rows);
            }
            let equal = copied.verified.as_ref().is_some_and(|v| v.all_equal());
            println!("verified: {}", if equal { "equal" } else { "DIFFERENT" });
            Ok(copied.report.failures.is_empty() && equal)
        }
        Outcome::Refused(problems) => {
            for p in &problems {
                eprintln!("refused: {} ({})", p.message, p.hint);
            }
            Ok(false)
        }
        other => {
            eprintln!("unexpected outcome: {other:?}");
            Ok(false)
        }
    }
}
