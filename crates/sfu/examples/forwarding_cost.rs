//! What forwarding costs the SFU: CPU time per forwarded stream.
//!
//! The SFU core and its participants (str0m peers sending synthetic Opus and three simulcast
//! VP8 layers at a camera's rates) run in one thread on a simulated clock, their datagrams
//! passed in memory: no socket, no scheduler, so the time measured inside the core's calls is
//! the core's alone (str0m's ICE, DTLS, SRTP, RTCP, re-packetizing, our routing and layer
//! choice). Prints, per call size, the core's CPU per second of media and per forwarded stream
//! (each receiver's copy of each sender's audio or video), as a share of one core.
//!
//! `cargo run --release -p calling-sfu --example forwarding_cost [-- SIZES SECONDS]`, e.g.
//! `-- 4,6,9 10`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use calling_sfu::{ParticipantId, RoomId, Sfu, SfuOutput};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

/// A camera's frame interval, and Opus's packet interval.
const FRAME: Duration = Duration::from_millis(33);
const AUDIO: Duration = Duration::from_millis(20);
/// The simulated clock's step.
const TICK: Duration = Duration::from_millis(1);
/// Simulcast layers, lowest first, with a frame's bytes: about 150, 500 and 1,500 kbit/s.
const LAYERS: [(&str, usize); 3] = [("l", 600), ("m", 2_000), ("h", 6_000)];
/// Media before measuring: ICE, DTLS and the renegotiations of the joins settle.
const WARM_UP: Duration = Duration::from_secs(3);

struct Peer {
    name: String,
    rtc: Rtc,
    addr: SocketAddr,
    audio: Mid,
    video: Mid,
    /// Media bytes received, to report what the run forwarded.
    received: usize,
}

impl Peer {
    fn new(
        now: Instant,
        name: String,
        addr: SocketAddr,
    ) -> Result<
        (
            Peer,
            str0m::change::SdpOffer,
            str0m::change::SdpPendingOffer,
        ),
        String,
    > {
        let mut rtc = RtcConfig::new()
            .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
            .build(now);
        rtc.add_local_candidate(
            Candidate::host(addr, "udp").map_err(|e| format!("a host candidate: {e:?}"))?,
        );
        let mut change = rtc.sdp_api();
        let audio = change.add_media(
            MediaKind::Audio,
            Direction::SendOnly,
            Some(name.clone()),
            None,
            None,
        );
        let mut layers = Simulcast::new();
        for (rid, _) in LAYERS {
            layers.add_send_layer(SimulcastLayer::new(rid));
        }
        let video = change.add_media(
            MediaKind::Video,
            Direction::SendOnly,
            Some(name.clone()),
            None,
            Some(layers),
        );
        let (offer, pending) = change.apply().ok_or("no offer")?;
        // As browsers describe simulcast: by RID alone (see the SFU's tests).
        let offer =
            str0m::change::SdpOffer::from_sdp_string(&without_ssrc_lines(offer.to_sdp_string()))
                .map_err(|e| format!("the offer parses: {e:?}"))?;
        Ok((
            Peer {
                name,
                rtc,
                addr,
                audio,
                video,
                received: 0,
            },
            offer,
            pending,
        ))
    }

    fn write(
        &mut self,
        now: Instant,
        started: Instant,
        mid: Mid,
        codec: Codec,
        rid: Option<&str>,
        data: Vec<u8>,
    ) {
        if !self.rtc.is_connected() {
            return;
        }
        let Some(writer) = self.rtc.writer(mid) else {
            return;
        };
        let Some(pt) = writer
            .payload_params()
            .find(|p| p.spec().codec == codec)
            .map(|p| p.pt())
        else {
            return;
        };
        let writer = match rid {
            Some(rid) => writer.rid(Rid::from(rid)),
            None => writer,
        };
        let time: MediaTime = now.duration_since(started).into();
        let _ = writer.write(pt, now, time, data);
    }
}

fn without_ssrc_lines(sdp: String) -> String {
    sdp.split_inclusive("\r\n")
        .filter(|l| !l.starts_with("a=ssrc"))
        .collect()
}

