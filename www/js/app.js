// The demo app: signs in with a development UserSig, places and answers 1:1 and group calls,
// and shows them, using only the public API of the `trtc-calling-wasm` package, imported the
// way any page without a bundler would import it.
//
// UI state is mirrored on <body> as `data-screen` (login/home/call) and `data-call`
// (idle/incoming/outgoing/connected) so the CSS and the end-to-end test read the same thing.

import TRTCCalling from '/pkg/index.js';
import { Ringtone } from './ringtone.js';
import { Notices } from './notices.js';
import { TileGrid, paintAvatar, viewId } from './tiles.js';
import { DevicePicker } from './devices.js';

const $ = (id) => document.getElementById(id);
const EVENT = TRTCCalling.EVENT;
const VIDEO = TRTCCalling.CALL_TYPE.VIDEO_CALL;
const AUDIO = TRTCCalling.CALL_TYPE.AUDIO_CALL;
const USER_ID = /^[A-Za-z0-9_-]{1,32}$/;
// Browsers expose camera and microphone only to secure pages (HTTPS or localhost). Elsewhere
// the SDK still rings and receives, so the demo joins calls receive-only (the SDK says 60007).
const CAN_PUBLISH = window.isSecureContext;

const ringtone = new Ringtone();
const notices = new Notices($('notices'), $('last-event'));
const tiles = new TileGrid($('tiles'));

let trtc = null;
let sdkAppID = 0;
let me = '';
/** The pending invitation (INVITED payload) while the incoming dialog is open. */
let incoming = null;
/**
 * The call on screen, or null when idle:
 * { role: 'caller'|'callee', type, group, connectedAt, timer, micMuted, cameraOn,
 *   videoKnown: Set of userIDs whose camera state was reported, outcomeShown }
 */
let call = null;
/**
 * Every SDK event the page heard but the volume reports (one a second), oldest first, as
 * { name, userID, code, at }: how a call went
 * (interrupted, restored, left, ended, which error) can be read from outside, by the end-to-end
 * tests or from the console.
 */
const heard = [];
window.demoEvents = heard;
const devices = new DevicePicker($('select-camera'), $('select-mic'), () => trtc, notices);

function setScreen(name) {
  document.body.dataset.screen = name;
}

function setCallState(state) {
  document.body.dataset.call = state;
}

function kindLabel(type) {
  return type === VIDEO ? 'Video call' : 'Audio call';
}

function formatDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** Parses "bob, carol dave" into unique valid userIDs other than mine. */
function parseUserIDs(text) {
  const ids = [...new Set(text.split(/[\s,;]+/).filter(Boolean))];
  const bad = ids.filter((id) => !USER_ID.test(id));
  if (bad.length) throw new Error(`Not a valid user ID: ${bad.join(', ')}`);
  const others = ids.filter((id) => id !== me);
  if (!others.length) throw new Error(ids.length ? 'You cannot call yourself' : 'Enter a user ID to call');
  return others;
}

async function fetchJSON(url) {
  const res = await fetch(url, { cache: 'no-store' });
  if (!res.ok) throw new Error(`${url} answered ${res.status} ${res.statusText}`);
  return res.json();
}

// ---------------------------------------------------------------- call screen

function refreshCallHeader() {
  if (!call) return;
  const others = [...tiles.tiles.keys()].filter((id) => id !== me);
  $('call-title').textContent = others.length ? others.join(', ') : 'Call';
  $('call-kind').textContent = kindLabel(call.type) + (call.group ? ' · group' : '');
  $('tiles').dataset.mode = call.type === VIDEO ? 'video' : 'audio';
  const connected = Boolean(call.connectedAt);
  $('btn-audio-only').hidden = !(connected && !call.group && call.type === VIDEO);
  // Anyone can be added to a connected call; a 1:1 call becomes a group call.
  $('btn-add').hidden = !connected;
  $('invite-form').hidden = !connected;
  for (const id of ['btn-mic', 'btn-camera', 'btn-audio-only']) $(id).disabled = !CAN_PUBLISH;
  const mic = $('btn-mic');
  mic.setAttribute('aria-pressed', String(call.micMuted));
  mic.title = call.micMuted ? 'Unmute microphone' : 'Mute microphone';
  const cam = $('btn-camera');
  cam.setAttribute('aria-pressed', String(!call.cameraOn));
  cam.title = call.cameraOn ? 'Turn camera off' : 'Turn camera on';
  if (!connected) $('call-timer').textContent = call.role === 'caller' ? 'Calling…' : 'Connecting…';
}

