//! The devices under a call and what the app hears of them: a device in use that went away
//! (replaced by another of its kind, `DEVICE_CHANGED`, or gone for good, `ERROR` and the call
//! goes on without it), a device the app switched to, and the voice-volume reports made every
//! second while connected from levels the glue reads.

use crate::active_call::ActiveCall;
use crate::event::{AppEvent, VoiceVolume};
use crate::media::{mute_microphone, stop_camera};
use crate::session::Session;
use crate::{code, DeviceChange, Effect, MediaKind, Timer};

/// `USER_VOICE_VOLUME` comes once a second.
const VOICE_VOLUME_PERIOD_MS: u32 = 1000;

/// `reason` in `DEVICE_CHANGED` when the device in use disappeared.
const REASON_LOST: &str = "deviceLost";

/// (Re)arms the voice-volume reports.
pub(crate) fn voice_volume_timer() -> Effect {
    Effect::StartTimer {
        timer: Timer::VoiceVolume,
        after_ms: VOICE_VOLUME_PERIOD_MS,
    }
}

impl Session {
    pub(crate) fn device_changed(
        &mut self,
        kind: MediaKind,
        change: DeviceChange,
        out: &mut Vec<Effect>,
    ) {
        match change {
            DeviceChange::Switched => {
                if let Some(call) = &self.call {
                    call.send_tracks(out);
                }
            }
            DeviceChange::Replaced { device_id, label } => {
                if let Some(call) = &self.call {
                    call.send_tracks(out);
                }
                out.push(Effect::Emit(AppEvent::DeviceChanged {
                    device_type: kind.as_str().into(),
                    device_id,
                    label,
                    reason: REASON_LOST.into(),
                }));
            }
            DeviceChange::Lost { why } => {
                let (code, what) = match kind {
                    MediaKind::Audio => (code::NO_MICROPHONE, "microphone"),
                    MediaKind::Video => (code::NO_CAMERA, "camera"),
                };
                out.push(Effect::Emit(AppEvent::Error {
                    code,
                    msg: format!("the {what} in use went away and no other could be opened: {why}"),
                }));
                // The call goes on without it, as if the app had muted the microphone or closed
                // the camera, so the peers hear it is unavailable instead of a frozen picture.
                if let Some(call) = self.call.as_mut() {
                    without(call, kind, out);
                }
            }
        }
    }

    /// Time for a voice-volume report: read the levels. The next read is timed from this one's
    /// end, so reads never pile up: in a big mesh on a busy machine, statistics can take longer
    /// than the period, and overlapping reads would starve the browser's WebRTC thread that
    /// also has to answer offers.
    pub(crate) fn voice_volume_due(&mut self, out: &mut Vec<Effect>) {
        let Some(call) = self.call.as_ref().filter(|c| c.is_connected()) else {
            return;
        };
        out.push(Effect::ReadAudioLevels);
        if call.via_sfu {
            out.push(Effect::MeasureViews);
        }
    }

    /// The levels read for a report: `USER_VOICE_VOLUME`, ours first, and the next read in a
    /// second, while still connected.
    pub(crate) fn audio_levels(
        &mut self,
        local: u8,
        remote: Vec<(String, u8)>,
        out: &mut Vec<Effect>,
    ) {
        let Some(me) = self.me() else { return };
        let Some(call) = self.call.as_ref().filter(|c| c.is_connected()) else {
            return;
        };
        let mut volume_map = vec![VoiceVolume {
            user_id: me,
            audio_volume: local,
        }];
        volume_map.extend(
            remote
                .into_iter()
                .filter(|(user, _)| call.peers.contains_key(user))
                .map(|(user_id, audio_volume)| VoiceVolume {
                    user_id,
                    audio_volume,
                }),
        );
        out.push(Effect::Emit(AppEvent::UserVoiceVolume { volume_map }));
        out.push(voice_volume_timer());
    }
}

/// Goes on without the local media of `kind`.
fn without(call: &mut ActiveCall, kind: MediaKind, out: &mut Vec<Effect>) {
    match kind {
        MediaKind::Audio => mute_microphone(call, true, out),
        MediaKind::Video => stop_camera(call, out),
    }
}

#[cfg(test)]
mod tests {
    use calling_protocol::{Accepted, InviteSent};
    use calling_protocol::{CallType, ServerMessage, Signal};

