//! A test participant: a str0m peer on its own 127.0.0.1 socket that sends one synthetic Opus
//! audio track and one synthetic VP8 video track (optionally as three simulcast layers) to the
//! SFU, and reports, through one channel shared by all peers of a test, every frame it receives:
//! from whom (the stream id the SFU gives each forwarded track), audio or video, and for video
//! the simulcast layer the sender made it for (a tag in the frame).
//!
//! How the peer reaches the SFU's signalling is a [`Signalling`]: [`Direct`] calls an
//! [`SfuHandle`] (the SFU crate's own tests); the calling-server's tests include this file and
//! carry the same offers and answers over the server's WebSocket instead.

#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use calling_sfu::runtime::{SfuHandle, Signal};
use calling_sfu::{ParticipantId, RoomId};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// 30 frames a second, like a camera.
const FRAME_INTERVAL: Duration = Duration::from_millis(33);
/// 20 ms of audio per packet, like Opus in browsers.
const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
/// The simulcast layers of a simulcast sender, lowest first (as the SDK will list them).
pub const LAYERS: [&str; 3] = ["l", "m", "h"];
/// The layer tag of a video frame sent without simulcast.
pub const NO_LAYER: u8 = b'-';
/// Where a video frame carries its layer tag: after its VP8 key frame header.
const LAYER_TAG: usize = 14;

/// What a peer observed.
#[derive(Debug)]
pub enum Seen {
    /// `receiver` got a whole frame of `origin`'s track of this kind at media time `time`; for
    /// video, `layer` is the tag of the simulcast layer it was sent on (its RID's letter, or
    /// [`NO_LAYER`]).
    Frame {
        receiver: String,
        origin: String,
        kind: MediaKind,
        layer: u8,
        time: MediaTime,
    },
    /// The SFU stopped the m-line forwarding `origin`'s track to `receiver`.
    TrackEnded { receiver: String, origin: String },
    /// The SFU asked `sender` for a key frame.
    KeyframeRequested { sender: String },
    /// The SFU told `name` it was removed (its connection died).
    Gone { name: String },
}

/// A change of the peer's network, as a phone walking out of Wi-Fi sees it.
enum Network {
    /// Every packet in or out is lost from now on.
    Lost,
    /// A new address: a fresh UDP socket, announced by an ICE restart.
    Changed,
}

/// The peer's side of the SFU's signalling.
pub trait Signalling: Send + 'static {
    /// Sends the peer's offer, its first (which joins) or a later one (an ICE restart); the
    /// SFU's answer.
    fn join(&mut self, offer: SdpOffer) -> impl Future<Output = Result<SdpAnswer, String>> + Send;
    /// The SFU's next renegotiation offer; `None` once none will come any more.
    fn offer(&mut self) -> impl Future<Output = Option<SdpOffer>> + Send;
    /// The peer's answer to the SFU's last offer.
    fn answer(&mut self, answer: SdpAnswer) -> impl Future<Output = Result<(), String>> + Send;
    /// Once [`Signalling::offer`] gave `None`: whether the SFU said it removed the peer.
    fn gone(&self) -> bool {
        false
    }
}

/// Signalling by direct calls on the SFU's handle, as participant `name` of `room`.
pub struct Direct {
    sfu: SfuHandle,
    room: RoomId,
    id: ParticipantId,
    signals: Option<mpsc::Receiver<Signal>>,
    gone: bool,
}

impl Direct {
    pub fn new(sfu: SfuHandle, room: &str, name: &str) -> Direct {
        Direct {
            sfu,
            room: RoomId(room.to_string()),
            id: ParticipantId(name.to_string()),
            signals: None,
            gone: false,
        }
    }
}

impl Signalling for Direct {
    async fn join(&mut self, offer: SdpOffer) -> Result<SdpAnswer, String> {
        if self.signals.is_some() {
            return self
                .sfu
                .offer(self.id.clone(), offer)
                .await
                .map_err(|e| e.to_string());
        }
        let stream = self.id.0.clone();
        let (answer, signals) = self
            .sfu
            .join(self.room.clone(), self.id.clone(), stream, offer)
            .await
            .map_err(|e| e.to_string())?;
        self.signals = Some(signals);
        Ok(answer)
    }

