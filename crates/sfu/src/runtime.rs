//! Drives one [`Sfu`] core from one UDP socket (and, optionally, an ICE-TCP listener, see
//! [`crate::tcp`]) on tokio, and hands out [`SfuHandle`]s through
//! which the signalling side (the calling-server, or a test) joins, answers and leaves.
//!
//! Kept thin on purpose: it moves datagrams between the socket and the core, wakes the core at
//! the instant it asks, and delivers the core's renegotiation offers to the participant they are
//! for. Every decision is the core's.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::net::{Protocol, Receive};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::error::SfuError;
use crate::sfu::{ParticipantId, RoomId, Sfu, SfuOutput, DEFAULT_RECONNECT_GRACE};
use crate::tcp::{self, Connections, TcpEvent};
use crate::view::RenderedSize;

/// Offers not yet taken by a participant's signalling before it counts as stuck and is removed.
const SIGNAL_QUEUE: usize = 8;
/// Requests from signalling waiting for the loop.
const COMMAND_QUEUE: usize = 64;
/// Larger than any datagram WebRTC sends (str0m's MTU is at most 1,500 bytes).
const RECEIVE_BUFFER: usize = 2048;

/// What the SFU tells one participant through signalling.
#[derive(Debug)]
pub enum Signal {
    /// Tracks to add or stop: answer with [`SfuHandle::answer`].
    Offer(SdpOffer),
    /// The participant's connection died and it was removed from its room.
    Gone,
}