function enterCall({ role, type, group, invitees = [], members = [] }) {
  call = {
    role, type, group, connectedAt: 0, timer: null, micMuted: !CAN_PUBLISH, cameraOn: CAN_PUBLISH && type === VIDEO,
    videoKnown: new Set(), outcomeShown: false,
  };
  tiles.clear();
  tiles.ensure(me, { local: true, video: call.cameraOn, audio: CAN_PUBLISH });
  for (const id of members) {
    tiles.ensure(id, { joined: true, video: false });
    startRemote(id);
  }
  for (const id of invitees) tiles.ensure(id, { joined: false });
  $('devices').hidden = true;
  $('btn-settings').setAttribute('aria-expanded', 'false');
  setScreen('call');
  setCallState(role === 'caller' ? 'outgoing' : 'connecting');
  refreshCallHeader();
  devices.refresh();
}

function startLocal() {
  if (!call || !call.cameraOn) return;
  trtc.startLocalView({ userID: me, videoViewDomID: viewId(me) })
    .catch((err) => notices.error('Local video', err));
}

function startRemote(userID) {
  const tile = tiles.tiles.get(userID);
  if (tile) tile.dataset.viewing = 'true';
  trtc.startRemoteView({ userID, videoViewDomID: viewId(userID) })
    .catch((err) => notices.error(`Video of ${userID}`, err));
}

function markConnected() {
  if (!call || call.connectedAt) return;
  call.connectedAt = Date.now();
  ringtone.stop();
  setCallState('connected');
  const tick = () => {
    if (call?.connectedAt) $('call-timer').textContent = formatDuration((Date.now() - call.connectedAt) / 1000);
  };
  tick();
  call.timer = setInterval(tick, 1000);
  refreshCallHeader();
}

/** A participant is in the call: show their tile with their video (rendered once it arrives). */
function joinParticipant(userID) {
  if (!call || userID === me) return;
  const tile = tiles.ensure(userID, { joined: true });
  if (!tile.dataset.viewing) startRemote(userID);
  tiles.setJoined(userID, true);
  // Until the peer reports its camera state, assume it matches the call type.
  if (!call.videoKnown.has(userID)) tiles.setVideo(userID, call.type === VIDEO);
  markConnected();
  refreshCallHeader();
}

/** Someone invited will not join (declined, busy, no answer); end a call nobody is left in. */
function dropInvitee(userID) {
  if (!call) return;
  const tile = tiles.tiles.get(userID);
  if (tile && tile.dataset.joined === 'false') tiles.remove(userID);
  refreshCallHeader();
  const othersLeft = [...tiles.tiles.keys()].some((id) => id !== me);
  if (!othersLeft) leaveCall();
}

/** Tears the call screen down and returns home; safe to call twice. */
function leaveCall(message, kind = 'ended') {
  ringtone.stop();
  if (call) {
    clearInterval(call.timer);
    for (const id of tiles.tiles.keys()) {
      if (id === me) trtc.stopLocalView({ userID: me }).catch(() => {});
      else trtc.stopRemoteView({ userID: id }).catch(() => {});
    }
    if (message && !call.outcomeShown) notices.show(kind, message);
    call = null;
  }
  tiles.clear();
  setCallState('idle');
  if (me) setScreen('home');
}

// ---------------------------------------------------------------- incoming dialog

function openIncoming(payload) {
  incoming = payload;
  const others = (payload.userIDList || []).filter((id) => id !== me && id !== payload.sponsor);
  paintAvatar($('incoming-avatar'), payload.sponsor);
  $('incoming-caller').textContent = payload.sponsor;
  $('incoming-type').textContent = `Incoming ${kindLabel(payload.inviteData?.callType).toLowerCase()}`;
  $('incoming-group').textContent = payload.isFromGroup
    ? (others.length ? `Group call with ${others.join(', ')}` : 'Group call')
    : '';
  $('incoming').hidden = false;
  setCallState('incoming');
  ringtone.start('incoming');
  $('btn-accept').focus();
}

function closeIncoming() {
  const was = incoming;
  incoming = null;
  $('incoming').hidden = true;
  ringtone.stop();
  if (!call) setCallState('idle');
  return was;
}

