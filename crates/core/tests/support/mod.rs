//! Scenario harness: several [`Session`]s talking through the real registry of calling-server
//! (behind [`socket::Server`], its socket layer in miniature) with a fake browser each
//! ([`browser::FakeBrowser`]). Every input goes through one FIFO queue, like frames on sockets
//! and browser callbacks on an event loop, so runs are deterministic and a test can assert the
//! exact events each app saw. Ids are the registry's deterministic ones: rooms 1, 2, …,
//! invitations "invite-1", "invite-2", ….
//!
//! Sessions are resumable, as with the current server (a [`World::legacy`] one offers no
//! resume). A test can drop a client's socket ([`World::drop_socket`]), break it silently
//! so that frames in flight either way are lost ([`World::cut`], then
//! [`World::notice_close`]), keep the network down so new sockets fail
//! ([`Client::network`]), and move time past a grace ([`World::expire_until`]).

#![allow(dead_code)]

pub mod browser;
pub mod socket;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use calling_core::{
    AppEvent, Command, Effect, Input, PeerEvent, PeerState, Reply, RequestId, SdkError, Session,
    Timer,
};
use calling_protocol::{CallType, ClientMessage, ServerMessage};

use browser::FakeBrowser;
use socket::Server;

/// The room of the first call in a [`World`] (the registry's ids count up from 1).
pub const FIRST_ROOM: calling_protocol::RoomId = 1;

/// Inputs a run may process before the harness calls it a livelock.
const MAX_STEPS: usize = 10_000;

pub struct Client {
    pub user: String,
    pub call: Session,
    pub events: Vec<AppEvent>,
    pub replies: BTreeMap<RequestId, Result<Reply, SdkError>>,
    pub browser: FakeBrowser,
    pub socket_open: bool,
    pub timers: HashSet<Timer>,
    /// Every timer started, with its delay, in order.
    pub timer_log: Vec<(Timer, u32)>,
    /// Whether a new socket can be opened (`OpenSignaling` succeeds).
    pub network: bool,
    /// How many new sockets the client asked for.
    pub opens: u32,
    /// When each running timer fires (`now_ms` at its start plus its delay).
    pub due: HashMap<Timer, u64>,
}

pub struct World {
    pub now_ms: u64,
    pub server: Server,
    pub clients: Vec<Client>,
    queue: VecDeque<(usize, Input)>,
    next_request: RequestId,
}

impl World {
    pub fn new() -> Self {
        Self::with_server(Server::new())
    }

    /// A world whose server does not resume sessions (as before resumption existed).
    pub fn legacy() -> Self {
        let mut server = Server::new();
        server.offers_resume = false;
        Self::with_server(server)
    }

    pub fn with_server(server: Server) -> Self {
        World {
            now_ms: 1_000_000,
            server,
            clients: Vec::new(),
            queue: VecDeque::new(),
            next_request: 0,
        }
    }

    /// A new SDK instance for `user` (not logged in yet).
    pub fn client(&mut self, user: &str) -> usize {
        // A fixed seed per client: the same reconnect waits every run.
        let seed = 1 + self.clients.len() as u64;
        self.clients.push(Client {
            user: user.to_owned(),
            call: Session::with_seed(seed),
            events: Vec::new(),
            replies: BTreeMap::new(),
            browser: FakeBrowser::new(user),
            socket_open: true,
            timers: HashSet::new(),
            timer_log: Vec::new(),
            network: true,
            opens: 0,
            due: HashMap::new(),
        });
        self.clients.len() - 1
    }

    /// A client for `user`, logged in, with its login events cleared.
    pub fn logged_in(&mut self, user: &str) -> usize {
        let c = self.client(user);
        let request = self.command(c, login(user));
        self.run();
        assert!(matches!(
            self.reply(c, request),
            Some(Ok(Reply::Login { .. }))
        ));
        self.take_events(c);
        c
    }

    /// Logged-in clients for each user.
    pub fn users<const N: usize>(users: [&str; N]) -> (Self, [usize; N]) {
        World::new().with_users(users)
    }

    /// Logged-in clients for each user, in this world.
    pub fn with_users<const N: usize>(mut self, users: [&str; N]) -> (Self, [usize; N]) {
        let ids = users.map(|u| self.logged_in(u));
        (self, ids)
    }

    /// Runs an app method at once (as the glue does); its promise settles in `replies`.
    pub fn command(&mut self, client: usize, command: Command) -> RequestId {
        self.next_request += 1;
        let request = self.next_request;
        let input = Input::Command { request, command };
        if let Err(err) = self.handle(client, input) {
            self.clients[client]
                .replies
                .insert(request, Err(err.into()));
        }
        request
    }

    /// Puts an input at the end of the queue.
    pub fn inject(&mut self, client: usize, input: Input) {
        self.queue.push_back((client, input));
    }

