//! The accept loop: admits each TCP connection through the hub's [`Gate`](crate::gate::Gate),
//! refuses the rest with a short 503 naming the cap, and serves HTTP/1.1 (with WebSocket
//! upgrades) under a header-read timeout and an idle timeout, so a client that sends half a
//! request, or stops reading, cannot hold a connection (and a file descriptor) for long. With
//! TLS configured the handshake comes first, admitted the same way and bounded by the same
//! header timeout.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_io_timeout::TimeoutStream;
use tower::Service;
use tracing::{debug, warn};

use crate::config::Limits;
use crate::gate::{Permit, Refused};
use crate::hub::Hub;
use crate::metrics::Limit;
use crate::tls::Tls;

/// How long a refused client gets to take its 503 before the socket is closed anyway.
const REFUSAL_WRITE: Duration = Duration::from_secs(1);

/// After an accept error (out of file descriptors, mostly), wait this long before the next
/// accept instead of spinning on the same error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts connections until the listener fails for good.
pub async fn accept_loop(
    listener: TcpListener,
    router: Router,
    hub: Arc<Hub>,
) -> std::io::Result<()> {
    let limits = hub.config.limits.clone();
    let tls = hub.config.tls.clone();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let http = Arc::new(http);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                warn!(%err, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // The server often writes two frames to one client back to back (`inviteSent` then
        // `accepted`); with Nagle's algorithm the second would wait ~40 ms for an ACK.
        if let Err(err) = tcp.set_nodelay(true) {
            debug!(%err, "could not set TCP_NODELAY");
        }
        match hub.gate.admit(peer.ip()) {
            Ok(permit) => {
                tokio::spawn(serve_connection(
                    tcp,
                    tls.clone(),
                    router.clone(),
                    http.clone(),
                    Arc::new(permit),
                    limits.clone(),
                    hub.clone(),
                ));
            }
            Err(refused) => {
                debug!(%peer, %refused, "connection refused");
                hub.metrics.limit_hit(match refused {
                    Refused::TooManyConnections => Limit::Connections,
                    Refused::TooManyPendingLogins => Limit::PendingLogins,
                    Refused::TooManyFromAddress => Limit::PerAddress,
                });
                // Over TLS the 503 would cost a handshake, which is what the cap saves: the
                // connection is just closed.
                if tls.is_none() {
                    tokio::spawn(refuse(tcp, refused));
                }
            }
        }
    }
}

async fn serve_connection(
    tcp: TcpStream,
    tls: Option<Arc<Tls>>,
    router: Router,
    http: Arc<http1::Builder>,
    permit: Arc<Permit>,
    limits: Limits,
    hub: Arc<Hub>,
) {
    // A read or write that makes no progress for `idle` fails the connection. Live WebSockets
    // are never idle that long (clients ping every few seconds; the heartbeat ends silent ones
    // sooner), so this only ends HTTP clients that stopped reading or sending.
    let mut stream = TimeoutStream::new(tcp);
    stream.set_read_timeout(Some(limits.idle_timeout));
    stream.set_write_timeout(Some(limits.idle_timeout));
    let stream = Box::pin(stream);
    let Some(tls) = tls else {
        return serve_http(stream, router, &http, permit, hub).await;
    };
    // The handshake is part of what a client must send in the header time: one that stalls
    // it holds its connection (and its pending-login slot) no longer than one stalling headers.
    match tokio::time::timeout(limits.header_timeout, tls.acceptor().accept(stream)).await {
        Ok(Ok(stream)) => serve_http(stream, router, &http, permit, hub).await,
        Ok(Err(err)) => debug!(%err, "TLS handshake failed"),
        Err(_) => {
            debug!("TLS handshake not done within the header timeout");
            hub.metrics.limit_hit(Limit::HeaderTimeout);
        }
    }
}

/// HTTP/1.1 with upgrades on one connection, plain or TLS.
async fn serve_http<S>(
    stream: S,
    router: Router,
    http: &http1::Builder,
    permit: Arc<Permit>,
    hub: Arc<Hub>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(stream);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let mut request = request.map(Body::new);
        // The WebSocket handler keeps the permit for the session's life.
        request.extensions_mut().insert(permit.clone());
        let mut router = router.clone();
        async move { Ok::<_, Infallible>(router.call(request).await.unwrap_or_else(|e| match e {})) }
    });
    if let Err(err) = http.serve_connection(io, service).with_upgrades().await {
        debug!(%err, "connection ended with an error");
        if let Some(limit) = timeout_of(&err) {
            hub.metrics.limit_hit(limit);
        }
    }
}

/// Which timeout ended a connection, if one did: hyper's header-read timer, or the idle
/// timeout of the stream under it (an I/O error of kind `TimedOut`).
fn timeout_of(err: &hyper::Error) -> Option<Limit> {
    if err.is_timeout() {
        return Some(Limit::HeaderTimeout);
    }
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return Some(Limit::IdleTimeout);
        }
        source = e.source();
    }
    None
}

/// Answers a refused connection with a 503 naming the cap, then closes it.
async fn refuse(mut tcp: TcpStream, refused: Refused) {
    let body = format!("{refused}\n");
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nx-content-type-options: nosniff\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_WRITE, async {
        tcp.write_all(reply.as_bytes()).await?;
        tcp.shutdown().await
    })
    .await;
}
