//! Local media during a call: acquiring it (and what a failure means for the call), mute and
//! camera on/off, and the 1:1 call-mode switch, where the other side follows and acknowledges.
//! Video tracks come and go by `replaceTrack` in the glue, so none of this renegotiates.

use calling_protocol::{CallType, Signal};

use crate::active_call::{ActiveCall, MediaOp, PendingSwitch};
use crate::event::AppEvent;
use crate::link::relay;
use crate::session::{CallError, Session};
use crate::{code, Effect, MediaOutcome, MediaToken, Reply, RequestId, SdkError};

fn ok(request: RequestId) -> Effect {
    Effect::Resolve {
        request,
        reply: Reply::Ok { code: 0 },
    }
}

fn error_event(err: &SdkError) -> Effect {
    Effect::Emit(error_app_event(err))
}

fn error_app_event(err: &SdkError) -> AppEvent {
    AppEvent::Error {
        code: err.code.unwrap_or(code::MEDIA_DENIED),
        msg: err.message.clone(),
    }
}

fn switch_code(target: CallType) -> u32 {
    match target {
        CallType::Audio => code::SWITCH_TO_AUDIO_FAILED,
        CallType::Video => code::SWITCH_TO_VIDEO_FAILED,
    }
}

fn type_name(call_type: CallType) -> &'static str {
    match call_type {
        CallType::Audio => "audio",
        CallType::Video => "video",
    }
}

/// The other participant of a connected 1:1 call, and the room.
fn one_to_one(call: &ActiveCall) -> Option<(String, u32)> {
    if call.is_group || !call.is_connected() || call.peers.len() != 1 {
        return None;
    }
    let peer = call.peers.keys().next()?.clone();
    Some((peer, call.room_id?))
}

/// Mutes (or unmutes) the microphone and tells the peers what changed for them.
pub(crate) fn mute_microphone(call: &mut ActiveCall, mute: bool, out: &mut Vec<Effect>) {
    let before = call.local.state();
    call.local.muted = mute;
    out.push(Effect::MuteAudio(mute));
    call.announce_media(before, out);
}

/// Stops the camera and tells the peers what changed for them.
pub(crate) fn stop_camera(call: &mut ActiveCall, out: &mut Vec<Effect>) {
    let before = call.local.state();
    call.local.video = false;
    out.push(Effect::CloseMedia {
        audio: false,
        video: true,
    });
    call.announce_media(before, out);
}

impl Session {
    /// The call in progress, for commands that need one.
    fn call_for(&mut self, method: &str) -> Result<&mut ActiveCall, CallError> {
        let status = self.status();
        self.call.as_mut().ok_or_else(|| {
            CallError::WrongState(format!(
                "{method} needs a call in progress; current status: {status}"
            ))
        })
    }

    pub(crate) fn set_mic_mute(
        &mut self,
        request: RequestId,
        mute: bool,
        out: &mut Vec<Effect>,
    ) -> Result<(), CallError> {
        mute_microphone(self.call_for("setMicMute()")?, mute, out);
        out.push(ok(request));
        Ok(())
    }

    pub(crate) fn open_camera(
        &mut self,
        request: RequestId,
        out: &mut Vec<Effect>,
    ) -> Result<(), CallError> {
        let call = self.call_for("openCamera()")?;
        if call.local.video {
            out.push(ok(request));
        } else {
            // In an audio call this adds a camera track without changing the call type.
            call.open_media(false, true, MediaOp::Camera { request }, out);
        }
        Ok(())
    }

    pub(crate) fn close_camera(
        &mut self,
        request: RequestId,
        out: &mut Vec<Effect>,
    ) -> Result<(), CallError> {
        stop_camera(self.call_for("closeCamera()")?, out);
        out.push(ok(request));
        Ok(())
    }

