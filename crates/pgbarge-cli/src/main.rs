//! The `pgbarge` binary: parse arguments, run one command, turn the outcome into output and
//! an exit code. Everything else lives in the `pgbarge` library.

/// `print!` to stdout, except that a closed pipe (`pgbarge tables --json | head -1`)
/// ends the program quietly with success, as Unix tools do, instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::write_stdout(&format!($($arg)*))
    };
}

/// `println!` with [`out!`]'s handling of a closed pipe.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::write_stdout(&format!("{}\n", format!($($arg)*)))
    };
}

mod args;
mod common;
mod copying;
mod follow;
mod interact;
mod json;
mod picker;
mod planfile;
mod progress;
mod render;
mod run;
mod settings;
mod terminal;

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: following allocates and frees many small buffers
/// per change (decoded values, keys, parameters), and glibc's free-list upkeep was a third
/// of the follower's CPU in a 200,000-change burst.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use pgbarge::Kind;

use crate::args::{Cli, Command};
use crate::common::Failure;

/// Writes `text` to stdout, with no character that would act on a terminal (see
/// [`pgbarge::quote::for_terminal`]); a reader that went away (EPIPE) ends the program with
/// success, anything else that fails to write ends it with exit code 1.
fn write_stdout(text: &str) {
    use std::io::Write;
    let text = pgbarge::quote::for_terminal(text);
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// Documented exit codes (also in `pgbarge --help` and the README).
fn exit_code(kind: Kind) -> u8 {
    match kind {
        Kind::Usage => 2,
        Kind::Preflight => 3,
        Kind::Connect => 4,
        Kind::Copy | Kind::Schema => 5,
        Kind::Interrupted => 130,
        Kind::Catalog => 1,
        Kind::Verify => 6,
    }
}

/// Runs `command` with validated settings, or fails with the validation error.
async fn run_with<S, F>(
    settings: pgbarge::Result<S>,
    command: impl FnOnce(S) -> F,
) -> Result<(), Failure>
where
    F: std::future::Future<Output = Result<(), Failure>>,
{
    command(settings?).await
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = settings::TLS_VERIFY.set(cli.tls_verify);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PGBARGE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    // Phase two of configuration (validated settings) happens inside each arm; a
    // settings error is reported like any other failure.
    let (json, outcome) = runtime.block_on(async {
        match cli.command {
            Command::Copy(args) => (
                args.json.then_some("copy"),
                run_with(settings::CopySettings::from_args(*args), run::copy).await,
            ),
            Command::Verify(args) => (
                args.json.then_some("verify"),
                run_with(settings::VerifySettings::from_args(args), run::verify).await,
            ),
            Command::Tables(args) => (
                args.json.then_some("tables"),
                run_with(settings::TablesSettings::from_args(args), run::tables).await,
            ),
            Command::Follow(args) => (
                args.json.then_some("follow"),
                run_with(settings::FollowSettings::from_args(args), follow::follow).await,
            ),
            Command::Cutover(args) => (
                args.json.then_some("cutover"),
                run_with(settings::CutoverSettings::from_args(args), follow::cutover).await,
            ),
            Command::Status(args) => (
                args.json.then_some("status"),
                run_with(settings::StatusSettings::from_args(args), follow::status).await,
            ),
            Command::Clean(args) => (
                args.json.then_some("clean"),
                run_with(settings::CleanSettings::from_args(args), run::clean).await,
            ),
        }
    });
    // Dropping the runtime closes both connections; a server rolls back whatever was open.
    drop(runtime);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure {
            error,
            problems,
            reported,
        }) => {
            eprintln!("{}", pgbarge::quote::for_terminal(&render::error(&error)));
            // A verification that found differences has printed its report already.
            if let Some(command) = json.filter(|_| !reported && error.kind() != Kind::Verify) {
                json::print(&json::error(command, &error, &problems));
            }
            ExitCode::from(exit_code(error.kind()))
        }
    }
}
