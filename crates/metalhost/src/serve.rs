//! Serving HTTP (the webhook over TLS, the metrics in the clear) with limits, so that nobody who
//! can reach the port can starve the server: a cap on connections (refused past it, never a file
//! descriptor short for the rest of the process), deadlines for the TLS handshake, for a request's
//! headers (a connection that sends nothing is dropped), for a whole request with its body, and a
//! lifetime after which a connection is closed once its request is answered. Buffers, HTTP/2
//! windows and bodies are bounded (the webhook reads only a few bodies at a time), so memory stays
//! flat whatever clients send.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Connections served at once; more are closed as they come. The apiserver, Prometheus and the
/// kubelet's probes need a handful; each connection may hold its buffers (below), so this bounds
/// memory too.
pub const MAX_CONNECTIONS: usize = 64;
/// An HTTP/1 connection's read buffer (request line and headers must fit).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// HTTP/2 streams at once on one connection.
pub const MAX_STREAMS: u32 = 8;
/// HTTP/2 flow-control windows: what a client may send ahead on a stream and on a connection.
pub const STREAM_WINDOW: u32 = 64 * 1024;
/// See [`STREAM_WINDOW`].
pub const CONNECTION_WINDOW: u32 = 256 * 1024;
/// A TLS handshake that takes longer is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// A request's headers must arrive within this (a new connection that sends nothing is dropped).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// A whole request, body included, must be read and answered within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection is closed after this long, once its request in flight is answered (an idle
/// keep-alive connection goes then at the latest).
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);
/// The largest request body read (an AdmissionReview carries the object twice; the apiserver
/// keeps objects under 1.5 MiB).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Requests of one route handled at once (their bodies read); the others wait. Servers put it on
/// the routes that read bodies, never on /healthz.
pub const CONCURRENT_REQUESTS: usize = 8;

/// Serves `router` on `listener` (with TLS when `tls` is given) until the process ends.
pub async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, router: Router) -> std::io::Result<()> {
    serve_until(listener, tls, router, std::future::pending()).await
}

/// As [`serve`], until `stop` completes: then no connection is taken, the requests in flight are
/// answered (for at most [`REQUEST_TIMEOUT`]) and every connection is closed.
pub async fn serve_until(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let router = router.layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (closing, closing_seen) = tokio::sync::watch::channel(false);
    tokio::pin!(stop);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // out of file descriptors, say: wait rather than spin
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let (tls, router, closing) = (tls.clone(), router.clone(), closing_seen.clone());
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => connection(stream, router, false, closing).await,
                Some(acceptor) => {
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        let http2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                        connection(stream, router, http2, closing).await;
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = closing.send(true);
    // each connection gives its slot back once it has closed
    let all = u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(REQUEST_TIMEOUT + HANDSHAKE_TIMEOUT, slots.acquire_many(all)).await;
    Ok(())
}

/// One connection, HTTP/2 when TLS negotiated it, else HTTP/1.1 (whose header deadline then
/// counts from the first byte on: no protocol sniffing that would wait for ever), within the
/// deadlines.
async fn connection<S>(
    stream: S,
    router: Router,
    http2: bool,
    mut closing: tokio::sync::watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let router = router.clone();
        async move {
            let answer = tokio::time::timeout(REQUEST_TIMEOUT, router.oneshot(request.map(Body::new))).await;
            Ok::<Response, Infallible>(match answer {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(_) => StatusCode::REQUEST_TIMEOUT.into_response(),
            })
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(HEADER_TIMEOUT))
        .keep_alive_timeout(HEADER_TIMEOUT)
        .max_concurrent_streams(MAX_STREAMS)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    let builder = if http2 { builder.http2_only() } else { builder.http1_only() };
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        () = tokio::time::sleep(CONNECTION_LIFETIME) => {}
        _ = closing.wait_for(|closing| *closing) => {}
    }
    // the request in flight is answered, then the connection closes
    connection.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, connection).await;
}
