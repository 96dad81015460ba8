//! What the commands share: the failure they return, connecting to both sides, running
//! a copy with its progress and signals, and showing its report.

use pgbarge::connect::{connect, Connection};
use pgbarge::preflight::Problem;
use pgbarge::{Error, Kind, Result, Side};

use crate::json;
use crate::render;
use crate::settings::CopySettings;

/// What a failed command leaves for `main`: the error and, for preflight, every problem.
pub struct Failure {
    pub error: Error,
    pub problems: Vec<Problem>,
    /// The command already printed its JSON document (a report listing the failures):
    /// stdout must hold one document, so the error is not printed there again.
    pub reported: bool,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            error,
            problems: Vec::new(),
            reported: false,
        }
    }
}

/// Prints what reading `c` found worth a warning (a `~/.pgpass` others may read, say),
/// and, with `tls`, a network connection that checks no certificate (`copy` shows that
/// in its plan instead).
pub(crate) fn warn_all(c: &pgbarge::conninfo::ConnInfo, side: Side, tls: bool) {
    for w in &c.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(w) = c.tls_warning(&format!("the {side}")).filter(|_| tls) {
        eprintln!("warning: {w}");
    }
}

/// Connects to both sides, refusing one database given as both.
pub(crate) async fn connect_both(
    source: &pgbarge::conninfo::ConnInfo,
    target: &pgbarge::conninfo::ConnInfo,
) -> Result<(Connection, Connection)> {
    connect_pair(source, target, true).await
}

/// [`connect_both`]; `tls`: say here that a connection checks no certificate.
pub(crate) async fn connect_pair(
    source: &pgbarge::conninfo::ConnInfo,
    target: &pgbarge::conninfo::ConnInfo,
    tls: bool,
) -> Result<(Connection, Connection)> {
    warn_all(source, Side::Source, tls);
    warn_all(target, Side::Target, tls);
    let (source, target) =
        tokio::try_join!(connect(source, Side::Source), connect(target, Side::Target))?;
    if source.database_identity == target.database_identity {
        // Loading a table into itself would truncate or duplicate it, and a truncate would
        // wait forever on our own source snapshot.
        return Err(Error::usage(format!(
            "the source and the target are the same database (\"{}\" on the same server); \
             give a --target that points at another database or server.",
            source.database
        )));
    }
    Ok((source, target))
}

/// The error for a verification that found differences (the verdicts are printed).
pub(crate) fn differences(report: &pgbarge::verify::VerifyReport) -> Result<()> {
    if report.all_equal() {
        Ok(())
    } else {
        Err(Error::new(
            Kind::Verify,
            "verification found differences between source and target (see the report).",
        ))
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM (systemd, Kubernetes, `kill`) — also when the
/// signal came before the call. One listener lives from the first call to the end of the
/// process, so a signal between two stages (`copy --follow` going from copying to
/// following) stops the next one instead of being lost with nobody listening.
pub(crate) async fn stop_signal() {
    static STOPPED: std::sync::OnceLock<tokio::sync::watch::Receiver<bool>> =
        std::sync::OnceLock::new();
    let mut stopped = STOPPED
        .get_or_init(|| {
            let (tx, rx) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                received().await;
                let _ = tx.send(true);
                // Keep the sender: a closed channel would end every wait.
                std::future::pending::<()>().await;
            });
            rx
        })
        .clone();
    if stopped.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The next SIGINT or SIGTERM.
async fn received() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Prints the report (and verdicts); a run with failed units, or differences, is an
/// error after the report.
pub(crate) fn show_report(
    settings: &CopySettings,
    report: &pgbarge::report::RunReport,
    verified: Option<&pgbarge::verify::VerifyReport>,
) -> Result<(), Failure> {
    if settings.json {
        // One document: the copy report, with the verdicts under "verify" when asked for.
        json::print(&json::report(report, verified));
    } else {
        out!("{}", render::report(report));
        if let Some(v) = verified {
            out!("{}", render::verify(v));
        }
    }
    if !report.failures.is_empty() {
        return Err(Failure {
            error: Error::new(Kind::Copy, render::failures(report)),
            problems: Vec::new(),
            reported: settings.json,
        });
    }
    if let Some(v) = verified {
        differences(v)?;
    }
    Ok(())
}