enum Command {
    Join {
        room: RoomId,
        participant: ParticipantId,
        stream: String,
        offer: SdpOffer,
        reply: oneshot::Sender<Result<(SdpAnswer, mpsc::Receiver<Signal>), SfuError>>,
    },
    Offer {
        participant: ParticipantId,
        offer: SdpOffer,
        reply: oneshot::Sender<Result<SdpAnswer, SfuError>>,
    },
    Answer {
        participant: ParticipantId,
        answer: SdpAnswer,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    Leave {
        participant: ParticipantId,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    Candidate {
        participant: ParticipantId,
        candidate: String,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    Interrupted {
        participant: ParticipantId,
        reply: oneshot::Sender<Result<bool, SfuError>>,
    },
    MaxBitrate {
        participant: ParticipantId,
        max_bps: Option<u64>,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    RenderedSizes {
        participant: ParticipantId,
        views: HashMap<String, RenderedSize>,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
}

/// The signalling side's access to a running SFU. The SFU stops when every handle is dropped.
#[derive(Clone)]
pub struct SfuHandle {
    commands: mpsc::Sender<Command>,
    local_addr: SocketAddr,
    tcp_addr: Option<SocketAddr>,
}

/// Where the SFU listens, and how it treats interrupted connections.
#[derive(Clone, Debug)]
pub struct SfuConfig {
    /// The UDP socket's address. Without [`SfuConfig::announce`] a specific address, since it
    /// is announced to participants as the SFU's host candidate.
    pub udp: SocketAddr,
    /// An ICE-TCP listener's address (specific too, without `announce`), for networks that
    /// block UDP.
    pub tcp: Option<SocketAddr>,
    /// The IP participants reach the SFU at, when it is not the one bound: a cloud VM whose
    /// public IP is its provider's NAT, or a bind to every interface (`0.0.0.0`). The SFU then
    /// announces this IP with its bound ports.
    pub announce: Option<IpAddr>,
    /// See [`Sfu::with_reconnect_grace`].
    pub reconnect_grace: Duration,
    /// See [`Sfu::with_bandwidth_estimation`].
    pub estimate_bandwidth: bool,
}

impl SfuConfig {
    /// UDP at `udp` alone, with the default reconnect grace.
    pub fn new(udp: SocketAddr) -> SfuConfig {
        SfuConfig {
            udp,
            tcp: None,
            announce: None,
            reconnect_grace: DEFAULT_RECONNECT_GRACE,
            estimate_bandwidth: true,
        }
    }
}

/// Binds the SFU's UDP socket at `bind` (a specific address: it is announced to participants
/// as the SFU's host candidate) and starts its loop.
pub async fn spawn(bind: SocketAddr) -> Result<(SfuHandle, JoinHandle<()>), SfuError> {
    start(SfuConfig::new(bind)).await
}

/// Binds what `config` names and starts the SFU's loop.
pub async fn start(config: SfuConfig) -> Result<(SfuHandle, JoinHandle<()>), SfuError> {
    // What participants are told: the announced IP with the bound port, or the bound address.
    let announced = |bound: SocketAddr| match config.announce {
        Some(ip) => SocketAddr::new(ip, bound.port()),
        None => bound,
    };
    let unspecified = |addr: SocketAddr| match config.announce {
        Some(ip) => ip
            .is_unspecified()
            .then_some(SocketAddr::new(ip, addr.port())),
        None => addr.ip().is_unspecified().then_some(addr),
    };
    if let Some(addr) = unspecified(config.udp) {
        return Err(SfuError::UnspecifiedAddress(addr));
    }
    let socket = UdpSocket::bind(config.udp).await?;
    let local_addr = announced(socket.local_addr()?);
    let mut sfu = Sfu::new(Instant::now(), vec![local_addr])?
        .with_reconnect_grace(config.reconnect_grace)
        .with_bandwidth_estimation(config.estimate_bandwidth);
    let mut tcp_addr = None;
    let mut tcp_input = None;
    if let Some(tcp) = config.tcp {
        if let Some(addr) = unspecified(tcp) {
            return Err(SfuError::UnspecifiedAddress(addr));
        }
        let listener = TcpListener::bind(tcp).await?;
        let addr = announced(listener.local_addr()?);
        sfu = sfu.with_tcp(vec![addr])?;
        let (events, received) = tcp::read_queue();
        tokio::spawn(tcp::accept(listener, events));
        tcp_addr = Some(addr);
        tcp_input = Some((addr, received));
    }
    let (commands, inbox) = mpsc::channel(COMMAND_QUEUE);
    let task = tokio::spawn(run(sfu, socket, local_addr, tcp_input, inbox));
    Ok((
        SfuHandle {
            commands,
            local_addr,
            tcp_addr,
        },
        task,
    ))
}

impl SfuHandle {
    /// The SFU's UDP address, as announced to participants.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the SFU's ICE-TCP listener, as announced, if it has one.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// Joins `participant` to `room` with its offer; its tracks reach the others with the
    /// stream id `stream`. Returns the answer, and the channel of what the SFU will tell this
    /// participant later (offers of the others' tracks).
    pub async fn join(
        &self,
        room: RoomId,
        participant: ParticipantId,
        stream: String,
        offer: SdpOffer,
    ) -> Result<(SdpAnswer, mpsc::Receiver<Signal>), SfuError> {
        self.request(|reply| Command::Join {
            room,
            participant,
            stream,
            offer,
            reply,
        })
        .await
    }

    /// A later offer of a participant already in a room.
    pub async fn offer(
        &self,
        participant: ParticipantId,
        offer: SdpOffer,
    ) -> Result<SdpAnswer, SfuError> {
        self.request(|reply| Command::Offer {
            participant,
            offer,
            reply,
        })
        .await
    }

    /// A participant's answer to the SFU's last [`Signal::Offer`].
    pub async fn answer(
        &self,
        participant: ParticipantId,
        answer: SdpAnswer,
    ) -> Result<(), SfuError> {
        self.request(|reply| Command::Answer {
            participant,
            answer,
            reply,
        })
        .await
    }

    /// Removes a participant; once this returns, none of its media is forwarded any more.
    pub async fn leave(&self, participant: ParticipantId) -> Result<(), SfuError> {
        self.request(|reply| Command::Leave { participant, reply })
            .await
    }

    /// See [`Sfu::add_remote_candidate`].
    pub async fn add_candidate(
        &self,
        participant: ParticipantId,
        candidate: String,
    ) -> Result<(), SfuError> {
        self.request(|reply| Command::Candidate {
            participant,
            candidate,
            reply,
        })
        .await
    }

    /// Whether the participant's connection is interrupted, its place kept for an ICE restart.
    pub async fn is_interrupted(&self, participant: ParticipantId) -> Result<bool, SfuError> {
        self.request(|reply| Command::Interrupted { participant, reply })
            .await
    }

    /// See [`Sfu::set_max_bitrate`].
    pub async fn set_max_bitrate(
        &self,
        participant: ParticipantId,
        max_bps: Option<u64>,
    ) -> Result<(), SfuError> {
        self.request(|reply| Command::MaxBitrate {
            participant,
            max_bps,
            reply,
        })
        .await
    }

    /// See [`Sfu::set_rendered_sizes`].
    pub async fn set_rendered_sizes(
        &self,
        participant: ParticipantId,
        views: HashMap<String, RenderedSize>,
    ) -> Result<(), SfuError> {
        self.request(|reply| Command::RenderedSizes {
            participant,
            views,
            reply,
        })
        .await
    }

    async fn request<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, SfuError>>) -> Command,
    ) -> Result<T, SfuError> {
        let (reply, response) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| SfuError::Stopped)?;
        response.await.map_err(|_| SfuError::Stopped)?
    }
}

/// Which participant each signal channel belongs to.
type Signals = std::collections::HashMap<ParticipantId, mpsc::Sender<Signal>>;

/// The ICE-TCP listener's announced address and the packets its connections read.
type TcpInput = (SocketAddr, mpsc::Receiver<TcpEvent>);

/// `local_addr`: the UDP socket's announced address, which str0m knows as its candidate's and
/// must see as every datagram's destination (it discards what reaches an address it does not
/// announce), whatever address the socket is bound to.
async fn run(
    mut sfu: Sfu,
    socket: UdpSocket,
    local_addr: SocketAddr,
    mut tcp_input: Option<TcpInput>,
    mut inbox: mpsc::Receiver<Command>,
) {
    let mut signals = Signals::new();
    let mut connections = Connections::default();
    let mut buf = vec![0; RECEIVE_BUFFER];
    loop {
        let deadline = drain(&mut sfu, &socket, &connections, &mut signals).await;
        tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, source)) => {
                    match Receive::new(Protocol::Udp, source, local_addr, &buf[..n]) {
                        Ok(receive) => {
                            if !sfu.handle_receive(Instant::now(), receive) {
                                // Common: a participant's first STUN can beat its join's reply.
                                debug!(%source, "datagram for no participant");
                            }
                        }
                        Err(e) => debug!(%source, "unparsable datagram: {e}"),
                    }
                }
                // ICMP port unreachable surfaces here on some systems: not fatal to the SFU.
                Err(e) => debug!("receive failed: {e}"),
            },
            Some((tcp_addr, event)) = next_tcp_event(&mut tcp_input) => {
                if let Some((remote, packet)) = connections.apply(event) {
                    match Receive::new(Protocol::Tcp, remote, tcp_addr, &packet) {
                        Ok(receive) => {
                            if !sfu.handle_receive(Instant::now(), receive) {
                                debug!(%remote, "TCP packet for no participant");
                            }
                        }
                        Err(e) => debug!(%remote, "unparsable TCP packet: {e}"),
                    }
                }
            },
            command = inbox.recv() => match command {
                Some(command) => handle_command(&mut sfu, &mut signals, command),
                None => return,
            },
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
        sfu.handle_timeout(Instant::now());
    }
}