// ---------------------------------------------------------------- SDK events

const handlers = {
  [EVENT.INVITED](p) {
    if (incoming || call) return;
    openIncoming(p);
  },
  [EVENT.CALLING_CANCEL]({ sponsor }) {
    if (!incoming) return;
    closeIncoming();
    notices.show('cancelled', `${sponsor} cancelled the call`);
  },
  [EVENT.CALLING_TIMEOUT]({ sponsor }) {
    if (!incoming) return;
    closeIncoming();
    notices.show('timeout', `Missed call from ${sponsor}`);
  },
  [EVENT.USER_ACCEPT]({ userID }) {
    joinParticipant(userID);
  },
  [EVENT.USER_ENTER]({ userID }) {
    joinParticipant(userID);
  },
  [EVENT.USER_LEAVE]({ userID }) {
    if (!call || !tiles.has(userID)) return;
    trtc.stopRemoteView({ userID }).catch(() => {});
    tiles.remove(userID);
    refreshCallHeader();
    if (call.group) notices.show('left', `${userID} left the call`);
  },
  [EVENT.REJECT]({ userID }) {
    if (!call) return;
    notices.show('rejected', `${userID} declined the call`);
    call.outcomeShown = true;
    dropInvitee(userID);
  },
  [EVENT.LINE_BUSY]({ userID }) {
    if (!call) return;
    notices.show('busy', `${userID} is busy on another call`);
    call.outcomeShown = true;
    dropInvitee(userID);
  },
  [EVENT.NO_RESP]({ userID, userIDList }) {
    if (!call) return;
    const who = userIDList?.length ? userIDList : [userID];
    notices.show('noanswer', `No answer from ${who.join(', ')}`);
    call.outcomeShown = true;
    for (const id of who) dropInvitee(id);
  },
  [EVENT.GROUP_CALL_INVITEE_LIST_UPDATE]({ userIDList }) {
    if (!call) return;
    // Someone added people to our call: it is a group call from now on.
    if (userIDList?.length) call.group = true;
    const ringing = new Set(userIDList || []);
    for (const id of tiles.pending()) if (!ringing.has(id)) tiles.remove(id);
    for (const id of ringing) if (id !== me) tiles.ensure(id, { joined: false });
    refreshCallHeader();
  },
  [EVENT.CALL_END]({ userID, callEnd }) {
    if (incoming) closeIncoming();
    if (!call) return;
    const who = userID && userID !== me && !call.group ? ` — ${userID} hung up` : '';
    // The server counts whole seconds; a call shorter than one still shows it was connected.
    const seconds = callEnd > 0 ? callEnd : call.connectedAt ? (Date.now() - call.connectedAt) / 1000 : -1;
    const text = seconds >= 0 ? `Call ended · ${formatDuration(seconds)}${who}` : 'Call ended';
    leaveCall(text);
  },
  [EVENT.USER_VIDEO_AVAILABLE]({ userID, isVideoAvailable }) {
    if (!call) return;
    call.videoKnown.add(userID);
    tiles.setVideo(userID, isVideoAvailable);
  },
  [EVENT.USER_AUDIO_AVAILABLE]({ userID, isAudioAvailable }) {
    if (call) tiles.setAudio(userID, isAudioAvailable);
  },
  [EVENT.USER_VOICE_VOLUME]({ volumeMap }) {
    if (!call) return;
    for (const { userId, audioVolume } of volumeMap || []) tiles.setLevel(userId || me, audioVolume);
  },
  [EVENT.KICKED_OUT]() {
    closeIncoming();
    leaveCall();
    me = '';
    setScreen('login');
    notices.show('kicked', 'You signed in with this user ID somewhere else, so this tab was signed out.');
  },
  [EVENT.ERROR](p) {
    notices.error('Error', p);
  },
  // Extension events of this SDK: the connection to the server dropped and the SDK is getting
  // it back by itself; the call goes on meanwhile (its media is peer to peer).
  [EVENT.RECONNECTING ?? 'onReconnecting']({ attempt }) {
    document.body.dataset.connection = 'reconnecting';
    if (attempt === 1) notices.show('info', 'Connection lost — reconnecting…');
  },
  [EVENT.RECONNECTED ?? 'onReconnected']({ resumed }) {
    document.body.dataset.connection = 'online';
    notices.show('info', resumed ? 'Reconnected' : 'Reconnected (signed in again)');
  },
  // A participant's media stopped (their network) and came back.
  [EVENT.PEER_MEDIA_INTERRUPTED ?? 'onPeerMediaInterrupted']({ userID }) {
    if (call) notices.show('info', `${userID}'s connection is unstable…`);
  },
  [EVENT.PEER_MEDIA_RESTORED ?? 'onPeerMediaRestored']({ userID }) {
    if (call) notices.show('info', `${userID} is back`);
  },
  // Extension event of this SDK (not in trtc-calling-js): the 1:1 call changed mode.
  [EVENT.CALL_TYPE_CHANGED ?? 'onCallTypeChanged']({ callType }) {
    if (!call) return;
    call.type = callType;
    if (callType === AUDIO) {
      call.cameraOn = false;
      for (const id of tiles.tiles.keys()) tiles.setVideo(id, false);
      notices.show('info', 'Switched to an audio call');
    } else {
      call.cameraOn = true;
      tiles.setVideo(me, true);
      startLocal();
    }
    refreshCallHeader();
  },
};