    /// Takes the client's queued inputs matching `pick` out of the queue (to deliver later).
    pub fn take_queued(&mut self, client: usize, pick: impl Fn(&Input) -> bool) -> Vec<Input> {
        let (taken, kept) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|(c, input)| *c == client && pick(input));
        self.queue = kept;
        taken.into_iter().map(|(_, input)| input).collect()
    }

    pub fn peer_event(&mut self, client: usize, user: &str, event: PeerEvent) {
        self.inject(
            client,
            Input::Peer {
                user_id: user.to_owned(),
                event,
            },
        );
    }

    /// Processes queued inputs until nothing is left.
    pub fn run(&mut self) {
        for _ in 0..MAX_STEPS {
            let Some((client, input)) = self.queue.pop_front() else {
                return;
            };
            if let Err(err) = self.handle(client, input.clone()) {
                panic!("non-command input refused: {input:?}: {err:?}");
            }
        }
        panic!("no quiescence after {MAX_STEPS} inputs");
    }

    /// Processes only the next queued input.
    pub fn step(&mut self) -> bool {
        let Some((client, input)) = self.queue.pop_front() else {
            return false;
        };
        if let Err(err) = self.handle(client, input.clone()) {
            panic!("non-command input refused: {input:?}: {err:?}");
        }
        true
    }

    pub fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
    }

    /// Fires a timer the client started.
    pub fn fire(&mut self, client: usize, timer: Timer) {
        assert!(
            self.clients[client].timers.remove(&timer),
            "{timer:?} not running"
        );
        self.clients[client].due.remove(&timer);
        self.inject(client, Input::Timer(timer));
        self.run();
    }

    /// Time moves on by `ms`, every timer firing when it is due, as on the browsers' event
    /// loops: timers of every client due at the same moment all fire before anything they
    /// cause is delivered (nothing crosses the network in no time).
    pub fn elapse(&mut self, ms: u64) {
        let end = self.now_ms + ms;
        while let Some(at) = self
            .clients
            .iter()
            .flat_map(|c| c.due.values().copied())
            .filter(|at| *at <= end)
            .min()
        {
            self.now_ms = self.now_ms.max(at);
            for c in 0..self.clients.len() {
                let mut fired: Vec<Timer> = self.clients[c]
                    .due
                    .iter()
                    .filter(|(_, due)| **due <= at)
                    .map(|(timer, _)| *timer)
                    .collect();
                fired.sort_by_key(|timer| format!("{timer:?}"));
                for timer in fired {
                    self.clients[c].due.remove(&timer);
                    self.clients[c].timers.remove(&timer);
                    self.inject(c, Input::Timer(timer));
                }
            }
            self.run();
        }
        self.now_ms = end;
    }

    /// The network path between two clients' connections breaks: neither connection is
    /// connected any more and each browser reports `disconnected` (signaling is unaffected).
    pub fn cut_path(&mut self, a: usize, b: usize) {
        for (from, to) in [(a, b), (b, a)] {
            self.sever(from, to);
            let user = self.clients[to].user.clone();
            self.peer_event(
                from,
                &user,
                PeerEvent::ConnectionState(PeerState::Disconnected),
            );
        }
        self.run();
    }

    /// `from`'s connection to `to` loses its path, before its browser notices.
    pub fn sever(&mut self, from: usize, to: usize) {
        let user = self.clients[to].user.clone();
        let peer = self.clients[from].browser.peers.get_mut(&user);
        let peer = peer.expect("a connection to cut");
        peer.reachable = false;
        peer.connected = false;
    }

    /// The path between two clients works again; the connections need an ICE restart to
    /// find it (as after a change of network).
    pub fn mend(&mut self, a: usize, b: usize) {
        for (from, to) in [(a, b), (b, a)] {
            let user = self.clients[to].user.clone();
            if let Some(peer) = self.clients[from].browser.peers.get_mut(&user) {
                peer.reachable = true;
            }
        }
    }

    /// The path comes back before anyone restarted and ICE finds it by itself: both
    /// connections report `connected` again.
    pub fn recover(&mut self, a: usize, b: usize) {
        self.mend(a, b);
        for (from, to) in [(a, b), (b, a)] {
            let user = self.clients[to].user.clone();
            if let Some(peer) = self.clients[from].browser.peers.get_mut(&user) {
                peer.connected = true;
            }
            self.peer_event(
                from,
                &user,
                PeerEvent::ConnectionState(PeerState::Connected),
            );
        }
        self.run();
    }

    /// Time moves on to the earliest ring deadline and the server times out what rang.
    pub fn ring_timeout(&mut self) {
        let deliveries = self.ring_deadline_passes();
        self.deliver(deliveries);
        self.run();
    }

    /// Time moves on to the earliest ring deadline; returns what the server's timeout sends,
    /// not delivered yet.
    pub fn ring_deadline_passes(&mut self) -> Vec<socket::Delivery> {
        let deadline = self.server.next_deadline_ms().expect("nothing rings");
        self.now_ms = self.now_ms.max(deadline);
        self.server.expire(self.now_ms)
    }

    /// Time moves on to `now_ms` and the server ends whatever rang or waited for a resume
    /// until then; what it sends is delivered.
    pub fn expire_until(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        let deliveries = self.server.expire(self.now_ms);
        self.deliver(deliveries);
        self.run();
    }

    /// The client's socket drops and both ends notice: the server keeps a resumable session
    /// for a resume (ends any other); the client hears the socket close, and reconnects if
    /// its network lets it.
    pub fn drop_socket(&mut self, client: usize) {
        self.cut(client);
        self.notice_close(client);
    }

    /// The client's socket breaks silently: the server notices (and suspends a resumable
    /// session), the client does not yet. Messages on their way to the client are lost, and
    /// so is whatever it sends until it notices ([`World::notice_close`]).
    pub fn cut(&mut self, client: usize) {
        self.clients[client].socket_open = false;
        let deliveries = self.server.drop_connection(client, self.now_ms);
        self.deliver(deliveries);
        self.take_queued(client, |input| server_message(input).is_some());
    }

    /// The client notices its socket is gone.
    pub fn notice_close(&mut self, client: usize) {
        self.inject(client, Input::SignalingClosed);
        self.run();
    }

    /// The client's network comes back and the page says so (`online`).
    pub fn online(&mut self, client: usize) {
        self.clients[client].network = true;
        self.inject(client, Input::NetworkOnline);
        self.run();
    }

    pub fn reply(&self, client: usize, request: RequestId) -> Option<&Result<Reply, SdkError>> {
        self.clients[client].replies.get(&request)
    }

    pub fn take_events(&mut self, client: usize) -> Vec<AppEvent> {
        std::mem::take(&mut self.clients[client].events)
    }

    pub fn browser(&self, client: usize) -> &FakeBrowser {
        &self.clients[client].browser
    }

    /// Everything went as a browser allows (no out-of-order SDP or ICE call).
    pub fn assert_browsers_clean(&self) {
        for c in &self.clients {
            assert!(
                c.browser.errors.is_empty(),
                "{}: {:?}",
                c.user,
                c.browser.errors
            );
        }
    }

    /// Queues server messages for their clients (a closed socket receives nothing).
    pub fn deliver(&mut self, deliveries: Vec<socket::Delivery>) {
        for (to, input) in deliveries {
            if self.clients[to].socket_open {
                self.queue.push_back((to, input));
            }
        }
    }

    fn handle(&mut self, client: usize, input: Input) -> Result<(), calling_core::CallError> {
        let now = self.now_ms;
        if let Input::Peer {
            user_id,
            event: PeerEvent::RemoteDescriptionApplied,
        } = &input
        {
            self.clients[client].browser.description_applied(user_id);
        }
        let effects = self.clients[client].call.handle(now, input)?;
        for effect in effects {
            self.apply(client, effect);
        }
        self.media_flow();
        Ok(())
    }

    /// Media arrives on a connection (its remote track unmutes) once it is connected and the
    /// other side sends on its own connection back: a live track, attached.
    fn media_flow(&mut self) {
        let mut arrived = Vec::new();
        for (c, client) in self.clients.iter().enumerate() {
            for (user, peer) in &client.browser.peers {
                if !peer.connected || peer.media_arrived {
                    continue;
                }
                // Any instance of that user (a kicked one and its new login share the name).
                let sends = self.clients.iter().filter(|o| o.user == *user).any(|o| {
                    o.browser.sends_to(&client.user)
                        && o.browser
                            .peers
                            .get(&client.user)
                            .is_some_and(|p| p.connected)
                });
                if sends {
                    arrived.push((c, user.clone()));
                }
            }
        }
        for (c, user) in arrived {
            if let Some(peer) = self.clients[c].browser.peers.get_mut(&user) {
                peer.media_arrived = true;
            }
            self.queue.push_back((
                c,
                Input::Peer {
                    user_id: user,
                    event: PeerEvent::RemoteMedia,
                },
            ));
        }
    }

    fn apply(&mut self, client: usize, effect: Effect) {
        let now = self.now_ms;
        let c = &mut self.clients[client];
        match effect {
            Effect::Send(message) => {
                if c.socket_open {
                    let deliveries = self.server.receive(client, message, now);
                    self.deliver(deliveries);
                }
            }
            Effect::Emit(event) => c.events.push(event),
            Effect::Resolve { request, reply } => {
                assert!(
                    c.replies.insert(request, Ok(reply)).is_none(),
                    "settled twice"
                );
            }
            Effect::Reject { request, error } => {
                assert!(
                    c.replies.insert(request, Err(error)).is_none(),
                    "settled twice"
                );
            }
            Effect::StartTimer { timer, after_ms } => {
                c.timers.insert(timer);
                c.timer_log.push((timer, after_ms));
                c.due.insert(timer, now + u64::from(after_ms));
            }
            Effect::CancelTimer(timer) => {
                c.timers.remove(&timer);
                c.due.remove(&timer);
            }
            Effect::Disconnect => {
                c.socket_open = false;
                let deliveries = self.server.disconnect(client, now);
                self.deliver(deliveries);
            }
            Effect::OpenSignaling => {
                // The old socket is dead; a new one opens if the network lets it.
                c.opens += 1;
                c.socket_open = false;
                let outcome = if c.network {
                    c.socket_open = true;
                    Input::SignalingOpened
                } else {
                    Input::SignalingClosed
                };
                let deliveries = self.server.drop_connection(client, now);
                self.deliver(deliveries);
                self.queue.push_back((client, outcome));
            }
            other => {
                for input in c.browser.apply(other) {
                    self.queue.push_back((client, input));
                }
            }
        }
    }
}