    async fn offer(&mut self) -> Option<SdpOffer> {
        // After a leave the SFU drops our signal channel.
        match self.signals.as_mut()?.recv().await {
            Some(Signal::Offer(offer)) => Some(offer),
            Some(Signal::Gone) => {
                self.gone = true;
                None
            }
            None => None,
        }
    }

    async fn answer(&mut self, answer: SdpAnswer) -> Result<(), String> {
        self.sfu
            .answer(self.id.clone(), answer)
            .await
            .map_err(|e| e.to_string())
    }

    fn gone(&self) -> bool {
        self.gone
    }
}

pub struct Peer {
    network: mpsc::UnboundedSender<Network>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), String>>,
}

impl Peer {
    /// Joins `room` as `name` through the SFU's handle and starts sending audio and video (on
    /// the three [`LAYERS`] if `simulcast`).
    pub async fn join(
        sfu: SfuHandle,
        room: &str,
        name: &str,
        simulcast: bool,
        seen: mpsc::UnboundedSender<Seen>,
    ) -> Peer {
        let direct = Direct::new(sfu, room, name);
        Peer::start(direct, name, simulcast, seen).await
    }

    /// Joins the SFU through `signalling` as `name` (the stream id of its tracks) and starts
    /// sending audio and video (on the three [`LAYERS`] if `simulcast`), from its own UDP socket.
    pub async fn start<S: Signalling>(
        signalling: S,
        name: &str,
        simulcast: bool,
        seen: mpsc::UnboundedSender<Seen>,
    ) -> Peer {
        let socket = UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind a peer socket");
        let local = socket.local_addr().expect("peer socket address");
        let candidate = Candidate::host(local, "udp").expect("host candidate");
        let transport = Transport::Udp(socket);
        Peer::start_on(
            signalling, name, simulcast, seen, transport, local, candidate,
        )
        .await
    }

    /// As [`Peer::join`] without simulcast, over ICE-TCP alone (as a browser whose network
    /// blocks UDP): its only candidate is an active TCP one, its connection goes to the SFU's
    /// TCP listener.
    pub async fn join_over_tcp(
        sfu: SfuHandle,
        room: &str,
        name: &str,
        seen: mpsc::UnboundedSender<Seen>,
    ) -> Peer {
        let listener = sfu.tcp_addr().expect("the SFU listens for ICE-TCP");
        let stream = TcpStream::connect(listener)
            .await
            .expect("connect to the SFU's TCP listener");
        let local = stream.local_addr().expect("peer connection address");
        let candidate = Candidate::builder()
            .tcp()
            .host(local)
            .tcptype(TcpType::Active)
            .build()
            .expect("an active TCP candidate");
        let (reader, writer) = stream.into_split();
        let (frames_in, frames) = mpsc::channel(256);
        tokio::spawn(read_frames(reader, frames_in));
        let transport = Transport::Tcp {
            sfu: listener,
            writer,
            frames,
        };
        let direct = Direct::new(sfu, room, name);
        Peer::start_on(direct, name, false, seen, transport, local, candidate).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn start_on<S: Signalling>(
        mut signalling: S,
        name: &str,
        simulcast: bool,
        seen: mpsc::UnboundedSender<Seen>,
        transport: Transport,
        local: SocketAddr,
        candidate: Candidate,
    ) -> Peer {
        let mut rtc = RtcConfig::new()
            .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
            .build(Instant::now());
        rtc.add_local_candidate(candidate);
        let mut change = rtc.sdp_api();
        let audio = change.add_media(
            MediaKind::Audio,
            Direction::SendOnly,
            Some(name.to_string()),
            None,
            None,
        );
        let layers = simulcast.then(|| {
            let mut layers = Simulcast::new();
            for layer in LAYERS {
                layers.add_send_layer(SimulcastLayer::new(layer));
            }
            layers
        });
        let video = change.add_media(
            MediaKind::Video,
            Direction::SendOnly,
            Some(name.to_string()),
            None,
            layers,
        );
        let (offer, pending) = change.apply().expect("an offer with audio and video");
        let offer = if simulcast {
            let sdp = without_ssrc_lines(offer.to_sdp_string());
            SdpOffer::from_sdp_string(&sdp).expect("the offer parses")
        } else {
            offer
        };
        let answer = signalling
            .join(offer)
            .await
            .expect("the SFU accepts the offer");
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .expect("the SFU's answer is valid");
        let (stop, stopped) = oneshot::channel();
        let (network, network_changes) = mpsc::unbounded_channel();
        let running = Running {
            name: name.to_string(),
            rtc,
            transport,
            local,
            audio,
            video,
            simulcast,
            seen,
            incoming: HashMap::new(),
        };
        Peer {
            network,
            stop: Some(stop),
            task: tokio::spawn(running.run(signalling, network_changes, stopped)),
        }
    }

    /// Loses the network: nothing in or out until [`Peer::change_network`].
    pub fn lose_network(&self) {
        let _ = self.network.send(Network::Lost);
    }

    /// Comes back on a new address (a UDP peer only) and restarts ICE through the SFU's
    /// signalling, as an SDK does after a network change.
    pub fn change_network(&self) {
        let _ = self.network.send(Network::Changed);
    }

    /// Stops the peer's loop and reports whether it ran without error.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let outcome = (&mut self.task).await.expect("peer task finished");
        outcome.expect("peer ran without error");
    }
}

