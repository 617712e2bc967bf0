// Type declarations of trtc-calling-wasm: the TRTCCalling class of trtc-calling-js 1.x.

/** `TRTCCalling.EVENT`: event keys and the string values listeners register with. */
export interface TRTCCallingEvent {
  readonly SDK_READY: 'sdkReady';
  readonly INVITED: 'onInvited';
  readonly USER_ACCEPT: 'onUserAccept';
  readonly REJECT: 'onReject';
  readonly LINE_BUSY: 'onLineBusy';
  readonly NO_RESP: 'onNoResp';
  readonly CALLING_CANCEL: 'onCallingCancel';
  readonly CALLING_TIMEOUT: 'onCallingTimeout';
  readonly USER_ENTER: 'onUserEnter';
  readonly USER_LEAVE: 'onUserLeave';
  readonly CALL_END: 'onCallEnd';
  readonly CALLING_END: 'onCallEnd';
  readonly USER_VIDEO_AVAILABLE: 'onUserVideoAvailable';
  readonly USER_AUDIO_AVAILABLE: 'onUserAudioAvailable';
  readonly USER_VOICE_VOLUME: 'onUserVoiceVolume';
  readonly GROUP_CALL_INVITEE_LIST_UPDATE: 'onGroupCallInviteeListUpdate';
  readonly KICKED_OUT: 'onKickedOut';
  /** Extension: the 1:1 call switched between audio and video. */
  readonly CALL_TYPE_CHANGED: 'onCallTypeChanged';
  /** Extension: the camera or microphone in use went away and another one replaced it. */
  readonly DEVICE_CHANGED: 'onDeviceChanged';
  /** Extension: the signaling connection was lost; the SDK is getting it back by itself. */
  readonly RECONNECTING: 'onReconnecting';
  /** Extension: the signaling connection is back (`resumed: false`: logged in again). */
  readonly RECONNECTED: 'onReconnected';
  /** Extension: the media connection to a participant dropped; ICE restarts are under way. */
  readonly PEER_MEDIA_INTERRUPTED: 'onPeerMediaInterrupted';
  /** Extension: the media connection to that participant is back. */
  readonly PEER_MEDIA_RESTORED: 'onPeerMediaRestored';
  readonly ERROR: 'onError';
}

/** `TRTCCalling.CALL_TYPE`, with the reverse mapping from number to name. */
export interface TRTCCallingCallType {
  readonly UNKNOWN: 0;
  readonly AUDIO_CALL: 1;
  readonly VIDEO_CALL: 2;
  readonly 0: 'UNKNOWN';
  readonly 1: 'AUDIO_CALL';
  readonly 2: 'VIDEO_CALL';
}

/** 1 audio, 2 video. */
export type CallType = 1 | 2;

export interface TRTCCallingOptions {
  SDKAppID: number;
  /** Accepted and ignored (trtc-calling-js took an IM instance). */
  tim?: unknown;
  /** WebSocket URL of calling-server; default `ws(s)://<page host>/ws`. */
  signalingUrl?: string;
  /** STUN/TURN servers; default: those the server hands out at login. */
  iceServers?: RTCIceServer[];
  /** `'relay'`: every connection uses TURN relay candidates only. Default `'all'`. */
  iceTransportPolicy?: 'all' | 'relay';
  /**
   * Connect while an invitation rings (default `true`). With a TURN server the ringing callee
   * reveals only the relay's address; without one, `false` keeps the callee's addresses from
   * its caller until `accept()`.
   */
  preconnect?: boolean;
}

export interface SdkReadyPayload { userID: string }
export interface InviteData { version: number; callType: CallType; roomID: number; callEnd: 0 }
export interface InvitedPayload {
  sponsor: string;
  userIDList: string[];
  isFromGroup: boolean;
  inviteData: InviteData;
  inviteID: string;
}
export interface UserAcceptPayload { userID: string }
export interface RejectPayload { userID: string }
export interface LineBusyPayload { userID: string; sponsor: string }
export interface NoRespPayload { userID: string; sponsor: string; userIDList: string[] }
export interface CallingCancelPayload { inviteID: string; sponsor: string }
export interface CallingTimeoutPayload { inviteID: string; sponsor: string }
export interface UserEnterPayload { userID: string }
export interface UserLeavePayload { userID: string }
/** `callEnd`: seconds the call was connected (0 if never). */
export interface CallEndPayload { userID: string; callEnd: number }
export interface UserVideoAvailablePayload { userID: string; isVideoAvailable: boolean }
export interface UserAudioAvailablePayload { userID: string; isAudioAvailable: boolean }
export interface UserVoiceVolumePayload { volumeMap: { userId: string; audioVolume: number }[] }
export interface GroupCallInviteeListUpdatePayload { userIDList: string[] }
export type KickedOutPayload = Record<string, never>;
export interface CallTypeChangedPayload { callType: CallType }
/** `reason` is `'deviceLost'`: the device in use disappeared (its track ended or it left the list). */
export interface DeviceChangedPayload {
  deviceType: 'video' | 'audio';
  deviceId: string;
  label: string;
  reason: 'deviceLost';
}
/**
 * `attempt`: 1, 2, … (one event per attempt to get the connection back). A planned move (the
 * server is restarting and asked the SDK to reconnect) emits it only if the move fails.
 */
