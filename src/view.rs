//! The DOM elements the SDK creates: a local `<video>` (muted, playsinline), one `<video>` per
//! remote view, and one hidden `<audio>` per remote user so remote audio plays without a view.
//! Every element carries `data-trtc-calling` and is removed when its call or view ends.
//! Playback the autoplay policy blocks is resumed on the page's next user gesture.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use gloo_events::EventListener;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Document, Element, HtmlAudioElement, HtmlMediaElement, HtmlVideoElement, MediaStream,
    MediaStreamTrack,
};

use calling_core::RenderedView;

use crate::error::{js_name, Error};
use crate::log;
use crate::table::Table;
use crate::task;

const MARK: &str = "data-trtc-calling";

pub struct Views {
    /// Itself, for the playback tasks and gesture listeners it starts.
    me: Weak<Views>,
    /// `startLocalView`'s element id, kept while the camera is off so it renders when it opens.
    local_request: RefCell<Option<String>>,
    local: RefCell<Option<HtmlVideoElement>>,
    /// `startRemoteView` requests by user: rendered once that user's media arrives.
    remote_requests: RefCell<Table<String, String>>,
    remote: RefCell<Table<String, HtmlVideoElement>>,
    audio: RefCell<Table<String, HtmlAudioElement>>,
    /// Elements whose play() the autoplay policy refused, and the gesture listeners retrying them.
    blocked: RefCell<Vec<HtmlMediaElement>>,
    gesture: RefCell<Vec<EventListener>>,
}

impl Views {
    pub fn new() -> Rc<Views> {
        Rc::new_cyclic(|me| Views {
            me: me.clone(),
            local_request: RefCell::default(),
            local: RefCell::default(),
            remote_requests: RefCell::default(),
            remote: RefCell::default(),
            audio: RefCell::default(),
            blocked: RefCell::default(),
            gesture: RefCell::default(),
        })
    }
}

fn document() -> Result<Document, Error> {
    web_sys::window()
        .and_then(|w| w.document())
        .ok_or_else(|| Error::Browser("no document".into()))
}

fn container(dom_id: &str) -> Result<Element, Error> {
    document()?
        .get_element_by_id(dom_id)
        .ok_or_else(|| Error::InvalidParam(format!("no element with id \"{dom_id}\"")))
}

fn video_element(stream: &MediaStream) -> Result<HtmlVideoElement, Error> {
    let video: HtmlVideoElement = document()?
        .create_element("video")?
        .dyn_into()
        .map_err(|_| Error::Browser("cannot create <video>".into()))?;
    video.set_autoplay(true);
    // The hidden <audio> plays remote sound; the local view must never echo the microphone.
    video.set_muted(true);
    video.set_attribute("playsinline", "")?;
    video.set_attribute(MARK, "")?;
    video.set_attribute("style", "width:100%;height:100%;object-fit:cover")?;
    video.set_src_object(Some(stream));
    Ok(video)
}

fn remove(el: &Element) {
    el.remove();
}

impl Views {
    /// `startLocalView`: renders now if `camera` is live, else when it opens.
    pub fn show_local(
        &self,
        dom_id: String,
        camera: Option<MediaStreamTrack>,
    ) -> Result<(), Error> {
        container(&dom_id)?;
        self.local_request.replace(Some(dom_id));
        self.render_local(camera)
    }

    /// Puts the camera into the requested local view (after `startLocalView` or a camera change).
    pub fn render_local(&self, camera: Option<MediaStreamTrack>) -> Result<(), Error> {
        let (Some(dom_id), Some(camera)) = (self.local_request.borrow().clone(), camera) else {
            return Ok(());
        };
        let parent = container(&dom_id)?;
        let stream = MediaStream::new()?;
        stream.add_track(&camera);
        let existing = self.local.borrow().clone();
        let video = match existing {
            Some(v) if v.parent_element().as_ref() == Some(&parent) => {
                v.set_src_object(Some(&stream));
                v
            }
            other => {
                if let Some(old) = other {
                    remove(&old);
                }
                let v = video_element(&stream)?;
                parent.append_child(&v)?;
                v
            }
        };
        self.play(video.clone().unchecked_into());
        self.local.replace(Some(video));
        Ok(())
    }

    /// The camera stopped: remove the element but keep the request for when it reopens.
    pub fn drop_local(&self) {
        if let Some(v) = self.local.take() {
            remove(&v);
        }
    }

    /// `stopLocalView`.
    pub fn hide_local(&self) {
        self.local_request.replace(None);
        self.drop_local();
    }

    /// `startRemoteView`: renders now if `stream` (the user's arrived media) is given.
    pub fn show_remote(
        &self,
        user_id: &str,
        dom_id: String,
        stream: Option<&MediaStream>,
    ) -> Result<(), Error> {
        container(&dom_id)?;
        self.remote_requests
            .borrow_mut()
            .insert(user_id.to_owned(), dom_id);
        match stream {
            Some(s) => self.render_remote(user_id, s),
            None => Ok(()),
        }
    }