/// The server message an input carries, sequenced or not.
pub fn server_message(input: &Input) -> Option<&ServerMessage> {
    match input {
        Input::Server(message) | Input::Sequenced { message, .. } => Some(message),
        _ => None,
    }
}

pub fn login(user: &str) -> Command {
    Command::Login {
        sdk_app_id: 1_400_000_000,
        user_id: user.to_owned(),
        user_sig: "sig".into(),
    }
}

/// alice calls bob with `call_type`; bob accepts. Events so far are cleared.
pub fn connected(call_type: CallType) -> (World, usize, usize) {
    connected_in(World::new(), call_type)
}

/// [`connected`], in a world of one's choice.
pub fn connected_in(w: World, call_type: CallType) -> (World, usize, usize) {
    let (mut w, [a, b]) = w.with_users(["alice", "bob"]);
    w.command(a, call("bob", call_type));
    w.run();
    w.command(b, Command::Accept);
    w.run();
    w.take_events(a);
    w.take_events(b);
    (w, a, b)
}

pub fn call(user: &str, call_type: CallType) -> Command {
    Command::Call {
        user_id: user.to_owned(),
        call_type,
    }
}

pub fn group(users: &[&str], call_type: CallType) -> Command {
    Command::GroupCall {
        user_ids: users.iter().map(|u| u.to_string()).collect(),
        call_type,
        group_id: Some("team".into()),
    }
}