export interface ReconnectingPayload { attempt: number }
/**
 * `resumed: true`: the session went on as if nothing happened (what was missed was delivered).
 * `resumed: false`: the server had ended the session, so the SDK logged in again; a call in
 * progress ended first (its `CALL_END` came before this).
 */
export interface ReconnectedPayload { resumed: boolean }
export interface PeerMediaPayload { userID: string }
export interface ErrorPayload { code: number; msg: string }

/** Payload type of each event string. */
export interface TRTCCallingEventMap {
  sdkReady: SdkReadyPayload;
  onInvited: InvitedPayload;
  onUserAccept: UserAcceptPayload;
  onReject: RejectPayload;
  onLineBusy: LineBusyPayload;
  onNoResp: NoRespPayload;
  onCallingCancel: CallingCancelPayload;
  onCallingTimeout: CallingTimeoutPayload;
  onUserEnter: UserEnterPayload;
  onUserLeave: UserLeavePayload;
  onCallEnd: CallEndPayload;
  onUserVideoAvailable: UserVideoAvailablePayload;
  onUserAudioAvailable: UserAudioAvailablePayload;
  onUserVoiceVolume: UserVoiceVolumePayload;
  onGroupCallInviteeListUpdate: GroupCallInviteeListUpdatePayload;
  onKickedOut: KickedOutPayload;
  onCallTypeChanged: CallTypeChangedPayload;
  onDeviceChanged: DeviceChangedPayload;
  onReconnecting: ReconnectingPayload;
  onReconnected: ReconnectedPayload;
  onPeerMediaInterrupted: PeerMediaPayload;
  onPeerMediaRestored: PeerMediaPayload;
  onError: ErrorPayload;
}

/** A rejected promise's reason: an Error, with a numeric code where SPEC §5 defines one. */
export interface TRTCCallingError extends Error { code?: number }

export type VideoQuality = '240p' | '360p' | '480p' | '720p' | '1080p';
export type CallStatus = 'idle' | 'calling' | 'connected';

export interface LoginResult { code: 0; data: { userID: string } }
export interface CallResult { code: 0; inviteID: string; roomID: number; userID: string }
export interface GroupCallResult { code: 0; inviteID: string; roomID: number; groupID?: string }
export interface AcceptResult { code: 0; roomID: number; callType: CallType }
export interface CodeResult { code: 0 }

export declare class TRTCCalling {
  constructor(options: TRTCCallingOptions);
  static readonly EVENT: TRTCCallingEvent;
  static readonly CALL_TYPE: TRTCCallingCallType;

  on<K extends keyof TRTCCallingEventMap>(
    eventName: K, callback: (payload: TRTCCallingEventMap[K]) => void, context?: unknown): void;
  on(eventName: string, callback: (payload: any) => void, context?: unknown): void;
  off<K extends keyof TRTCCallingEventMap>(
    eventName: K, callback: (payload: TRTCCallingEventMap[K]) => void, context?: unknown): void;
  off(eventName: string, callback: (payload: any) => void, context?: unknown): void;
  /** 0 normal … 4 none, -1 debug. */
  setLogLevel(level: number): void;

  login(options: { userID: string; userSig: string }): Promise<LoginResult>;
  logout(): Promise<CodeResult>;
  call(options: { userID: string; type: CallType; offlinePushInfo?: unknown; timeout?: number }): Promise<CallResult>;
  groupCall(options: { userIDList: string[]; type: CallType; groupID?: string; offlinePushInfo?: unknown }): Promise<GroupCallResult>;
  /** Resolves `undefined` when nothing is pending. */
  accept(...ignored: unknown[]): Promise<AcceptResult | undefined>;
  /** Resolves `undefined` when nothing is pending. */
  reject(...ignored: unknown[]): Promise<CodeResult | undefined>;
  hangup(): Promise<CodeResult | { code: 0; msg: 'ok' }>;
  startLocalView(options: { userID: string; videoViewDomID: string }): Promise<CodeResult>;
  stopLocalView(options?: { userID: string; videoViewDomID?: string }): Promise<CodeResult>;
  startRemoteView(options: { userID: string; videoViewDomID: string }): Promise<CodeResult>;
  stopRemoteView(options: { userID: string; videoViewDomID?: string }): Promise<CodeResult>;
  openCamera(): Promise<CodeResult>;
  closeCamera(): Promise<CodeResult>;
  setMicMute(isMute: boolean): Promise<CodeResult>;
  setVideoQuality(profile: VideoQuality): Promise<CodeResult>;
  switchToAudioCall(): Promise<CodeResult>;
  switchToVideoCall(): Promise<CodeResult>;
  getCameras(): Promise<MediaDeviceInfo[]>;
  getMicrophones(): Promise<MediaDeviceInfo[]>;
  switchDevice(options: { deviceType: 'video' | 'audio'; deviceId: string }): Promise<CodeResult>;

  getCallStatus(): CallStatus;
  /** 0 when there is no call. */
  getCallType(): 0 | CallType;
  isInviter(): boolean;
  isGroupCall(): boolean;
  getInviteeList(): string[];
  getUserID(): string | undefined;
}

export default TRTCCalling;