// ---------------------------------------------------------------- user actions

async function signIn(event) {
  event.preventDefault();
  ringtone.unlock();
  const userID = $('login-user').value.trim();
  if (!USER_ID.test(userID)) {
    notices.show('error', 'A user ID is 1–32 letters, digits, - or _');
    return;
  }
  const button = event.submitter || $('login-form').querySelector('button');
  button.disabled = true;
  try {
    const { userSig } = await fetchJSON(`/dev/usersig?sdkAppID=${sdkAppID}&userID=${encodeURIComponent(userID)}`);
    await trtc.login({ userID, userSig });
    // `?quality=720p` (or any other setVideoQuality profile) picks the camera's resolution; from
    // 720p a group call through the SFU sends three simulcast layers instead of two.
    const quality = new URLSearchParams(location.search).get('quality');
    if (quality) await trtc.setVideoQuality(quality).catch((err) => notices.error('?quality', err));
    me = userID;
    sessionStorage.setItem('demo.userID', userID);
    $('me-name').textContent = userID;
    paintAvatar($('me-avatar'), userID);
    document.title = `${userID} — Calling`;
    $('last-event').textContent = '';
    setCallState('idle');
    setScreen('home');
    $('callee').focus();
  } catch (err) {
    notices.error('Sign-in failed', err);
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  try {
    await trtc.logout();
  } catch (err) {
    notices.error('Sign-out', err);
  }
  closeIncoming();
  leaveCall();
  me = '';
  document.title = 'Calling — trtc-calling-wasm demo';
  setScreen('login');
}

async function dial(event) {
  event.preventDefault();
  ringtone.unlock();
  const type = Number(event.submitter?.dataset.type || VIDEO);
  let ids;
  try {
    ids = parseUserIDs($('callee').value);
  } catch (err) {
    notices.show('error', err.message);
    return;
  }
  const group = ids.length > 1;
  enterCall({ role: 'caller', type, group, invitees: ids });
  try {
    if (group) await trtc.groupCall({ userIDList: ids, type });
    else await trtc.call({ userID: ids[0], type });
    if (!call) return; // already answered by a refusal that arrived first
    startLocal();
    if (!call.connectedAt) ringtone.start('outgoing');
  } catch (err) {
    leaveCall();
    notices.error('Could not start the call', err);
  }
}

async function accept() {
  const invitation = closeIncoming();
  if (!invitation) return;
  const type = invitation.inviteData?.callType === AUDIO ? AUDIO : VIDEO;
  enterCall({ role: 'callee', type, group: invitation.isFromGroup, members: [invitation.sponsor] });
  try {
    const res = await trtc.accept();
    if (!call) return;
    if (!res) {
      leaveCall('The call is no longer available', 'cancelled');
      return;
    }
    if (res.callType) call.type = res.callType;
    call.cameraOn = CAN_PUBLISH && call.type === VIDEO;
    tiles.setVideo(me, call.cameraOn);
    startLocal();
    refreshCallHeader();
  } catch (err) {
    leaveCall();
    notices.error('Could not answer', err);
  }
}

async function reject() {
  if (!closeIncoming()) return;
  try {
    await trtc.reject();
  } catch (err) {
    notices.error('Could not decline', err);
  }
}

async function hangup() {
  if (!call) return;
  const connected = Boolean(call.connectedAt);
  const seconds = connected ? (Date.now() - call.connectedAt) / 1000 : 0;
  try {
    await trtc.hangup();
  } catch (err) {
    notices.error('Hang-up', err);
  }
  leaveCall(connected ? `Call ended · ${formatDuration(seconds)}` : 'Call cancelled');
}

async function toggleMic() {
  if (!call) return;
  const mute = !call.micMuted;
  try {
    await trtc.setMicMute(mute);
    if (!call) return;
    call.micMuted = mute;
    tiles.setAudio(me, !mute);
    refreshCallHeader();
  } catch (err) {
    notices.error('Microphone', err);
  }
}

async function toggleCamera() {
  if (!call) return;
  const on = !call.cameraOn;
  try {
    if (on) await trtc.openCamera();
    else await trtc.closeCamera();
    if (!call) return;
    call.cameraOn = on;
    tiles.setVideo(me, on);
    if (on) startLocal();
    refreshCallHeader();
  } catch (err) {
    notices.error('Camera', err);
  }
}

async function switchToAudio() {
  try {
    await trtc.switchToAudioCall();
  } catch (err) {
    notices.error('Switch to audio', err);
  }
}

async function inviteMore(event) {
  event.preventDefault();
  if (!call) return;
  let ids;
  try {
    ids = parseUserIDs($('invite-input').value).filter((id) => !tiles.has(id));
  } catch (err) {
    notices.show('error', err.message);
    return;
  }
  if (!ids.length) return;
  try {
    await trtc.groupCall({ userIDList: ids, type: call.type });
    call.group = true;
    for (const id of ids) tiles.ensure(id, { joined: false });
    $('invite-input').value = '';
    $('devices').hidden = true;
    $('btn-settings').setAttribute('aria-expanded', 'false');
    refreshCallHeader();
  } catch (err) {
    notices.error('Could not invite', err);
  }
}

function toggleDevices() {
  const panel = $('devices');
  panel.hidden = !panel.hidden;
  $('btn-settings').setAttribute('aria-expanded', String(!panel.hidden));
  if (!panel.hidden) devices.refresh();
}

// ---------------------------------------------------------------- start-up

async function boot() {
  if (!CAN_PUBLISH) $('insecure-warning').hidden = false;
  const params = new URLSearchParams(location.search);
  $('login-user').value = params.get('user') || sessionStorage.getItem('demo.userID') || '';
  try {
    ({ sdkAppID } = await fetchJSON('/dev/config'));
  } catch (err) {
    $('loading-text').textContent = `This demo signs in with development UserSigs, but the server does not offer them (${err.message}). Start calling-server without --app to use the demo.`;
    return;
  }
  trtc = new TRTCCalling({ SDKAppID: sdkAppID });
  // `?debug` in the address shows the SDK's debug log in the browser console.
  if (params.has('debug')) trtc.setLogLevel(-1);
  for (const [name, handler] of Object.entries(handlers)) {
    trtc.on(name, (payload) => {
      if (name !== EVENT.USER_VOICE_VOLUME) heard.push({ name, userID: payload?.userID, code: payload?.code, resumed: payload?.resumed, at: Date.now() });
      handler(payload);
    });
  }

  $('login-form').addEventListener('submit', signIn);
  $('logout').addEventListener('click', signOut);
  $('dial-form').addEventListener('submit', dial);
  $('btn-accept').addEventListener('click', accept);
  $('btn-reject').addEventListener('click', reject);
  $('btn-hangup').addEventListener('click', hangup);
  $('btn-mic').addEventListener('click', toggleMic);
  $('btn-camera').addEventListener('click', toggleCamera);
  $('btn-audio-only').addEventListener('click', switchToAudio);
  $('btn-settings').addEventListener('click', toggleDevices);
  $('btn-add').addEventListener('click', toggleDevices);
  $('invite-form').addEventListener('submit', inviteMore);
  // Closing the tab mid-call: the server notices within its heartbeat anyway, but a clean
  // logout tells the other side at once.
  window.addEventListener('pagehide', () => { if (me) trtc.logout().catch(() => {}); });

  setCallState('idle');
  setScreen('login');
  $('login-user').focus();
}

boot();