    /// `switchToAudioCall()` / `switchToVideoCall()`: failures are `ERROR` events (SPEC §3), and
    /// the promise rejects with the same code.
    pub(crate) fn switch_mode(
        &mut self,
        request: RequestId,
        target: CallType,
        out: &mut Vec<Effect>,
    ) -> Result<(), CallError> {
        let code = switch_code(target);
        let method = match target {
            CallType::Audio => "switchToAudioCall()",
            CallType::Video => "switchToVideoCall()",
        };
        let status = self.status();
        let refusal = match self.call.as_mut() {
            None => Some(format!(
                "{method} needs a connected 1:1 call; current status: {status}"
            )),
            Some(call) => match one_to_one(call) {
                None => Some(format!(
                    "{method} needs a connected 1:1 call; current status: {status}{}",
                    if call.is_group { ", group call" } else { "" }
                )),
                Some(_) if call.switch.is_some() => Some(format!(
                    "{method}: a call-mode switch is already in progress"
                )),
                Some(_) if call.call_type == target => {
                    out.push(ok(request));
                    return Ok(());
                }
                Some((peer, room)) => {
                    call.switch = Some(PendingSwitch {
                        request,
                        call_type: target,
                    });
                    out.push(relay(room, &peer, Signal::SwitchMode { call_type: target }));
                    None
                }
            },
        };
        if let Some(msg) = refusal {
            out.push(Effect::Emit(AppEvent::Error {
                code,
                msg: msg.clone(),
            }));
            out.push(Effect::Reject {
                request,
                error: SdkError {
                    code: Some(code),
                    message: msg,
                },
            });
        }
        Ok(())
    }

