//! What the SFU reads of a VP8 frame: the size a key frame declares (RFC 6386, section 9.1).
//!
//! A simulcast layer's resolution is not in the SDP and changes while a call runs (a browser
//! scales a layer down under CPU or bandwidth pressure), but every change comes with a key
//! frame, whose uncompressed header names the size. So the size of each layer is read from its
//! key frames as they pass.

/// The frame's width and height if it is a VP8 key frame (`frame` is the depacketized
/// bitstream); `None` for an interframe or anything too short or malformed to tell.
pub(crate) fn keyframe_size(frame: &[u8]) -> Option<(u32, u32)> {
    // A 3-byte frame tag whose lowest bit is 0 on a key frame, then a start code, then the
    // width and height, each 14 bits little endian under 2 bits of upscaling the decoder does
    // (not the encoder), so they are left out.
    let header = frame.get(..10)?;
    if header[0] & 0x01 != 0 || header[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let dimension = |lo: u8, hi: u8| u32::from(u16::from_le_bytes([lo, hi]) & 0x3fff);
    let (width, height) = (
        dimension(header[6], header[7]),
        dimension(header[8], header[9]),
    );
    (width > 0 && height > 0).then_some((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first bytes of VP8 key frames: a 640×480 one as libvpx writes it, and a 1280×720
    /// one whose first partition's size (in the frame tag) is arbitrary.
    const KEY_640X480: [u8; 12] = [
        0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01, 0x00, 0x47,
    ];
    const KEY_1280X720: [u8; 10] = [0xb0, 0x9f, 0x01, 0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02];

    #[test]
    fn a_key_frame_declares_its_size() {
        assert_eq!(keyframe_size(&KEY_640X480), Some((640, 480)));
        assert_eq!(keyframe_size(&KEY_1280X720), Some((1280, 720)));
    }

    #[test]
    fn the_upscaling_bits_are_not_part_of_the_size() {
        let mut frame = KEY_640X480;
        // Upscaling 5/4 horizontally, 2 vertically.
        frame[7] |= 0x40;
        frame[9] |= 0xc0;
        assert_eq!(keyframe_size(&frame), Some((640, 480)));
    }

    #[test]
    fn an_interframe_or_a_malformed_frame_declares_none() {
        let mut inter = KEY_640X480;
        inter[0] |= 0x01;
        assert_eq!(keyframe_size(&inter), None, "an interframe");
        let mut no_start_code = KEY_640X480;
        no_start_code[4] = 0x00;
        assert_eq!(keyframe_size(&no_start_code), None, "no start code");
        assert_eq!(keyframe_size(&KEY_640X480[..9]), None, "cut short");
        assert_eq!(keyframe_size(&[]), None);
        let mut zero = KEY_640X480;
        zero[6..8].copy_from_slice(&[0, 0]);
        assert_eq!(keyframe_size(&zero), None, "no width");
    }
}