pub fn user_enter(user: &str) -> AppEvent {
    AppEvent::UserEnter {
        user_id: user.into(),
    }
}

pub fn user_leave(user: &str) -> AppEvent {
    AppEvent::UserLeave {
        user_id: user.into(),
    }
}

pub fn user_accept(user: &str) -> AppEvent {
    AppEvent::UserAccept {
        user_id: user.into(),
    }
}

pub fn call_end(user: &str, secs: u32) -> AppEvent {
    AppEvent::CallEnd {
        user_id: user.into(),
        call_end: secs,
    }
}

pub fn audio(user: &str, on: bool) -> AppEvent {
    AppEvent::UserAudioAvailable {
        user_id: user.into(),
        is_audio_available: on,
    }
}

pub fn video(user: &str, on: bool) -> AppEvent {
    AppEvent::UserVideoAvailable {
        user_id: user.into(),
        is_video_available: on,
    }
}

/// The events of a 1:1 video call between alice (`a`, the caller) and bob (`b`) connecting:
/// alice learns that bob accepted, then each side gets the other's media with its state.
pub fn assert_video_connect_events(w: &mut World, a: usize, b: usize) {
    assert_eq!(
        w.take_events(a),
        vec![
            user_accept("bob"),
            user_enter("bob"),
            audio("bob", true),
            video("bob", true)
        ]
    );
    assert_eq!(
        w.take_events(b),
        vec![
            user_enter("alice"),
            audio("alice", true),
            video("alice", true)
        ]
    );
}

pub fn reconnecting(attempt: u32) -> AppEvent {
    AppEvent::Reconnecting { attempt }
}

pub fn reconnected(resumed: bool) -> AppEvent {
    AppEvent::Reconnected { resumed }
}

/// How many of the frames `client` sent that reached the server match `pick`.
pub fn frames_received(w: &World, client: usize, pick: impl Fn(&ClientMessage) -> bool) -> usize {
    let frames = w.server.received.get(&client).into_iter().flatten();
    frames.filter(|m| pick(m)).count()
}

pub fn ok0() -> Reply {
    Reply::Ok { code: 0 }
}