    fn render_remote(&self, user_id: &str, stream: &MediaStream) -> Result<(), Error> {
        let Some(dom_id) = self.remote_requests.borrow().get(user_id).cloned() else {
            return Ok(());
        };
        let parent = container(&dom_id)?;
        let old = self.remote.borrow_mut().remove(user_id);
        if let Some(old) = old {
            remove(&old);
        }
        let video = video_element(stream)?;
        parent.append_child(&video)?;
        self.play(video.clone().unchecked_into());
        self.remote.borrow_mut().insert(user_id.to_owned(), video);
        Ok(())
    }

    /// `stopRemoteView`: the user's audio keeps playing.
    pub fn hide_remote(&self, user_id: &str) {
        self.remote_requests.borrow_mut().remove(user_id);
        let old = self.remote.borrow_mut().remove(user_id);
        if let Some(v) = old {
            remove(&v);
        }
    }

    /// The user's media arrived: start its hidden audio and any view already asked for.
    pub fn remote_arrived(&self, user_id: &str, stream: &MediaStream) -> Result<(), Error> {
        let doc = document()?;
        let audio: HtmlAudioElement = doc
            .create_element("audio")?
            .dyn_into()
            .map_err(|_| Error::Browser("cannot create <audio>".into()))?;
        audio.set_autoplay(true);
        audio.set_attribute(MARK, "")?;
        audio.set_attribute("style", "display:none")?;
        audio.set_src_object(Some(stream));
        doc.body()
            .ok_or_else(|| Error::Browser("no <body>".into()))?
            .append_child(&audio)?;
        self.play(audio.clone().unchecked_into());
        let old = self.audio.borrow_mut().insert(user_id.to_owned(), audio);
        if let Some(old) = old {
            remove(&old);
        }
        self.render_remote(user_id, stream)
    }

    /// The connection `user_id`'s media played from is gone: its hidden audio goes (so the
    /// media arriving on another connection plays), its view stays until that replaces it.
    pub fn stream_gone(&self, user_id: &str) {
        let old = self.audio.borrow_mut().remove(user_id);
        if let Some(a) = old {
            remove(&a);
        }
    }

    /// Whether `user_id`'s media plays (its hidden audio is there).
    pub fn plays(&self, user_id: &str) -> bool {
        self.audio.borrow().get(user_id).is_some()
    }

    /// How large each remote view is drawn, in device pixels: its element (the app's, which
    /// the `<video>` fills) as laid out now, known before the first frame arrives. 0×0 when it
    /// is hidden.
    pub fn rendered_sizes(&self) -> Vec<RenderedView> {
        let scale = web_sys::window().map_or(1.0, |w| w.device_pixel_ratio());
        let pixels = |css: i32| (f64::from(css.max(0)) * scale).round() as u32;
        self.remote_requests
            .borrow()
            .iter()
            .filter_map(|(user_id, dom_id)| {
                let el = container(dom_id).ok()?;
                Some(RenderedView {
                    user_id: user_id.clone(),
                    width: pixels(el.client_width()),
                    height: pixels(el.client_height()),
                })
            })
            .collect()
    }

    /// The user left: remove everything created for them.
    pub fn close_user(&self, user_id: &str) {
        self.hide_remote(user_id);
        let old = self.audio.borrow_mut().remove(user_id);
        if let Some(a) = old {
            remove(&a);
        }
    }

    /// The call is over: remove every element and forget every request.
    pub fn clear(&self) {
        self.hide_local();
        self.remote_requests.borrow_mut().clear();
        let remote: Vec<_> = self.remote.borrow_mut().take_values();
        let audio: Vec<_> = self.audio.borrow_mut().take_values();
        remote.iter().for_each(|v| remove(v));
        audio.iter().for_each(|a| remove(a));
        self.blocked.borrow_mut().clear();
        let gesture = self.gesture.take();
        drop(gesture);
    }

    /// Starts playback; if autoplay is refused, retries on the next click, key or touch.
    fn play(&self, el: HtmlMediaElement) {
        let Ok(promise) = el.play() else {
            return;
        };
        let views = self.me.clone();
        task::spawn(async move {
            let Err(e) = JsFuture::from(promise).await else {
                return;
            };
            if js_name(&e).as_deref() != Some("NotAllowedError") {
                return;
            }
            log::warn("autoplay blocked; playback resumes on the next user gesture");
            if let Some(views) = views.upgrade() {
                views.block(el);
            }
        });
    }

    fn block(&self, el: HtmlMediaElement) {
        self.blocked.borrow_mut().push(el);
        if !self.gesture.borrow().is_empty() {
            return;
        }
        let Ok(doc) = document() else {
            return;
        };
        let listeners = ["click", "keydown", "touchend"]
            .into_iter()
            .map(|name| {
                let views = self.me.clone();
                EventListener::new(&doc, name, move |_| {
                    if let Some(views) = views.upgrade() {
                        views.resume();
                    }
                })
            })
            .collect();
        self.gesture.replace(listeners);
    }

    fn resume(&self) {
        let blocked = self.blocked.take();
        for el in blocked {
            // Inside a user gesture play() is allowed; a removed element just fails quietly.
            if let Ok(p) = el.play() {
                task::spawn(async move {
                    let _ = JsFuture::from(p).await;
                });
            }
        }
        log::info("resumed playback after a user gesture");
    }
}