struct Running {
    name: String,
    rtc: Rtc,
    transport: Transport,
    local: SocketAddr,
    audio: Mid,
    video: Mid,
    simulcast: bool,
    seen: mpsc::UnboundedSender<Seen>,
    /// Forwarded tracks: our mid → whose track it is.
    incoming: HashMap<Mid, String>,
}

impl Running {
    async fn run<S: Signalling>(
        mut self,
        mut signalling: S,
        mut network: mpsc::UnboundedReceiver<Network>,
        mut stopped: oneshot::Receiver<()>,
    ) -> Result<(), String> {
        let started = Instant::now();
        let mut frames = tokio::time::interval(FRAME_INTERVAL);
        let mut audio = tokio::time::interval(AUDIO_INTERVAL);
        let mut buf = vec![0; 2048];
        let mut frame_no: u32 = 0;
        // Once no offer will come any more (after a leave), the peer goes on sending regardless.
        let mut signalled = true;
        loop {
            let deadline = self.drain().await?;
            tokio::select! {
                _ = &mut stopped => return Ok(()),
                received = self.transport.recv(&mut buf) => {
                    let (proto, source, n) = received?;
                    if let Ok(receive) = Receive::new(proto, source, self.local, &buf[..n]) {
                        self.rtc
                            .handle_input(Input::Receive(Instant::now(), receive))
                            .map_err(|e| e.to_string())?;
                    }
                }
                offer = signalling.offer(), if signalled => match offer {
                    Some(offer) => self.renegotiated(&mut signalling, offer).await?,
                    None => {
                        if signalling.gone() {
                            let _ = self.seen.send(Seen::Gone { name: self.name.clone() });
                        }
                        signalled = false;
                    }
                },
                Some(change) = network.recv() => match change {
                    Network::Lost => self.transport = Transport::Offline,
                    Network::Changed => self.restart_ice(&mut signalling).await?,
                },
                _ = frames.tick() => {
                    self.send_video(started, frame_no)?;
                    frame_no += 1;
                }
                _ = audio.tick() => self.send_audio(started)?,
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
            self.rtc
                .handle_input(Input::Timeout(Instant::now()))
                .map_err(|e| e.to_string())?;
        }
    }

    /// Sends what the peer has to send; returns when it next wants to be woken.
    async fn drain(&mut self) -> Result<Instant, String> {
        loop {
            match self.rtc.poll_output().map_err(|e| e.to_string())? {
                Output::Timeout(at) => return Ok(at),
                Output::Transmit(t) => self.transport.send(&t.contents, t.destination).await,
                Output::Event(event) => self.observe(event),
            }
        }
    }

    fn observe(&mut self, event: Event) {
        match event {
            Event::MediaAdded(added) if added.direction.is_receiving() => {
                if let Some(media) = self.rtc.media(added.mid) {
                    self.incoming
                        .insert(added.mid, media.stream_id().to_string());
                }
            }
            Event::MediaData(data) => {
                let Some(origin) = self.incoming.get(&data.mid) else {
                    return;
                };
                let kind = if data.params.spec().codec == Codec::Opus {
                    MediaKind::Audio
                } else {
                    MediaKind::Video
                };
                let _ = self.seen.send(Seen::Frame {
                    receiver: self.name.clone(),
                    origin: origin.clone(),
                    kind,
                    layer: data.data.get(LAYER_TAG).copied().unwrap_or(0),
                    time: data.time,
                });
            }
            Event::KeyframeRequest(_) => {
                let _ = self.seen.send(Seen::KeyframeRequested {
                    sender: self.name.clone(),
                });
            }
            _ => {}
        }
    }

    /// A fresh socket, announced with new ICE credentials in an offer the SFU answers.
    async fn restart_ice<S: Signalling>(&mut self, signalling: &mut S) -> Result<(), String> {
        let socket = UdpSocket::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        self.local = socket.local_addr().map_err(|e| e.to_string())?;
        self.transport = Transport::Udp(socket);
        let candidate = Candidate::host(self.local, "udp").map_err(|e| e.to_string())?;
        self.rtc.add_local_candidate(candidate);
        let mut change = self.rtc.sdp_api();
        change.ice_restart(true);
        let (offer, pending) = change.apply().ok_or("an ICE restart makes an offer")?;
        let answer = signalling
            .join(offer)
            .await
            .map_err(|e| format!("the SFU refused {}'s ICE restart: {e}", self.name))?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| e.to_string())
    }

