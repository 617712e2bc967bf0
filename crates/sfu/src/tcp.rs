//! ICE-TCP (RFC 6544) for the runtime: the SFU's passive TCP candidate, for participants whose
//! network blocks UDP.
//!
//! str0m speaks ICE over TCP (its `Receive` and `Transmit` carry `Protocol::Tcp`) but owns no
//! sockets, so this module does the transport: it accepts connections, splits each byte stream
//! into the frames of RFC 4571 (a 2-byte big-endian length, then a STUN, DTLS or RTP packet) for
//! the loop, and writes the loop's packets back framed. A connection is named by its remote
//! address, which is what str0m names as a `Transmit`'s destination.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::debug;

/// Connections held at once: each costs two tasks and two buffers, so a client opening many
/// cannot exhaust the process. Further connections are closed on accept.
const MAX_CONNECTIONS: usize = 1024;
/// A connection that sends nothing this long after it opens is closed: ICE sends a check at
/// once, so only a stray or hostile client stays silent.
const FIRST_FRAME_WITHIN: Duration = Duration::from_secs(10);
/// Packets waiting to be written to one connection; beyond it they are dropped, as a full UDP
/// socket buffer would drop them (media is loss-tolerant, and ICE and DTLS retransmit).
const WRITE_QUEUE: usize = 256;
/// Packets read from all connections waiting for the loop: a full queue stops the readers,
/// which pushes back on their senders through TCP itself.
const READ_QUEUE: usize = 1024;

/// What the connections tell the loop.
pub(crate) enum TcpEvent {
    /// A connection opened: packets for `remote` go to `writer`.
    Opened {
        remote: SocketAddr,
        writer: mpsc::Sender<Vec<u8>>,
    },
    /// One framed packet from `remote`.
    Packet { remote: SocketAddr, packet: Vec<u8> },
    /// The connection from `remote` ended.
    Closed { remote: SocketAddr },
}

/// The open connections' writers, as the loop keeps them.
#[derive(Default)]
pub(crate) struct Connections {
    writers: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
}

impl Connections {
    /// Keeps the connection registry up to date; returns the packet an event carries, if any.
    pub(crate) fn apply(&mut self, event: TcpEvent) -> Option<(SocketAddr, Vec<u8>)> {
        match event {
            TcpEvent::Opened { remote, writer } => {
                self.writers.insert(remote, writer);
                None
            }
            TcpEvent::Packet { remote, packet } => Some((remote, packet)),
            TcpEvent::Closed { remote } => {
                self.writers.remove(&remote);
                None
            }
        }
    }

    /// Queues `packet` for the connection from `remote`; a packet for a connection that is
    /// gone (str0m checking a candidate nobody connected from) or full is dropped.
    pub(crate) fn send(&self, remote: SocketAddr, packet: Vec<u8>) {
        match self.writers.get(&remote) {
            Some(writer) => {
                if writer.try_send(packet).is_err() {
                    debug!(%remote, "TCP write queue full or closed, packet dropped");
                }
            }
            None => debug!(%remote, "no TCP connection for this destination"),
        }
    }
}

/// Accepts connections on `listener` until the loop stops listening to `events`.
pub(crate) async fn accept(listener: TcpListener, events: mpsc::Sender<TcpEvent>) {
    let open = std::sync::Arc::new(());
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: transient, the listener stays.
                debug!("TCP accept failed: {e}");
                tokio::task::yield_now().await;
                continue;
            }
        };
        if events.is_closed() {
            return;
        }
        // Each connection's tasks hold a clone: the count of clones is the count of
        // connections.
        if std::sync::Arc::strong_count(&open) > MAX_CONNECTIONS {
            debug!(%remote, "too many TCP connections, closing this one");
            continue;
        }
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve(stream, remote, events.clone(), open.clone()));
    }
}

/// One connection: registers its writer with the loop, reads frames until the end, unregisters.
async fn serve(
    stream: TcpStream,
    remote: SocketAddr,
    events: mpsc::Sender<TcpEvent>,
    _open: std::sync::Arc<()>,
) {
    let (reader, writer) = stream.into_split();
    let (queue, outgoing) = mpsc::channel(WRITE_QUEUE);
    let opened = TcpEvent::Opened {
        remote,
        writer: queue,
    };
    if events.send(opened).await.is_err() {
        return;
    }
    let writing = tokio::spawn(write_frames(writer, outgoing));
    if let Err(e) = read_frames(reader, remote, &events).await {
        debug!(%remote, "TCP connection ended: {e}");
    }
    writing.abort();
    let _ = events.send(TcpEvent::Closed { remote }).await;
}

async fn read_frames(
    reader: OwnedReadHalf,
    remote: SocketAddr,
    events: &mpsc::Sender<TcpEvent>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(reader);
    let mut first = true;
    loop {
        let length = if first {
            first = false;
            tokio::time::timeout(FIRST_FRAME_WITHIN, reader.read_u16())
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "silent"))??
        } else {
            reader.read_u16().await?
        };
        let mut packet = vec![0; usize::from(length)];
        reader.read_exact(&mut packet).await?;
        if events
            .send(TcpEvent::Packet { remote, packet })
            .await
            .is_err()
        {
            return Ok(());
        }
    }
}

async fn write_frames(writer: OwnedWriteHalf, mut outgoing: mpsc::Receiver<Vec<u8>>) {
    let mut writer = BufWriter::new(writer);
    while let Some(packet) = outgoing.recv().await {
        if write_frame(&mut writer, &packet).await.is_err() {
            return;
        }
        // Write what is queued together, then flush once.
        while let Ok(packet) = outgoing.try_recv() {
            if write_frame(&mut writer, &packet).await.is_err() {
                return;
            }
        }
        if writer.flush().await.is_err() {
            return;
        }
    }
}

async fn write_frame(writer: &mut BufWriter<OwnedWriteHalf>, packet: &[u8]) -> std::io::Result<()> {
    // str0m's packets are at most an MTU; anything larger cannot be framed and is dropped.
    let Ok(length) = u16::try_from(packet.len()) else {
        return Ok(());
    };
    writer.write_u16(length).await?;
    writer.write_all(packet).await
}

/// The size of the queue the loop reads connections' packets from.
pub(crate) fn read_queue() -> (mpsc::Sender<TcpEvent>, mpsc::Receiver<TcpEvent>) {
    mpsc::channel(READ_QUEUE)
}