    /// The other side switched the call's mode: follow it, then acknowledge.
    pub(crate) fn follow_switch(&mut self, from: &str, target: CallType, out: &mut Vec<Effect>) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let Some((peer, room)) = one_to_one(call).filter(|(peer, _)| peer == from) else {
            if let Some(room) = call.room_id {
                let ack = Signal::SwitchModeAck {
                    call_type: target,
                    ok: false,
                };
                out.push(relay(room, from, ack));
            }
            return;
        };
        let ack = |ok: bool| {
            relay(
                room,
                &peer,
                Signal::SwitchModeAck {
                    call_type: target,
                    ok,
                },
            )
        };
        if call.call_type == target {
            // Both sides asked at once, or a repeat: already there.
            out.push(ack(true));
            return;
        }
        match target {
            CallType::Audio => {
                let before = call.local.state();
                call.local.video = false;
                call.call_type = CallType::Audio;
                out.push(Effect::CloseMedia {
                    audio: false,
                    video: true,
                });
                out.push(ack(true));
                out.push(Effect::Emit(AppEvent::CallTypeChanged {
                    call_type: CallType::Audio.as_number(),
                }));
                call.announce_media(before, out);
            }
            CallType::Video => call.open_media(false, true, MediaOp::FollowVideo, out),
        }
    }

    /// Our camera for the other side's switch to video is on (`true`) or failed.
    fn finish_follow_video(&mut self, ok: bool, failure: Option<&SdkError>, out: &mut Vec<Effect>) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let Some((peer, room)) = one_to_one(call) else {
            return;
        };
        let ack = Signal::SwitchModeAck {
            call_type: CallType::Video,
            ok,
        };
        out.push(relay(room, &peer, ack));
        if ok {
            call.call_type = CallType::Video;
            out.push(Effect::Emit(AppEvent::CallTypeChanged {
                call_type: CallType::Video.as_number(),
            }));
        } else {
            let reason = failure
                .map(|e| e.message.as_str())
                .unwrap_or("camera unavailable");
            out.push(Effect::Emit(AppEvent::Error {
                code: code::SWITCH_TO_VIDEO_FAILED,
                msg: format!("could not follow the switch to a video call: {reason}"),
            }));
        }
    }

    /// The other side answered our call-mode switch.
    pub(crate) fn switch_acknowledged(
        &mut self,
        target: CallType,
        ok: bool,
        out: &mut Vec<Effect>,
    ) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let Some(pending) = call.switch.take_if(|s| s.call_type == target) else {
            return;
        };
        let request = pending.request;
        if !ok {
            let code = switch_code(target);
            let msg = format!(
                "the other side could not switch to a {} call",
                type_name(target)
            );
            out.push(Effect::Emit(AppEvent::Error {
                code,
                msg: msg.clone(),
            }));
            out.push(Effect::Reject {
                request,
                error: SdkError {
                    code: Some(code),
                    message: msg,
                },
            });
            return;
        }
        if call.call_type == target {
            // We already followed the other side's own switch to the same mode.
            out.push(self::ok(request));
            return;
        }
        call.call_type = target;
        match target {
            CallType::Audio => {
                let before = call.local.state();
                call.local.video = false;
                out.push(Effect::CloseMedia {
                    audio: false,
                    video: true,
                });
                out.push(Effect::Emit(AppEvent::CallTypeChanged {
                    call_type: CallType::Audio.as_number(),
                }));
                call.announce_media(before, out);
                out.push(self::ok(request));
            }
            CallType::Video => {
                out.push(Effect::Emit(AppEvent::CallTypeChanged {
                    call_type: CallType::Video.as_number(),
                }));
                call.open_media(false, true, MediaOp::SwitchVideo { request }, out);
            }
        }
    }

    /// The glue's answer to the oldest outstanding `OpenMedia`.
    pub(crate) fn media_outcome(
        &mut self,
        now_ms: u64,
        token: MediaToken,
        outcome: MediaOutcome,
        out: &mut Vec<Effect>,
    ) {
        let Some(call) = self.call.as_mut() else {
            // Media that arrived after its call ended must not stay captured.
            if let MediaOutcome::Opened { audio, video } = outcome {
                if audio || video {
                    out.push(Effect::CloseMedia { audio, video });
                }
            }
            return;
        };
        // An outcome for a call already left (a token this call never issued): the tracks it
        // reports are live (and useful to this call), but what it was asked for no longer
        // applies.
        let op = call.take_media_op(token);
        let err = match outcome {
            MediaOutcome::Opened { audio, mut video } => {
                // A camera a left video call asked for (perhaps behind a permission prompt
                // answered only now) never goes out in an audio call.
                if op.is_none() && video && call.call_type == CallType::Audio {
                    out.push(Effect::CloseMedia {
                        audio: false,
                        video: true,
                    });
                    video = call.local.video;
                }
                let before = call.local.state();
                call.local.audio = audio;
                call.local.video = video;
                // The tracks go out before anyone is told about them.
                call.send_tracks(out);
                // The op first: a followed switch is acknowledged before the new media state
                // goes out, so the other side sees the mode change, then the video.
                match op {
                    None => {}
                    // The first capture: nobody was told our state while it ran.
                    Some(MediaOp::Start) => call.send_media_state(out),
                    Some(MediaOp::Accept) => return self.finish_accept(out),
                    Some(MediaOp::Camera { request } | MediaOp::SwitchVideo { request }) => {
                        out.push(ok(request))
                    }
                    Some(MediaOp::FollowVideo) => self.finish_follow_video(true, None, out),
                }
                if let Some(call) = &self.call {
                    if op != Some(MediaOp::Start) {
                        call.announce_media(before, out);
                    }
                }
                return;
            }
            MediaOutcome::Failed(err) => err,
        };
        // Off a secure context nothing can be published, but the call still works one way:
        // the app is told once per attempt and the call goes on receive-only.
        let insecure = err.code == Some(code::INSECURE_CONTEXT);
        match op {
            None => {}
            Some(MediaOp::Start) if insecure => out.push(error_event(&err)),
            Some(MediaOp::Start) => {
                // Still waiting for the server: the call() promise carries the failure.
                // Already confirmed: the app hears it as an ERROR event.
                let why = call.room_id.is_some().then(|| error_app_event(&err));
                self.leave_saying(now_ms, why, &err, out);
            }
            Some(MediaOp::Accept) if insecure => {
                out.push(error_event(&err));
                self.finish_accept(out);
            }
            Some(MediaOp::Accept) => self.accept_failed(&err, out),
            Some(MediaOp::Camera { request }) => out.push(Effect::Reject {
                request,
                error: err,
            }),
            Some(MediaOp::SwitchVideo { request }) => {
                let msg = format!("switchToVideoCall() failed: {}", err.message);
                out.push(Effect::Emit(AppEvent::Error {
                    code: code::SWITCH_TO_VIDEO_FAILED,
                    msg: msg.clone(),
                }));
                out.push(Effect::Reject {
                    request,
                    error: SdkError {
                        code: Some(code::SWITCH_TO_VIDEO_FAILED),
                        message: msg,
                    },
                });
            }
            Some(MediaOp::FollowVideo) if insecure => {
                out.push(error_event(&err));
                self.finish_follow_video(true, None, out);
            }
            Some(MediaOp::FollowVideo) => self.finish_follow_video(false, Some(&err), out),
        }
    }
}

#[cfg(test)]
mod tests {
    use calling_protocol::ServerMessage;
    use calling_protocol::{Accepted, InviteSent, RelayedSignal};

    use super::*;
    use crate::link::Link;
    use crate::{Command, Input};

