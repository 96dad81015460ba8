//! Progress while the copy runs, on stderr: bars in a terminal (one per active table and
//! an overall one, with MB, MB/s and an ETA from the source's size estimates), plain
//! periodic lines otherwise (logs, CI), nothing with `--quiet`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pgbarge::catalog::TableName;
use pgbarge::copy::Event;
use pgbarge::plan::units::Work;
use pgbarge::text::{human_bytes, thousands};

/// How often plain progress lines are written when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub enum Progress {
    Quiet,
    Plain(Mutex<HashMap<TableName, (Instant, Instant)>>),
    Bars {
        multi: MultiProgress,
        overall: ProgressBar,
        /// Per table being loaded: its bar, the bytes counted so far, its estimate.
        tables: Mutex<HashMap<TableName, (ProgressBar, u64, u64)>>,
    },
}

impl Progress {
    pub fn new(work: &Work, quiet: bool) -> Progress {
        if quiet {
            return Progress::Quiet;
        }
        if !std::io::stderr().is_terminal() {
            return Progress::Plain(Mutex::new(HashMap::new()));
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let total: u64 = work
            .tables
            .iter()
            .map(|t| t.estimated_bytes.max(0) as u64)
            .sum();
        let overall = multi.add(ProgressBar::new(total.max(1)));
        overall.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{bar:30}] {decimal_bytes}/~{decimal_total_bytes} {decimal_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        overall.set_prefix(format!("{} tables", work.tables.len()));
        overall.enable_steady_tick(Duration::from_millis(200));
        Progress::Bars {
            multi,
            overall,
            tables: Mutex::new(HashMap::new()),
        }
    }

    pub fn event(&self, event: Event) {
        match self {
            Progress::Quiet => {}
            Progress::Plain(state) => plain(state, event),
            Progress::Bars {
                multi,
                overall,
                tables,
            } => {
                let Ok(mut tables) = tables.lock() else {
                    return;
                };
                match event {
                    Event::TableStarted {
                        table,
                        estimated_bytes,
                    } => {
                        let bar = multi.insert_before(
                            overall,
                            ProgressBar::new(estimated_bytes.max(1) as u64),
                        );
                        bar.set_style(
                            ProgressStyle::with_template(
                                "{spinner} {prefix:40!} {decimal_bytes:>10} {decimal_bytes_per_sec:>12}",
                            )
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        );
                        bar.set_prefix(table.to_string());
                        bar.enable_steady_tick(Duration::from_millis(200));
                        tables.insert(table, (bar, 0, estimated_bytes.max(0) as u64));
                    }
                    Event::Progress { table, bytes } => {
                        if let Some((bar, seen, estimate)) = tables.get_mut(&table) {
                            // Past its estimate, a table makes the whole larger.
                            let over = bytes.saturating_sub((*seen).max(*estimate));
                            overall.inc_length(over);
                            overall.inc(bytes.saturating_sub(*seen));
                            *seen = bytes;
                            bar.set_position(bytes);
                        }
                    }
                    Event::Phase {
                        table: Some(table),
                        what,
                    } => {
                        if let Some((bar, _, _)) = tables.get(&table) {
                            bar.set_prefix(format!("{table}: {what}"));
                        }
                    }
                    Event::TableFinished(r) => {
                        // Its whole share of the bar, even when the estimate was high:
                        // the bar is full when the last table is done.
                        if let Some((bar, seen, estimate)) = tables.remove(&r.table) {
                            overall.inc(estimate.max(r.bytes).saturating_sub(seen));
                            bar.finish_and_clear();
                            multi.remove(&bar);
                        }
                        let _ = multi.println(done_line(&r));
                    }
                    other => {
                        if let Some(line) = notice(&other) {
                            let _ = multi.println(line);
                        }
                    }
                }
            }
        }
    }

    /// Clears the bars before the report is printed.
    pub fn finish(&self) {
        if let Progress::Bars {
            overall, tables, ..
        } = self
        {
            if let Ok(tables) = tables.lock() {
                for (bar, _, _) in tables.values() {
                    bar.finish_and_clear();
                }
            }
            overall.finish_and_clear();
        }
    }
}

fn done_line(r: &pgbarge::report::TableReport) -> String {
    format!(
        "done    {}: {} row{}, {} in {:.2} s",
        r.table,
        thousands(r.rows),
        if r.rows == 1 { "" } else { "s" },
        human_bytes(r.bytes),
        r.seconds
    )
}

fn plain(state: &Mutex<HashMap<TableName, (Instant, Instant)>>, event: Event) {
    let Ok(mut state) = state.lock() else { return };
    match event {
        Event::TableStarted { table, .. } => {
            eprintln!("copying {table} …");
            let now = Instant::now();
            state.insert(table, (now, now));
        }
        Event::Progress { table, bytes } => {
            if let Some((started, last)) = state.get_mut(&table) {
                if last.elapsed() >= PLAIN_EVERY {
                    *last = Instant::now();
                    let secs = started.elapsed().as_secs_f64().max(0.001);
                    eprintln!(
                        "        {table}: {} so far ({}/s)",
                        human_bytes(bytes),
                        human_bytes((bytes as f64 / secs) as u64)
                    );
                }
            }
        }
        Event::TableFinished(r) => {
            state.remove(&r.table);
            eprintln!("{}", done_line(&r));
        }
        other => {
            if let Some(line) = notice(&other) {
                eprintln!("{line}");
            }
        }
    }
}

/// Retries, failures and a renewed snapshot, as one line each (shown even without a
/// terminal: they are what a log reader looks for).
fn notice(event: &Event) -> Option<String> {
    match event {
        Event::Retrying {
            unit,
            attempt,
            retries,
            delay,
            reason,
        } => Some(format!(
            "retry   {unit}: attempt {} of {} in {:.1} s: {reason}",
            attempt + 1,
            retries + 1,
            delay.as_secs_f64()
        )),
        Event::UnitFailed { unit, error } => Some(format!("FAILED  {unit}: {error}")),
        Event::Phase { table, what } => Some(match table {
            Some(t) => format!("        {t}: {what} …"),
            None => format!("now     {what} …"),
        }),
        Event::SnapshotRenewed { reason } => Some(format!(
            "warning: the source connection holding the snapshot was lost ({reason}); the \
             units not yet started read a new snapshot"
        )),
        _ => None,
    }
}

/// Progress while following: in a terminal one line rewritten in place, otherwise a line
/// when the follower catches up or falls behind and every [`FOLLOW_PLAIN_EVERY`];
/// `--json`, one object per event on stdout (JSON lines); nothing with `--quiet` but
/// warnings.
pub struct FollowProgress {
    json: bool,
    quiet: bool,
    terminal: bool,
    last: Mutex<(Instant, bool)>,
}

/// How often a plain line is written while the state stays the same.
const FOLLOW_PLAIN_EVERY: Duration = Duration::from_secs(30);

impl FollowProgress {
    pub fn new(json: bool, quiet: bool) -> Self {
        FollowProgress {
            json,
            quiet,
            terminal: std::io::stderr().is_terminal(),
            last: Mutex::new((Instant::now() - FOLLOW_PLAIN_EVERY, false)),
        }
    }