    use super::*;
    use crate::input::{Command, Input, MediaOutcome};
    use crate::link::{relay, Link};

    /// alice in a connected 1:1 video call with bob (room 3), media open, link up.
    fn connected() -> Session {
        let mut s = Session::logged_in_as("alice");
        s.ok(Input::Command {
            request: 1,
            command: Command::Call {
                user_id: "bob".into(),
                call_type: CallType::Video,
            },
        });
        s.ok(Input::Media {
            token: 0,
            outcome: MediaOutcome::Opened {
                audio: true,
                video: true,
            },
        });
        s.ok(Input::Server(ServerMessage::InviteSent(InviteSent {
            request_id: 1,
            invite_id: "i".into(),
            room_id: 3,
            user_ids: vec!["bob".into()],
        })));
        s.ok(Input::Server(ServerMessage::Accepted(Accepted {
            room_id: 3,
            invite_id: "i".into(),
            user_id: "bob".into(),
        })));
        if let Some(link) = s.call.as_mut().and_then(|c| c.peers.get_mut("bob")) {
            link.link = Link::Up;
        }
        s
    }

    fn device(kind: MediaKind, change: DeviceChange) -> Input {
        Input::Device { kind, change }
    }

    #[test]
    fn a_replaced_device_goes_to_the_peers_and_the_app_hears_device_changed() {
        let mut s = connected();
        let replaced = DeviceChange::Replaced {
            device_id: "cam2".into(),
            label: "Camera 2".into(),
        };
        assert_eq!(
            s.ok(device(MediaKind::Video, replaced)),
            vec![
                Effect::SendTracks {
                    user_id: "bob".into()
                },
                Effect::Emit(AppEvent::DeviceChanged {
                    device_type: "video".into(),
                    device_id: "cam2".into(),
                    label: "Camera 2".into(),
                    reason: "deviceLost".into(),
                }),
            ]
        );
        assert_eq!(
            s.ok(device(MediaKind::Audio, DeviceChange::Switched)),
            vec![Effect::SendTracks {
                user_id: "bob".into()
            }],
            "switchDevice(): the new track goes out, the app asked for it"
        );
    }

    #[test]
    fn a_lost_device_is_an_error_and_the_call_goes_on_without_it() {
        let mut s = connected();
        let lost = || DeviceChange::Lost {
            why: "no other device".into(),
        };
        let fx = s.ok(device(MediaKind::Video, lost()));
        assert!(
            matches!(&fx[0], Effect::Emit(AppEvent::Error { code: 60004, .. })),
            "{fx:?}"
        );
        assert_eq!(
            fx[1..],
            [
                Effect::CloseMedia {
                    audio: false,
                    video: true
                },
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
        let fx = s.ok(device(MediaKind::Audio, lost()));
        assert!(
            matches!(&fx[0], Effect::Emit(AppEvent::Error { code: 60003, .. })),
            "{fx:?}"
        );
        assert_eq!(fx[1], Effect::MuteAudio(true));
        // Outside a call only the app hears it.
        let mut idle = Session::logged_in_as("alice");
        assert_eq!(idle.ok(device(MediaKind::Video, lost())).len(), 1);
    }

    #[test]
    fn voice_volume_is_read_a_second_after_the_last_read_ended_and_reported_ours_first() {
        let mut s = connected();
        assert_eq!(
            s.ok(Input::Timer(Timer::VoiceVolume)),
            vec![Effect::ReadAudioLevels],
            "the next read is timed from this one's end, so slow reads never overlap"
        );
        let levels = Input::AudioLevels {
            local: 40,
            remote: vec![("bob".into(), 70), ("gone".into(), 9)],
        };
        assert_eq!(
            s.ok(levels.clone()),
            vec![
                Effect::Emit(AppEvent::UserVoiceVolume {
                    volume_map: vec![
                        VoiceVolume {
                            user_id: "alice".into(),
                            audio_volume: 40
                        },
                        VoiceVolume {
                            user_id: "bob".into(),
                            audio_volume: 70
                        },
                    ]
                }),
                voice_volume_timer()
            ],
            "a user no longer in the call is left out"
        );
        s.ok(Input::Command {
            request: 5,
            command: Command::Hangup,
        });
        assert_eq!(s.ok(Input::Timer(Timer::VoiceVolume)), vec![]);
        assert_eq!(s.ok(levels), vec![], "levels read before the hangup");
    }
}
