//! The browser's side of the connection to the server's SFU (see `calling_core`'s `sfu`): our
//! camera goes up once, as up to three simulcast encodings the SFU picks from for each receiver, and
//! every other participant's tracks come down on the same connection. The SFU names the
//! stream of each track it forwards after the participant it comes from, so each track joins
//! that participant's own `MediaStream`, which plays and renders exactly as a participant's
//! stream over a connection of its own does.

use std::cell::RefCell;

use wasm_bindgen::JsValue;
use web_sys::{
    MediaStream, MediaStreamTrack, RtcPeerConnection, RtcRtpEncodingParameters,
    RtcRtpTransceiverDirection, RtcRtpTransceiverInit,
};

use crate::error::Error;
use crate::table::Table;

/// One simulcast encoding of our camera: its RID, how much smaller than the camera, and its
/// bitrate cap in bit/s. The SFU forwards the one that fits each receiver.
type Layer = (&'static str, f32, u32);

/// The encodings for a camera of `width` × `height`. Chromium sends no more simulcast layers
/// than the frame size allows (three from 960×540, two from 480×270, else one) and drops the
/// largest ones beyond that, so asking for more would lose the full-size one: the list is
/// made to fit, and always ends at full size.
fn layers((width, height): (u32, u32)) -> &'static [Layer] {
    const THREE: &[Layer] = &[
        ("l", 4.0, 150_000),
        ("m", 2.0, 500_000),
        ("h", 1.0, 1_500_000),
    ];
    const TWO: &[Layer] = &[("l", 2.0, 250_000), ("h", 1.0, 1_000_000)];
    const ONE: &[Layer] = &[("h", 1.0, 600_000)];
    match width * height {
        px if px >= 960 * 540 => THREE,
        px if px >= 480 * 270 => TWO,
        _ => ONE,
    }
}

/// Adds our two senders: audio, and video as the [`layers`] of a camera of `frame` size.
/// Nothing is received on them; the SFU adds a receiving transceiver for each track it
/// forwards.
pub fn add_senders(pc: &RtcPeerConnection, frame: (u32, u32)) {
    let audio = RtcRtpTransceiverInit::new();
    audio.set_direction(RtcRtpTransceiverDirection::Sendonly);
    pc.add_transceiver_with_str_and_init("audio", &audio);

    let video = RtcRtpTransceiverInit::new();
    video.set_direction(RtcRtpTransceiverDirection::Sendonly);
    let layers = layers(frame);
    let encodings: js_sys::Array = layers
        .iter()
        .map(|(rid, scale, bitrate)| {
            let encoding = RtcRtpEncodingParameters::new();
            // One encoding is no simulcast: it needs no name.
            if layers.len() > 1 {
                encoding.set_rid(rid);
            }
            encoding.set_scale_resolution_down_by(*scale);
            encoding.set_max_bitrate(*bitrate);
            JsValue::from(encoding)
        })
        .collect();
    video.set_send_encodings(&encodings);
    pc.add_transceiver_with_str_and_init("video", &video);
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::*;

    #[wasm_bindgen_test]
    fn the_layers_fit_the_camera_and_end_at_full_size() {
        for (frame, count) in [
            ((1920, 1080), 3),
            ((1280, 720), 3),
            ((640, 480), 2),
            ((640, 360), 2),
            ((320, 240), 1),
        ] {
            let layers = layers(frame);
            assert_eq!(layers.len(), count, "{frame:?}");
            assert_eq!(layers.last().map(|l| l.1), Some(1.0), "{frame:?}");
        }
    }
}

/// One participant's media on the SFU connection.
struct Remote {
    stream: MediaStream,
    /// Its first track unmuted and the app was told (`USER_ENTER`).
    arrived: bool,
}

/// Every participant's media on the SFU connection, by user ID (= stream ID).
#[derive(Default)]
pub struct Remotes {
    by_user: RefCell<Table<String, Remote>>,
}

impl Remotes {
    /// A track the SFU forwards from `user` joins that user's stream.
    pub fn add(&self, user: &str, track: &MediaStreamTrack) -> Result<(), Error> {
        let mut by_user = self.by_user.borrow_mut();
        match by_user.get(user) {
            Some(remote) => remote.stream.add_track(track),
            None => {
                let stream = MediaStream::new()?;
                stream.add_track(track);
                by_user.insert(
                    user.to_owned(),
                    Remote {
                        stream,
                        arrived: false,
                    },
                );
            }
        }
        Ok(())
    }

    /// The participants whose media this connection carries.
    pub fn users(&self) -> Vec<String> {
        self.by_user
            .borrow()
            .iter()
            .map(|(user, _)| user.clone())
            .collect()
    }

    /// `user`'s media arrived: its stream, the first time only.
    pub fn arrive(&self, user: &str) -> Option<MediaStream> {
        let mut by_user = self.by_user.borrow_mut();
        let remote = by_user.get_mut(user)?;
        (!std::mem::replace(&mut remote.arrived, true)).then(|| remote.stream.clone())
    }

    /// `user`'s stream, once its media arrived.
    pub fn stream(&self, user: &str) -> Option<MediaStream> {
        let by_user = self.by_user.borrow();
        by_user
            .get(user)
            .filter(|r| r.arrived)
            .map(|r| r.stream.clone())
    }

    /// Whose stream a track belongs to (for audio levels, read per track).
    pub fn user_of_track(&self, track_id: &str) -> Option<String> {
        let by_user = self.by_user.borrow();
        let user = by_user
            .iter()
            .find(|(_, r)| r.stream.get_track_by_id(track_id).is_some())
            .map(|(user, _)| user.clone());
        user
    }

    /// `user` left the call: its tracks (the SFU stops them) leave with it, and if it comes
    /// back its new tracks make a new stream, which arrives anew.
    pub fn forget(&self, user: &str) {
        self.by_user.borrow_mut().remove(user);
    }
}
