//! The callee's answer to the invitation ringing here: `accept()` tells the server at once and
//! opens the devices meanwhile (the connection to the caller is already up, made while ringing),
//! the capture's outcome settles it; `reject()` and every other way of declining.

use calling_protocol::{CallType, ClientMessage};

use crate::active_call::{Answer, MediaOp, Phase};
use crate::invitation::undefined;
use crate::leave::{left, Tell};
use crate::session::{CallError, Session};
use crate::{Effect, Reply, RequestId, SdkError};

impl Session {
    pub(crate) fn accept(
        &mut self,
        now_ms: u64,
        request: RequestId,
        out: &mut Vec<Effect>,
    ) -> Result<(), CallError> {
        let Some(call) = self.call.as_mut() else {
            out.push(undefined(request));
            return Ok(());
        };
        let Phase::Incoming {
            answer, invite_id, ..
        } = &mut call.phase
        else {
            out.push(undefined(request));
            return Ok(());
        };
        if *answer != Answer::Undecided {
            return Err(CallError::WrongState(
                "accept() is already in progress".into(),
            ));
        }
        // The server hears at once; the devices open meanwhile, and the tracks go to the
        // (already connected) peers as soon as they are live.
        *answer = Answer::Joining { request };
        out.push(Effect::Send(ClientMessage::Accept {
            request_id: request,
            invite_id: invite_id.clone(),
        }));
        let video = call.call_type == CallType::Video;
        call.open_media(true, video, MediaOp::Accept, out);
        // While the socket is lost the Accept waits for the session to come back: the caller
        // must not get our media before it hears that we accepted. `Joined` attaches then.
        if !self.resumption.is_lost() {
            call.attach_all(now_ms, &self.ice_servers, self.policy.relay_only, out);
        }
        Ok(())
    }

    /// The accepting callee's capture is over (opened, or receive-only off a secure context):
    /// an `accept()` promise waiting for it settles, and the peers learn our media state.
    pub(crate) fn finish_accept(&mut self, out: &mut Vec<Effect>) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        if let (Some(request), Some(room_id)) = (call.accepting.take(), call.room_id) {
            out.push(Effect::Resolve {
                request,
                reply: Reply::Accept {
                    code: 0,
                    room_id,
                    call_type: call.call_type.as_number(),
                },
            });
        }
        call.send_media_state(out);
    }

    /// The accepting callee's capture failed: the call is left as if declined, and the
    /// `accept()` promise rejects with the capture's error.
    pub(crate) fn accept_failed(&mut self, err: &SdkError, out: &mut Vec<Effect>) {
        let joined = self.call.as_ref().is_some_and(|c| c.is_connected());
        if !joined {
            return self.decline_invitation(err, out);
        }
        // Already a member: leave the call. No CALL_END, as the app never saw it connected.
        self.end_call(Tell::Server, |_| Vec::new(), err, out);
    }

    pub(crate) fn reject(
        &mut self,
        request: RequestId,
        out: &mut Vec<Effect>,
    ) -> Result<(), CallError> {
        if !matches!(
            self.call.as_ref().map(|c| &c.phase),
            Some(Phase::Incoming { .. })
        ) {
            out.push(undefined(request));
            return Ok(());
        }
        self.decline_invitation(&left("reject()"), out);
        out.push(Effect::Resolve {
            request,
            reply: Reply::Ok { code: 0 },
        });
        Ok(())
    }
}