    pub fn event(&self, event: pgbarge::follow::FollowEvent) {
        use pgbarge::follow::FollowEvent;
        if self.json {
            outln!(
                "{}",
                serde_json::to_string(&event).unwrap_or_else(|_| "{}".into())
            );
            return;
        }
        match event {
            FollowEvent::Warning { message } => {
                self.clear();
                eprintln!("warning: {message}");
            }
            FollowEvent::Schema { table, change } if !self.quiet => {
                self.clear();
                eprintln!("{table}: {change} (as on the source)");
            }
            FollowEvent::Lag(lag) if !self.quiet => {
                let line = format!(
                    "following: {} ({} behind, {:.1} s), {} changes applied, {}/s{}",
                    if lag.caught_up {
                        "caught up"
                    } else {
                        "catching up"
                    },
                    human_bytes(lag.behind_bytes),
                    lag.behind_seconds,
                    thousands(lag.changes),
                    thousands(lag.changes_per_second as u64),
                    lag.slot_wal_bytes
                        .map(|b| format!("; slot holds {} of WAL", human_bytes(b.max(0) as u64)))
                        .unwrap_or_default()
                );
                let Ok(mut last) = self.last.lock() else {
                    return;
                };
                if self.terminal {
                    eprint!("\r\x1b[2K{line}");
                } else if last.1 != lag.caught_up || last.0.elapsed() >= FOLLOW_PLAIN_EVERY {
                    eprintln!("{line}");
                    *last = (Instant::now(), lag.caught_up);
                }
            }
            _ => {}
        }
    }

    /// Ends the line being rewritten, before other output.
    pub fn clear(&self) {
        if self.terminal && !self.json && !self.quiet {
            eprint!("\r\x1b[2K");
        }
    }
}