fn handle_command(sfu: &mut Sfu, signals: &mut Signals, command: Command) {
    // A requester that gave up waiting drops its receiver; the outcome stands regardless.
    match command {
        Command::Join {
            room,
            participant,
            stream,
            offer,
            reply,
        } => {
            let result = sfu
                .join(Instant::now(), room, participant.clone(), stream, offer)
                .map(|answer| {
                    let (sender, receiver) = mpsc::channel(SIGNAL_QUEUE);
                    signals.insert(participant, sender);
                    (answer, receiver)
                });
            let _ = reply.send(result);
        }
        Command::Offer {
            participant,
            offer,
            reply,
        } => {
            let _ = reply.send(sfu.accept_offer(&participant, offer));
        }
        Command::Answer {
            participant,
            answer,
            reply,
        } => {
            let _ = reply.send(sfu.accept_answer(&participant, answer));
        }
        Command::Leave { participant, reply } => {
            signals.remove(&participant);
            let _ = reply.send(sfu.leave(&participant));
        }
        Command::Candidate {
            participant,
            candidate,
            reply,
        } => {
            let _ = reply.send(sfu.add_remote_candidate(&participant, &candidate));
        }
        Command::Interrupted { participant, reply } => {
            let _ = reply.send(sfu.is_interrupted(&participant));
        }
        Command::MaxBitrate {
            participant,
            max_bps,
            reply,
        } => {
            let _ = reply.send(sfu.set_max_bitrate(&participant, max_bps));
        }
        Command::RenderedSizes {
            participant,
            views,
            reply,
        } => {
            let _ = reply.send(sfu.set_rendered_sizes(&participant, views));
        }
    }
}

/// The next event of the ICE-TCP connections, with the listener's address; never, without a
/// listener (or once it has stopped).
async fn next_tcp_event(tcp_input: &mut Option<TcpInput>) -> Option<(SocketAddr, TcpEvent)> {
    match tcp_input {
        Some((addr, events)) => match events.recv().await {
            Some(event) => Some((*addr, event)),
            None => {
                *tcp_input = None;
                None
            }
        },
        None => std::future::pending().await,
    }
}

/// Carries out everything the core has to do now; returns when it next wants to be woken.
async fn drain(
    sfu: &mut Sfu,
    socket: &UdpSocket,
    connections: &Connections,
    signals: &mut Signals,
) -> Instant {
    loop {
        match sfu.poll_output() {
            SfuOutput::Timeout(at) => return at,
            SfuOutput::Transmit(t) if t.proto == Protocol::Tcp => {
                connections.send(t.destination, t.contents.into());
            }
            SfuOutput::Transmit(t) => {
                // Never waits: one socket carries every participant, and a datagram to one who
                // cannot be reached (its neighbour entry being resolved again after its link
                // went down) is held by the kernel against the socket's buffer; waiting for
                // room there stalled everyone's media for seconds. A datagram that does not fit
                // now is dropped, as the network would drop it, and congestion control answers.
                if let Err(e) = socket.try_send_to(&t.contents, t.destination) {
                    debug!(destination = %t.destination, "datagram not sent: {e}");
                }
            }
            SfuOutput::Offer(participant, offer) => {
                let delivered = signals
                    .get(&participant)
                    .is_some_and(|s| s.try_send(Signal::Offer(offer)).is_ok());
                if !delivered {
                    // Its signalling is gone or stuck: without answers it can receive nothing.
                    warn!(%participant, "offer undeliverable, removing the participant");
                    signals.remove(&participant);
                    let _ = sfu.leave(&participant);
                }
            }
            SfuOutput::Gone(participant) => {
                if let Some(sender) = signals.remove(&participant) {
                    let _ = sender.try_send(Signal::Gone);
                }
            }
        }
    }
}