    /// The SFU offers tracks to add or stop.
    async fn renegotiated<S: Signalling>(
        &mut self,
        signalling: &mut S,
        offer: SdpOffer,
    ) -> Result<(), String> {
        let answer = self
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| e.to_string())?;
        let answer = if self.simulcast {
            let sdp = without_ssrc_lines(answer.to_sdp_string());
            SdpAnswer::from_sdp_string(&sdp).map_err(|e| e.to_string())?
        } else {
            answer
        };
        signalling.answer(answer).await?;
        let rtc = &self.rtc;
        let ended: Vec<Mid> = self
            .incoming
            .keys()
            .filter(|mid| rtc.media(**mid).is_none_or(|m| m.stopped()))
            .copied()
            .collect();
        for mid in ended {
            if let Some(origin) = self.incoming.remove(&mid) {
                let _ = self.seen.send(Seen::TrackEnded {
                    receiver: self.name.clone(),
                    origin,
                });
            }
        }
        Ok(())
    }

    /// One synthetic VP8 frame per layer, each a key frame's header (so any frame can start a
    /// receiver's decoding) declaring the layer's [`frame_dimensions`], numbered so consecutive
    /// frames differ, tagged with its layer.
    fn send_video(&mut self, started: Instant, frame_no: u32) -> Result<(), String> {
        let layers: Vec<Option<&str>> = if self.simulcast {
            LAYERS.iter().copied().map(Some).collect()
        } else {
            vec![None]
        };
        for layer in layers {
            let (width, height) = frame_dimensions(layer);
            let mut frame = vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a];
            frame.extend_from_slice(&width.to_le_bytes());
            frame.extend_from_slice(&height.to_le_bytes());
            frame.extend_from_slice(&frame_no.to_be_bytes());
            frame.push(layer.map_or(NO_LAYER, |l| l.as_bytes()[0]));
            frame.resize(frame_size(layer), 0xab);
            self.write(self.video, Codec::Vp8, layer.map(Rid::from), started, frame)?;
        }
        Ok(())
    }

    fn send_audio(&mut self, started: Instant) -> Result<(), String> {
        self.write(self.audio, Codec::Opus, None, started, vec![0xfc; 60])
    }

    fn write(
        &mut self,
        mid: Mid,
        codec: Codec,
        rid: Option<Rid>,
        started: Instant,
        data: Vec<u8>,
    ) -> Result<(), String> {
        if !self.rtc.is_connected() {
            return Ok(());
        }
        let Some(writer) = self.rtc.writer(mid) else {
            return Ok(());
        };
        let Some(pt) = writer
            .payload_params()
            .find(|p| p.spec().codec == codec)
            .map(|p| p.pt())
        else {
            return Err(format!("no {codec:?} negotiated"));
        };
        let writer = match rid {
            Some(rid) => writer.rid(rid),
            None => writer,
        };
        let now = Instant::now();
        let time: MediaTime = (now.duration_since(started) + layer_clock(rid)).into();
        writer.write(pt, now, time, data).map_err(|e| e.to_string())
    }
}

