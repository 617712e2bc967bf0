//! How large a receiver renders another participant, and which frame sizes that needs.
//!
//! A receiver's app shows each participant in a video element with `object-fit: cover`: the
//! frame is scaled to cover the element and cropped. A frame at least as wide and as high as the
//! element loses nothing when shown there; a larger one only costs bandwidth and decoding, so
//! the SFU forwards the smallest simulcast layer that fills the view.

/// The size, in device pixels, at which a receiver renders one participant's video. 0×0: not
/// shown at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RenderedSize {
    pub width: u32,
    pub height: u32,
}

impl RenderedSize {
    pub fn new(width: u32, height: u32) -> RenderedSize {
        RenderedSize { width, height }
    }

    /// Not shown: any frame at all is more than it needs. Either side 0 is as hidden as both.
    pub fn is_hidden(self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// Whether a frame of `size` (width, height) covers this view without being scaled up.
    pub fn is_filled_by(self, size: (u32, u32)) -> bool {
        size.0 >= self.width && size.1 >= self.height
    }
}

/// Whether going from view `old` to view `new` lets the receiver use a larger frame (`None`: no
/// size limit): it is wider or taller, shown again after being hidden, or no longer limited.
pub(crate) fn grew(old: Option<RenderedSize>, new: Option<RenderedSize>) -> bool {
    match (old, new) {
        (Some(_), None) => true,
        (None, _) => false,
        (Some(old), Some(new)) => {
            !new.is_hidden()
                && (old.is_hidden() || new.width > old.width || new.height > old.height)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_fills_a_view_when_at_least_as_wide_and_as_high() {
        let tile = RenderedSize::new(640, 360);
        assert!(tile.is_filled_by((640, 360)));
        assert!(tile.is_filled_by((1280, 720)));
        assert!(!tile.is_filled_by((320, 180)));
        // Cropped, not letterboxed: a portrait tile of a landscape camera needs its height.
        let portrait = RenderedSize::new(360, 640);
        assert!(!portrait.is_filled_by((640, 360)));
        assert!(portrait.is_filled_by((1280, 720)));
    }

    #[test]
    fn a_view_grows_when_it_needs_more_of_some_side() {
        let size = |w, h| Some(RenderedSize::new(w, h));
        assert!(grew(size(320, 180), size(640, 360)));
        assert!(grew(size(320, 180), size(320, 400)), "taller only");
        assert!(grew(size(0, 0), size(320, 180)), "shown again");
        assert!(grew(size(320, 180), None), "no longer limited");
        assert!(!grew(size(640, 360), size(320, 180)), "smaller");
        assert!(!grew(size(640, 360), size(640, 360)), "the same");
        assert!(!grew(size(640, 360), size(0, 0)), "hidden");
        assert!(!grew(size(640, 360), size(0, 720)), "hidden, however tall");
        assert!(!grew(None, size(1920, 1080)), "from no limit");
        assert!(!grew(None, None));
    }
}