    /// alice in a connected 1:1 call of `call_type` with bob, in room 3, link up.
    fn connected(call_type: CallType) -> Session {
        let mut call = Session::logged_in_as("alice");
        call.ok(Input::Command {
            request: 1,
            command: Command::Call {
                user_id: "bob".into(),
                call_type,
            },
        });
        call.ok(Input::Media {
            token: 0,
            outcome: MediaOutcome::Opened {
                audio: true,
                video: call_type == CallType::Video,
            },
        });
        call.ok(Input::Server(ServerMessage::InviteSent(InviteSent {
            request_id: 1,
            invite_id: "i".into(),
            room_id: 3,
            user_ids: vec!["bob".into()],
        })));
        call.ok(Input::Server(ServerMessage::Accepted(Accepted {
            room_id: 3,
            invite_id: "i".into(),
            user_id: "bob".into(),
        })));
        if let Some(peer) = call.call.as_mut().and_then(|c| c.peers.get_mut("bob")) {
            peer.link = Link::Up;
        }
        call
    }

    fn command(request: RequestId, command: Command) -> Input {
        Input::Command { request, command }
    }

    #[test]
    fn mute_disables_the_track_and_tells_the_peer() {
        let mut call = connected(CallType::Audio);
        assert_eq!(
            call.ok(command(2, Command::SetMicMute(true))),
            vec![
                Effect::MuteAudio(true),
                relay(
                    3,
                    "bob",
                    Signal::Media {
                        audio: false,
                        video: false
                    }
                ),
                ok(2)
            ]
        );
        assert_eq!(
            call.ok(command(3, Command::SetMicMute(true))),
            vec![Effect::MuteAudio(true), ok(3)],
            "no news for the peer"
        );
    }

    #[test]
    fn switching_to_the_current_mode_resolves_at_once() {
        let mut call = connected(CallType::Audio);
        assert_eq!(call.ok(command(2, Command::SwitchToAudio)), vec![ok(2)]);
    }

    #[test]
    fn switch_asks_the_other_side_and_waits_for_its_answer() {
        let mut call = connected(CallType::Video);
        assert_eq!(
            call.ok(command(2, Command::SwitchToAudio)),
            vec![relay(
                3,
                "bob",
                Signal::SwitchMode {
                    call_type: CallType::Audio
                }
            )]
        );
        assert_eq!(call.call_type(), Some(CallType::Video));
        let again = call.ok(command(3, Command::SwitchToVideo));
        assert!(matches!(
            again[0],
            Effect::Emit(AppEvent::Error { code: 60002, .. })
        ));
        let ack = Input::Server(ServerMessage::Signal(RelayedSignal {
            room_id: 3,
            from: "bob".into(),
            signal: Signal::SwitchModeAck {
                call_type: CallType::Audio,
                ok: true,
            },
        }));
        assert_eq!(
            call.ok(ack),
            vec![
                Effect::CloseMedia {
                    audio: false,
                    video: true
                },
                Effect::Emit(AppEvent::CallTypeChanged { call_type: 1 }),
                relay(
                    3,
                    "bob",
                    Signal::Media {
                        audio: true,
                        video: false
                    }
                ),
                ok(2),
            ]
        );
        assert_eq!(call.call_type(), Some(CallType::Audio));
    }

    #[test]
    fn the_other_sides_switch_to_audio_is_followed_at_once() {
        let mut call = connected(CallType::Video);
        let switch = Input::Server(ServerMessage::Signal(RelayedSignal {
            room_id: 3,
            from: "bob".into(),
            signal: Signal::SwitchMode {
                call_type: CallType::Audio,
            },
        }));
        assert_eq!(
            call.ok(switch),
            vec![
                Effect::CloseMedia {
                    audio: false,
                    video: true
                },
                relay(
                    3,
                    "bob",
                    Signal::SwitchModeAck {
                        call_type: CallType::Audio,
                        ok: true
                    }
                ),
                Effect::Emit(AppEvent::CallTypeChanged { call_type: 1 }),
                relay(
                    3,
                    "bob",
                    Signal::Media {
                        audio: true,
                        video: false
                    }
                ),
            ]
        );
    }

    #[test]
    fn camera_failure_rejects_open_camera_only() {
        let mut call = connected(CallType::Audio);
        assert_eq!(
            call.ok(command(2, Command::OpenCamera)),
            vec![Effect::OpenMedia {
                token: 1,
                audio: false,
                video: true
            }]
        );
        let err = SdkError {
            code: Some(code::NO_CAMERA),
            message: "no camera".into(),
        };
        assert_eq!(
            call.ok(Input::Media {
                token: 1,
                outcome: MediaOutcome::Failed(err.clone())
            }),
            vec![Effect::Reject {
                request: 2,
                error: err
            }]
        );
        assert!(call.call.as_ref().is_some_and(|c| c.is_connected()));
    }
}
