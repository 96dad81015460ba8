//! The hot path: COPY bytes from the source stream into the target sink.
//!
//! Chunks pass through as `Bytes`, untouched: no row is parsed or copied here. The sink
//! is fed without flushing (tokio-postgres coalesces small chunks into 4 KiB messages and
//! its channel gives back-pressure); flushing per chunk was measured 11x slower than psql.
//! Memory stays bounded: one chunk in hand plus the sink's and connections' fixed buffers.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio_postgres::Client;

use crate::error::{Error, Kind, Result, Side};

/// How often the pump reports progress, at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Streams `COPY … TO STDOUT` on `source` into `COPY … FROM STDIN` on `target`.
/// Returns (rows, bytes). On any error the sink is dropped without `finish()`, which
/// aborts the target's COPY; the caller rolls the transaction back.
pub async fn pump(
    source: &Client,
    target: &Client,
    copy_out: &str,
    copy_in: &str,
    doing: &str,
    mut progress: impl FnMut(u64),
) -> Result<(u64, u64)> {
    let sink = target
        .copy_in::<_, Bytes>(copy_in)
        .await
        .map_err(|e| Error::postgres(Kind::Copy, Side::Target, doing, e))?;
    let stream = source
        .copy_out(copy_out)
        .await
        .map_err(|e| Error::postgres(Kind::Copy, Side::Source, doing, e))?;
    futures_util::pin_mut!(sink);
    futures_util::pin_mut!(stream);

    let mut bytes = 0u64;
    let mut last_report = Instant::now();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::postgres(Kind::Copy, Side::Source, doing, e))?;
        bytes += chunk.len() as u64;
        sink.feed(chunk)
            .await
            .map_err(|e| Error::postgres(Kind::Copy, Side::Target, doing, e))?;
        if last_report.elapsed() >= PROGRESS_EVERY {
            progress(bytes);
            last_report = Instant::now();
        }
    }
    let rows = sink
        .as_mut()
        .finish()
        .await
        .map_err(|e| Error::postgres(Kind::Copy, Side::Target, doing, e))?;
    progress(bytes);
    Ok((rows, bytes))
}