/// One call of `size` participants for `seconds` of measured media: the core's CPU time and the
/// media bytes its participants received; what went wrong, if the call could not run.
fn run(size: usize, seconds: u64) -> Result<(Duration, usize), String> {
    let start = Instant::now();
    let mut now = start;
    let sfu_addr: SocketAddr = "10.0.0.1:5000"
        .parse()
        .map_err(|e| format!("an address: {e:?}"))?;
    let mut sfu = Sfu::new(now, vec![sfu_addr]).map_err(|e| format!("an SFU: {e:?}"))?;
    let mut inside = Duration::ZERO;
    let mut peers: Vec<Peer> = Vec::new();
    let mut by_addr: HashMap<SocketAddr, usize> = HashMap::new();
    for i in 0..size {
        let addr: SocketAddr = format!("10.0.1.{}:6000", i + 1)
            .parse()
            .map_err(|e| format!("an address: {e:?}"))?;
        let (mut peer, offer, pending) = Peer::new(now, format!("p{i}"), addr)?;
        let t = Instant::now();
        let answer = sfu
            .join(
                now,
                RoomId("call".into()),
                ParticipantId(peer.name.clone()),
                peer.name.clone(),
                offer,
            )
            .map_err(|e| format!("the SFU answers: {e:?}"))?;
        inside += t.elapsed();
        peer.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| format!("a valid answer: {e:?}"))?;
        by_addr.insert(addr, i);
        peers.push(peer);
    }
    let measure_from = start + WARM_UP;
    let end = measure_from + Duration::from_secs(seconds);
    let (mut next_frame, mut next_audio, mut frame_no) = (start, start, 0u32);
    let mut received_at_measure = 0;
    let mut measuring = false;
    while now < end {
        if !measuring && now >= measure_from {
            measuring = true;
            inside = Duration::ZERO;
            received_at_measure = peers.iter().map(|p| p.received).sum();
        }
        if now >= next_frame {
            next_frame += FRAME;
            frame_no += 1;
            for peer in &mut peers {
                for (rid, bytes) in LAYERS {
                    let mut frame = vec![0x10, 0x02, 0x00, 0x9d];
                    frame.extend_from_slice(&frame_no.to_be_bytes());
                    frame.resize(bytes, 0xab);
                    let video = peer.video;
                    peer.write(now, start, video, Codec::Vp8, Some(rid), frame);
                }
            }
        }
        if now >= next_audio {
            next_audio += AUDIO;
            for peer in &mut peers {
                let audio = peer.audio;
                peer.write(now, start, audio, Codec::Opus, None, vec![0xfc; 80]);
            }
        }
        // Everything the peers send reaches the SFU; everything it sends reaches them.
        let mut to_sfu = Vec::new();
        for peer in &mut peers {
            let _ = peer.rtc.handle_input(Input::Timeout(now));
            while let Ok(output) = peer.rtc.poll_output() {
                match output {
                    Output::Timeout(_) => break,
                    Output::Transmit(t) => {
                        to_sfu.push((peer.addr, t.destination, t.contents.to_vec()))
                    }
                    Output::Event(Event::MediaData(data)) => peer.received += data.data.len(),
                    Output::Event(_) => {}
                }
            }
        }
        let t = Instant::now();
        for (source, destination, contents) in &to_sfu {
            if let Ok(receive) = Receive::new(Protocol::Udp, *source, *destination, contents) {
                sfu.handle_receive(now, receive);
            }
        }
        sfu.handle_timeout(now);
        let mut to_peers = Vec::new();
        let mut offers = Vec::new();
        loop {
            match sfu.poll_output() {
                SfuOutput::Timeout(_) => break,
                SfuOutput::Transmit(t) => to_peers.push((t.destination, t.contents.to_vec())),
                SfuOutput::Offer(id, offer) => offers.push((id, offer)),
                SfuOutput::Gone(id) => return Err(format!("{id} lost its connection")),
            }
        }
        inside += t.elapsed();
        for (destination, contents) in to_peers {
            if let Some(&i) = by_addr.get(&destination) {
                let peer = &mut peers[i];
                if let Ok(receive) = Receive::new(Protocol::Udp, sfu_addr, peer.addr, &contents) {
                    let _ = peer.rtc.handle_input(Input::Receive(now, receive));
                }
            }
        }
        for (id, offer) in offers {
            let peer = peers
                .iter_mut()
                .find(|p| p.name == id.0)
                .ok_or("an offer for an unknown peer")?;
            let answer = peer
                .rtc
                .sdp_api()
                .accept_offer(offer)
                .map_err(|e| format!("a valid offer: {e:?}"))?;
            let answer = str0m::change::SdpAnswer::from_sdp_string(&without_ssrc_lines(
                answer.to_sdp_string(),
            ))
            .map_err(|e| format!("the answer parses: {e:?}"))?;
            let t = Instant::now();
            sfu.accept_answer(&id, answer)
                .map_err(|e| format!("the SFU takes the answer: {e:?}"))?;
            inside += t.elapsed();
        }
        now += TICK;
    }
    let received = peers.iter().map(|p| p.received).sum::<usize>() - received_at_measure;
    Ok((inside, received))
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let sizes: Vec<usize> = args
        .next()
        .map(|s| s.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![4, 6, 9]);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    println!(
        "participants  forwarded streams  forwarded Mbit/s  SFU CPU (% of a core)  per stream"
    );
    for size in sizes {
        let (cpu, received) = run(size, seconds)?;
        // Each receiver gets each other's audio and one video layer.
        let streams = size * (size - 1) * 2;
        let share = 100.0 * cpu.as_secs_f64() / seconds as f64;
        println!(
            "{size:>12}  {streams:>17}  {:>16.1}  {share:>21.2}  {:>9.3}%",
            received as f64 * 8.0 / 1e6 / seconds as f64,
            share / streams as f64,
        );
    }
    Ok(())
}