/// The bytes of one video frame: of the simulcast layers, about 36, 120 and 290 kbit/s at 30
/// frames a second, as a camera's layers grow with their resolution.
fn frame_size(layer: Option<&str>) -> usize {
    match layer {
        Some("l") => 150,
        Some("m") => 500,
        Some(_) => 1200,
        None => 600,
    }
}

/// The width and height a video frame declares: of the simulcast layers, a 16:9 camera's at
/// quarter, half and full size.
/// Where the clock of a layer's RTP stream starts. Each is far from the others, as a browser's
/// are (it draws every RTP stream's timestamp offset at random): a receiver must never see that.
fn layer_clock(rid: Option<Rid>) -> Duration {
    let rank = rid.and_then(|rid| LAYERS.iter().position(|l| Rid::from(*l) == rid));
    Duration::from_secs(1_000 * rank.map_or(0, |r| r as u64 + 1))
}

pub fn frame_dimensions(layer: Option<&str>) -> (u16, u16) {
    match layer {
        Some("l") => (320, 180),
        Some("m") => (640, 360),
        Some(_) => (1280, 720),
        None => (640, 480),
    }
}

/// Without the `a=ssrc` and `a=ssrc-group` lines, as browsers describe a simulcast sender (its
/// layers named by RID alone). str0m lists each layer's SSRCs too, and a str0m answerer given both
/// (in this peer's offer, or in its answers to the SFU, which repeat its sending m-line) may bind
/// those SSRCs without their RID, and then all layers arrive as one unnamed stream.
fn without_ssrc_lines(sdp: String) -> String {
    sdp.split_inclusive("\r\n")
        .filter(|line| !line.starts_with("a=ssrc"))
        .collect()
}

/// How a peer reaches the SFU: its own UDP socket, or one TCP connection to the SFU's ICE-TCP
/// listener with RFC 4571 framing (a 2-byte length before each packet).
enum Transport {
    Udp(UdpSocket),
    /// The network is lost: nothing arrives, what is sent is lost.
    Offline,
    Tcp {
        sfu: SocketAddr,
        writer: OwnedWriteHalf,
        /// Packets cut from the stream by a reader task, so that receiving is cancel-safe.
        frames: mpsc::Receiver<Vec<u8>>,
    },
}

impl Transport {
    /// The next packet, copied into `buf`: its protocol, its source and its length.
    async fn recv(&mut self, buf: &mut [u8]) -> Result<(Protocol, SocketAddr, usize), String> {
        match self {
            Transport::Udp(socket) => {
                let (n, source) = socket.recv_from(buf).await.map_err(|e| e.to_string())?;
                Ok((Protocol::Udp, source, n))
            }
            Transport::Offline => std::future::pending().await,
            Transport::Tcp { sfu, frames, .. } => {
                let frame = frames
                    .recv()
                    .await
                    .ok_or("the SFU closed the TCP connection")?;
                let n = frame.len().min(buf.len());
                buf[..n].copy_from_slice(&frame[..n]);
                Ok((Protocol::Tcp, *sfu, n))
            }
        }
    }

    async fn send(&mut self, packet: &[u8], destination: SocketAddr) {
        match self {
            Transport::Udp(socket) => {
                let _ = socket.send_to(packet, destination).await;
            }
            Transport::Offline => {}
            // One connection: every packet goes to the SFU, whatever candidate it checks.
            Transport::Tcp { writer, .. } => {
                let Ok(length) = u16::try_from(packet.len()) else {
                    return;
                };
                let mut framed = length.to_be_bytes().to_vec();
                framed.extend_from_slice(packet);
                let _ = writer.write_all(&framed).await;
            }
        }
    }
}

async fn read_frames(mut reader: OwnedReadHalf, frames: mpsc::Sender<Vec<u8>>) {
    while let Ok(length) = reader.read_u16().await {
        let mut frame = vec![0; usize::from(length)];
        if reader.read_exact(&mut frame).await.is_err() || frames.send(frame).await.is_err() {
            return;
        }
    }
}
