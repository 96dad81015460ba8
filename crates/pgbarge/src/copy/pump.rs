//! The hot path: COPY bytes from the source stream into the target sink.
//!
//! No row is parsed: the source's CopyData payloads are gathered, as they are, into
//! 256 KiB blocks (one memcpy; see [`BATCH_BYTES`]) and fed to the sink without flushing
//! — flushing per chunk was measured 11x slower than psql; the sink's channel gives
//! back-pressure. Memory stays bounded: one block per stream plus the connections' fixed
//! buffers, whatever the table's size.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio_postgres::Client;

use crate::error::{Error, Kind, Result, Side};

/// The source sends one CopyData message per row; passed on one by one, each becomes a
/// small message, a channel hand-off and often a write system call on the target side
/// (measured: 40% slower than a psql pipe, most of it in the kernel). Gathering rows into
/// blocks of this size costs one memcpy and makes the target side move large messages.
/// Bounded: at most one block per stream is held.
const BATCH_BYTES: usize = 256 * 1024;

/// How often the pump reports progress, at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Whether the target is still working on a session's statements (see [`watched`]).
pub type Busy<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>>;

/// Awaits `request`, a target request that may take long without a byte moving; every
/// `stall` without an answer it asks `busy()`. `None`: the server is no longer working
/// on it, so the answer will never come.
pub async fn watched<'b, T>(
    request: impl std::future::Future<Output = T>,
    stall: Duration,
    busy: &(dyn Fn() -> Busy<'b> + Sync),
) -> Option<T> {
    futures_util::pin_mut!(request);
    loop {
        tokio::select! {
            biased;
            answer = &mut request => return Some(answer),
            () = tokio::time::sleep(stall) => {
                if !busy().await {
                    return None;
                }
            }
        }
    }
}

/// The COPY statements of one stream and the target statements around it.
pub struct Stream<'a> {
    pub copy_out: &'a str,
    pub copy_in: &'a str,
    /// Sent before the COPY (e.g. `BEGIN; CREATE TABLE …`), pipelined with it.
    pub setup: &'a str,
}

/// Streams `COPY … TO STDOUT` on `source` into `COPY … FROM STDIN` on `target`.
/// Returns (rows, bytes). On any error the sink is dropped without `finish()`, which
/// aborts the target's COPY; the caller rolls the transaction back.
///
/// `finish(bytes)` gives the statements sent right after the data (e.g. `ALTER TABLE …
/// ADD PRIMARY KEY …; INSERT INTO pgbarge.unit …; COMMIT`), pipelined with the end of the
/// COPY; it is called once the source's stream has ended, with the bytes it sent. If the
/// COPY fails the transaction is aborted, so these statements fail too and nothing is
/// committed.
///
/// A stream that moves no byte for `stall` — the source sends nothing, or the target
/// takes nothing — fails as transient: a link that silently died (a NAT dropping the
/// flow, a hung proxy) must not hang the run. After the data, the target may work long
/// in silence (an index build): every `stall` without an answer, `busy()` asks the
/// server, on another connection, whether it is still working on this session's
/// statements; if not (it waits for data that will never come, or the session is gone),
/// the stream fails the same way.
///
/// Over a long link round trips dominate small tables, so the setup, the COPY's own
/// prepare, and the finishing statements are all pipelined on the target connection
/// (tokio-postgres sends requests in the order they are first polled): a table costs
/// about three round trips instead of seven.
#[allow(clippy::too_many_arguments)]
pub async fn pump<'b>(
    source: &Client,
    target: &Client,
    stream: &Stream<'_>,
    finish: impl FnOnce(u64) -> String,
    doing: &str,
    stall: Duration,
    busy: &(dyn Fn() -> Busy<'b> + Sync),
    mut progress: impl FnMut(u64),
) -> Result<(u64, u64)> {
    let target_err = |e| Error::postgres(Kind::Copy, Side::Target, doing, e);
    let stalled = |side: Side| {
        Error::new(
            Kind::Copy,
            format!(
                "{side} server: {doing} failed: no data moved for {} s (--stall-timeout): the \
                 connection looks dead",
                stall.as_secs()
            ),
        )
        .on(side)
        .transient(true)
    };
    // The watchdog: the stream counts what it moves; a window of `stall` in which the
    // count did not change ends the stream. No timer per row (rows arrive by the
    // million), one per window.
    let moved = AtomicU64::new(0);
    let waiting_on = AtomicBool::new(false); // true: the target; false: the source
    let watchdog = async {
        let mut last = u64::MAX;
        loop {
            tokio::time::sleep(stall).await;
            let now = moved.load(Ordering::Relaxed);
            if now == last {
                return;
            }
            last = now;
        }
    };
    let stream_rows = async {
        let setup = async {
            if stream.setup.is_empty() {
                Ok(())
            } else {
                target.batch_execute(stream.setup).await
            }
        };
        waiting_on.store(true, Ordering::Relaxed);
        let (setup, sink) = tokio::join!(setup, target.copy_in::<_, Bytes>(stream.copy_in));
        setup.map_err(target_err)?;
        let sink = sink.map_err(target_err)?;
        moved.fetch_add(1, Ordering::Relaxed);
        waiting_on.store(false, Ordering::Relaxed);
        let rows_out = source
            .copy_out(stream.copy_out)
            .await
            .map_err(|e| Error::postgres(Kind::Copy, Side::Source, doing, e))?;
        let mut sink = Box::pin(sink);
        futures_util::pin_mut!(rows_out);

        let mut bytes = 0u64;
        let mut last_report = Instant::now();
        let mut batch = BytesMut::with_capacity(BATCH_BYTES);
        while let Some(chunk) = rows_out.next().await {
            let chunk = chunk.map_err(|e| Error::postgres(Kind::Copy, Side::Source, doing, e))?;
            moved.fetch_add(1, Ordering::Relaxed);
            bytes += chunk.len() as u64;
            batch.extend_from_slice(&chunk);
            if batch.len() >= BATCH_BYTES {
                waiting_on.store(true, Ordering::Relaxed);
                sink.feed(batch.split().freeze())
                    .await
                    .map_err(target_err)?;
                waiting_on.store(false, Ordering::Relaxed);
                batch.reserve(BATCH_BYTES);
                if last_report.elapsed() >= PROGRESS_EVERY {
                    progress(bytes);
                    last_report = Instant::now();
                }
            }
        }
        if !batch.is_empty() {
            waiting_on.store(true, Ordering::Relaxed);
            sink.feed(batch.freeze()).await.map_err(target_err)?;
        }
        Ok::<_, Error>((sink, bytes))
    };
    let (mut sink, bytes) = tokio::select! {
        biased;
        streamed = stream_rows => streamed?,
        () = watchdog => {
            let side = if waiting_on.load(Ordering::Relaxed) { Side::Target } else { Side::Source };
            return Err(stalled(side));
        }
    };
    let finish_sql = finish(bytes);
    let finish = async {
        if finish_sql.is_empty() {
            Ok(())
        } else {
            target.batch_execute(&finish_sql).await
        }
    };
    let ended = async { tokio::join!(sink.as_mut().finish(), finish) };
    let (rows, finished) = watched(ended, stall, busy)
        .await
        .ok_or_else(|| stalled(Side::Target))?;
    // The COPY's own error explains a failed finish, so it goes first.
    let rows = rows.map_err(target_err)?;
    finished.map_err(target_err)?;
    progress(bytes);
    Ok((rows, bytes))
}
