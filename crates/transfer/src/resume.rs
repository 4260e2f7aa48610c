//! Drive calls that survive transient failures inside one attempt: rate-limited, retried with short backoff,
//! and downloads that resume with a `Range` request from the last byte received instead of starting over.

use bytes::Bytes;
use ferry_core::ConnectionId;
use ferry_drive::DriveError;
use futures::stream::{self, BoxStream, StreamExt};

use crate::limits::call_retry_delay;
use crate::worker::TransferContext;

/// Repeats of one Drive call (or of a cut download) inside an attempt before the attempt gives up and the item
/// goes to a delayed-retry tier.
pub(crate) const CALL_RETRIES: u32 = 3;

/// Runs `call` under the connection's rate limit, repeating it on retryable Drive errors (429, the 403
/// rate-limit reasons, 5xx, transport) up to [`CALL_RETRIES`] times with backoff and jitter.
pub(crate) async fn paced<T, F, Fut>(
    ctx: &TransferContext,
    connection_id: ConnectionId,
    call: F,
) -> Result<T, DriveError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, DriveError>>,
{
    let mut retry = 0;
    loop {
        ctx.pacer.acquire(connection_id).await;
        let result = call().await;
        ctx.progress.touch();
        if let Err(DriveError::RateLimited { retry_after, .. }) = &result {
            ctx.pacer.refused(connection_id, *retry_after).await;
        }
        match result {
            Err(err) if err.is_retryable() && retry < CALL_RETRIES => {
                let delay = call_retry_delay(retry);
                tracing::debug!(error = %err, retry, ?delay, "retryable Drive error; backing off");
                metrics::counter!("ferry_drive_call_retries_total", "code" => err.code()).increment(1);
                tokio::time::sleep(delay).await;
                retry += 1;
            }
            other => return other,
        }
    }
}

/// A download of `file_id` as one stream of bytes: when the connection is cut or Drive fails mid-way, it asks
/// for the rest with `Range: bytes={received}-` (up to [`CALL_RETRIES`] times) and carries on, so the consumer
/// sees each byte exactly once.
pub(crate) fn resuming_download(
    ctx: TransferContext,
    connection_id: ConnectionId,
    token: String,
    file_id: String,
    first: BoxStream<'static, Result<Bytes, DriveError>>,
) -> BoxStream<'static, Result<Bytes, DriveError>> {
    struct State {
        ctx: TransferContext,
        connection_id: ConnectionId,
        token: String,
        file_id: String,
        current: Option<BoxStream<'static, Result<Bytes, DriveError>>>,
        received: u64,
        resumes: u32,
    }
    let state = State { ctx, connection_id, token, file_id, current: Some(first), received: 0, resumes: 0 };
    stream::unfold(state, |mut state| async move {
        loop {
            let current = state.current.as_mut()?;
            match current.next().await {
                None => return None,
                Some(Ok(bytes)) => {
                    state.ctx.progress.touch();
                    state.received += bytes.len() as u64;
                    return Some((Ok(bytes), state));
                }
                Some(Err(err)) if err.is_retryable() && state.resumes < CALL_RETRIES => {
                    let delay = call_retry_delay(state.resumes);
                    state.resumes += 1;
                    tracing::info!(error = %err, received = state.received, ?delay, "download interrupted; resuming with Range");
                    metrics::counter!("ferry_import_download_resumes_total").increment(1);
                    tokio::time::sleep(delay).await;
                    let (ctx, token, file_id, offset) = (&state.ctx, &state.token, &state.file_id, state.received);
                    match paced(ctx, state.connection_id, || ctx.drive.download(token, file_id, offset)).await {
                        Ok(download) => state.current = Some(download.stream),
                        Err(err) => {
                            state.current = None;
                            return Some((Err(err), state));
                        }
                    }
                }
                Some(Err(err)) => {
                    state.current = None;
                    return Some((Err(err), state));
                }
            }
        }
    })
    .boxed()
}
