//! A real SMTP server, on 127.0.0.1 and a random port, for letterpress's
//! integration tests.
//!
//! letterpress hands its messages to a relay through its own SMTP client
//! (`letterpress::delivery::smtp`). What matters most in a mailer is what
//! happens when the receiving server does not simply say `250`: hard bounces,
//! throttling, greylisting, a server restarting under a pool of sessions, a
//! connection dying half-way through a message, a server that goes silent.
//! Mocking the network would only test our own assumptions about what servers
//! do, so this crate speaks enough ESMTP over real TCP for any client, records
//! everything it receives, and misbehaves exactly when told to (see
//! [`Behaviour`]).
//!
//! Two ways to run it:
//! - [`SmtpServer::start`] inside a `#[tokio::test]`, on the test's runtime;
//! - [`SmtpServer::start_in_background`] from a plain `#[test]` (for example
//!   one that runs the letterpress binary as a child process): the server
//!   gets its own runtime on its own thread.
//!
//! Either way the handle is an [`SmtpServer`]; dropping it stops the server.
//!
//! ```
//! use std::time::Duration;
//! use letterpress_testkit::{Behaviour, Reply, SmtpServer};
//!
//! let server = SmtpServer::start_in_background(
//!     Behaviour::new().rcpt_reply("bounce@example.com", Reply::user_unknown()),
//! );
//! let url = server.url(); // "smtp://127.0.0.1:PORT", to hand to the mailer
//! assert!(url.starts_with("smtp://127.0.0.1:"));
//! // ... run the mailer, then:
//! // let messages = server.wait_for_messages_blocking(2, Duration::from_secs(10))?;
//! assert_eq!(server.message_count(), 0);
//! assert!(server.incidents().is_empty());
//! ```
//!
//! # What the server does, and what letterpress makes of it
//!
//! Pinned by letterpress's `tests/it/testkit_server.rs`. "Client" is what
//! `Session` reports (an `SmtpError`); "outcome" is what `SmtpRelay`, which
//! pools sessions, bounds each step with a timeout and classifies the error,
//! tells the send loop: **permanent** (the recipient fails and is never
//! retried), **refused** (the message was refused: the recipient fails, unless
//! ten in a row get the same refusal, which stops the run and puts them back),
//! **transient** (deferred and retried later; enough of them in a row with no
//! delivery stop the run as "relay unreachable"), **uncertain** (the whole
//! message was handed over and no answer came: maybe delivered, never sent
//! again unless asked), or **stop** (nothing can be sent this run: it stops at
//! once and no recipient is marked).
//!
//! | misbehaviour | the server | client | outcome |
//! | --- | --- | --- | --- |
//! | [`Behaviour::rcpt_reply`] with a 5xx | answers RCPT with it | `Rejected(reply, Rcpt)`; the session stays usable | permanent |
//! | [`Behaviour::mail_reply`] with a 5xx | answers MAIL with it | `Rejected(reply, Mail)` | stop: it is about the sender |
//! | [`Behaviour::data_reply`] with a 5xx | answers the end of DATA with it | `Rejected(reply, DataEnd)` | refused |
//! | any of them with a 4xx | the same | the same | transient |
//! | [`Behaviour::max_rate`] exceeded | `454` (Amazon SES's throttling) at the end of DATA | `Rejected(454, DataEnd)` | transient |
//! | a message above [`Behaviour::max_size`] | `552` at the end of DATA: our client declares no `SIZE`, so the whole message comes first | `Rejected(552, DataEnd)` | refused |
//! | [`Behaviour::shutdown_after`], new connection | `421` as the greeting, then hangs up | `Rejected(421, Greeting)` | transient |
//! | the same on an open session | `421` to the next command, then hangs up | `Rejected(421, Mail)`, the session marked unusable | transient; the session is dropped |
//! | [`Behaviour::drop_in_data`], [`DropStyle::Close`] | FIN after the message's first line, no reply | `Unconfirmed`: the message had been written whole into the socket | uncertain |
//! | [`DropStyle::Reset`] | RST instead | `Unconfirmed`, or `Io(BrokenPipe)` if a write was still under way | uncertain, or transient |
//! | nobody listening ([`RefusingPort`]) | | `Connect { .. }`, "Connection refused" | transient |
//! | a connect that never completes ([`BlackholePort`]) | | `Connect { .. }`, "timed out" after the command timeout | transient |
//! | [`Behaviour::stall`] before the final dot | goes quiet; what the client pipelined is answered afterwards | `Timeout { step }` after the command timeout | a short stall is latency; a long one is transient and the session is dropped |
//! | the same at [`Stage::DataEnd`] | keeps the whole message even if the client gives up | `Unconfirmed` after the final reply's timeout | uncertain (and indeed delivered) |
//! | [`Behaviour::auth`], wrong password | `535` | `Rejected(535, Auth)` | stop |
//! | credentials, but no AUTH offered | | `NoAuth` | stop |
//! | [`Behaviour::auth`], no credentials given | `530` to every MAIL | `Rejected(530, Mail)` | stop: it is about us |
//!
//! Why letterpress does not use lettre's transport for this is pinned by
//! `tests/why_not_lettre.rs`.
//!
//! Set `LETTERPRESS_TESTKIT_LOG=1` to echo the SMTP conversation to stderr;
//! it is always available afterwards from [`SmtpServer::transcript`].

mod base64;
mod behaviour;
mod record;
mod session;

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

pub use behaviour::{Behaviour, DropStyle, Reply, Stage, Target};
pub use record::{
    AuthAttempt, CommandCounts, Incident, IncidentKind, ReceivedMessage, WaitTimeout,
};

/// How many transcript lines are kept; older ones are discarded so that a
/// long soak test cannot grow the transcript without bound.
const TRANSCRIPT_LIMIT: usize = 20_000;

/// A running SMTP server. Dropping it stops the server and closes every
/// connection it has open.
pub struct SmtpServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _runner: Runner,
}

impl SmtpServer {
    /// Starts a server on the current tokio runtime.
    ///
    /// # Panics
    /// If no port can be bound on 127.0.0.1 (see [`SmtpServer::try_start`]),
    /// or outside a tokio runtime.
    pub async fn start(behaviour: Behaviour) -> SmtpServer {
        Self::try_start(behaviour)
            .await
            .expect("letterpress-testkit: could not start the SMTP server")
    }

    pub async fn try_start(behaviour: Behaviour) -> io::Result<SmtpServer> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(behaviour));
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(SmtpServer {
            shared,
            addr,
            _runner: Runner::Task(task),
        })
    }

    /// Starts a server on a runtime of its own, on a thread of its own, for
    /// tests that are not async themselves (or whose runtime is busy
    /// blocking on a child process). Can be called from anywhere, including
    /// from inside another runtime.
    ///
    /// # Panics
    /// If no port can be bound or the thread cannot be started.
    pub fn start_in_background(behaviour: Behaviour) -> SmtpServer {
        Self::try_start_in_background(behaviour)
            .expect("letterpress-testkit: could not start the background SMTP server")
    }

    pub fn try_start_in_background(behaviour: Behaviour) -> io::Result<SmtpServer> {
        // Bind here rather than on the server thread so that the port is
        // known, and bind errors are reported, before this returns.
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        // One thread is plenty for a test server and spares the 2-core CI box.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let shared = Arc::new(Shared::new(behaviour));
        let (stop, stopped) = oneshot::channel::<()>();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("testkit-smtp-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(error) => {
                            thread_shared.log(0, format!("! cannot use listener: {error}"));
                            return;
                        }
                    };
                    tokio::select! {
                        () = accept_loop(listener, Arc::clone(&thread_shared)) => {}
                        // Fires on an explicit stop and when the sender is dropped.
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime here cancels every connection task.
            })?;
        Ok(SmtpServer {
            shared,
            addr,
            _runner: Runner::Thread {
                stop: Some(stop),
                thread: Some(thread),
            },
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Always `127.0.0.1`.
    pub fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    /// `smtp://127.0.0.1:PORT` (plain SMTP, no TLS), as
    /// `LETTERPRESS_SMTP_URL` takes it.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Replaces the behaviour from now on, for connections already open too.
    /// Rule counters ("first K times") and the message count that
    /// [`Behaviour::shutdown_after`] compares with start again from zero.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        let mut state = self.shared.lock();
        state.behaviour = behaviour;
        state.accepted_before_behaviour = state.accepted_total;
    }

    /// The behaviour in force, with its rule counters as they stand.
    pub fn behaviour(&self) -> Behaviour {
        self.shared.lock().behaviour.clone()
    }

    /// Every message accepted so far, in the order they were accepted.
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        self.shared.lock().messages.clone()
    }

    pub fn message_count(&self) -> usize {
        self.shared.lock().messages.len()
    }

    /// Waits until at least `n` messages have been accepted, then returns all
    /// of them. Works on any runtime, including from a test whose server runs
    /// in the background.
    pub async fn wait_for_messages(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<ReceivedMessage>, WaitTimeout> {
        let mut count = self.shared.message_count.subscribe();
        match tokio::time::timeout(timeout, count.wait_for(|count| *count >= n)).await {
            Ok(Ok(_)) => Ok(self.messages()),
            _ => Err(WaitTimeout {
                wanted: n,
                received: self.message_count(),
                waited: timeout,
            }),
        }
    }

    /// Blocking version of [`SmtpServer::wait_for_messages`], for plain
    /// `#[test]`s. Do not call it on the runtime thread that serves the
    /// server (e.g. inside a current-thread `#[tokio::test]` with
    /// [`SmtpServer::start`]): the server could not make progress.
    pub fn wait_for_messages_blocking(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<ReceivedMessage>, WaitTimeout> {
        let state = self.shared.lock();
        let (state, _) = self
            .shared
            .message_added
            .wait_timeout_while(state, timeout, |state| state.messages.len() < n)
            .unwrap_or_else(PoisonError::into_inner);
        if state.messages.len() >= n {
            Ok(state.messages.clone())
        } else {
            Err(WaitTimeout {
                wanted: n,
                received: state.messages.len(),
                waited: timeout,
            })
        }
    }

    /// How many TCP connections the server has accepted.
    pub fn connections_opened(&self) -> usize {
        self.shared.lock().connections_opened
    }

    /// The client's address on connection `connection` (numbered from 1).
    pub fn client_addr(&self, connection: u64) -> Option<SocketAddr> {
        let index = usize::try_from(connection).ok()?.checked_sub(1)?;
        self.shared.lock().clients.get(index).copied()
    }

    /// Whether the client's end of connection `connection` has `TCP_NODELAY`
    /// set, that is Nagle's algorithm off. Only the client knows that, so this
    /// works for a client in this same process whose socket is still open (it
    /// looks the socket up among the process's file descriptors), on Linux;
    /// `None` otherwise.
    pub fn client_nodelay(&self, connection: u64) -> Option<bool> {
        own_socket_nodelay(self.client_addr(connection)?)
    }

    /// Every AUTH attempt, in order.
    pub fn auth_attempts(&self) -> Vec<AuthAttempt> {
        self.shared.lock().auth_attempts.clone()
    }

    /// How many of each command the server has received.
    pub fn commands(&self) -> CommandCounts {
        self.shared.lock().commands
    }

    /// Refusals, deliberate drops and stalls, and abandoned messages, in order.
    pub fn incidents(&self) -> Vec<Incident> {
        self.shared.lock().incidents.clone()
    }

    /// The conversation so far, one line per command or reply, prefixed with
    /// the connection number: `C1 > MAIL FROM:<a@example.com>`,
    /// `C1 < 250 2.1.0 OK`. Message contents are summarised, not included.
    pub fn transcript(&self) -> Vec<String> {
        self.shared.lock().transcript.iter().cloned().collect()
    }

    /// Forgets the recorded messages, incidents, AUTH attempts, command
    /// counts and transcript (not the behaviour, nor its counters), so that
    /// one server can serve several phases of a test.
    pub fn clear(&self) {
        let mut state = self.shared.lock();
        state.messages.clear();
        state.incidents.clear();
        state.auth_attempts.clear();
        state.commands = CommandCounts::default();
        state.transcript.clear();
        self.shared.message_count.send_replace(0);
    }
}

impl std::fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpServer")
            .field("addr", &self.addr)
            .finish()
    }
}

enum Runner {
    Task(tokio::task::JoinHandle<()>),
    Thread {
        stop: Option<oneshot::Sender<()>>,
        thread: Option<std::thread::JoinHandle<()>>,
    },
}

impl Drop for Runner {
    fn drop(&mut self) {
        match self {
            // Aborting the accept loop drops its JoinSet, which aborts every
            // connection task with it.
            Runner::Task(task) => task.abort(),
            Runner::Thread { stop, thread } => {
                if let Some(stop) = stop.take() {
                    // The server thread may already be gone; nothing to do then.
                    let _ = stop.send(());
                }
                if let Some(thread) = thread.take() {
                    // Joining makes "dropped" mean "port closed". A panic on
                    // that thread was already reported by the panic hook.
                    let _ = thread.join();
                }
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Replies are written whole; Nagle would only add latency.
                    let _ = stream.set_nodelay(true);
                    let id = shared.open_connection(peer);
                    shared.log(id, format!("* connection from {peer}"));
                    connections.spawn(session::serve(Arc::clone(&shared), stream, id));
                }
                Err(error) => {
                    // Usually running out of file descriptors; back off
                    // rather than spin, and keep serving.
                    shared.log(0, format!("! accept failed: {error}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reap finished connections so the set does not grow forever.
            Some(finished) = connections.join_next(), if !connections.is_empty() => {
                if let Err(error) = finished
                    && error.is_panic()
                {
                    shared.log(0, format!("! a connection task panicked: {error}"));
                }
            }
        }
    }
}

/// State shared between the handle and the connection tasks.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Signalled on every accepted message, for the blocking wait.
    message_added: Condvar,
    /// The number of accepted messages, for the async wait.
    message_count: watch::Sender<usize>,
    echo_to_stderr: bool,
}

pub(crate) struct State {
    pub(crate) behaviour: Behaviour,
    /// `accepted_total` when the current behaviour was installed.
    pub(crate) accepted_before_behaviour: usize,
    /// Unlike `messages.len()`, not reset by `clear()`.
    pub(crate) accepted_total: usize,
    /// When recent messages were accepted, for the rate limit.
    pub(crate) recent_accepts: VecDeque<Instant>,
    pub(crate) messages: Vec<ReceivedMessage>,
    pub(crate) incidents: Vec<Incident>,
    pub(crate) auth_attempts: Vec<AuthAttempt>,
    pub(crate) commands: CommandCounts,
    pub(crate) connections_opened: usize,
    /// Each connection's client address, in the order they were accepted.
    pub(crate) clients: Vec<SocketAddr>,
    pub(crate) transcript: VecDeque<String>,
}

impl Shared {
    fn new(behaviour: Behaviour) -> Self {
        Shared {
            state: Mutex::new(State {
                behaviour,
                accepted_before_behaviour: 0,
                accepted_total: 0,
                recent_accepts: VecDeque::new(),
                messages: Vec::new(),
                incidents: Vec::new(),
                auth_attempts: Vec::new(),
                commands: CommandCounts::default(),
                connections_opened: 0,
                clients: Vec::new(),
                transcript: VecDeque::new(),
            }),
            message_added: Condvar::new(),
            message_count: watch::Sender::new(0),
            echo_to_stderr: std::env::var_os("LETTERPRESS_TESTKIT_LOG").is_some(),
        }
    }

    /// Locks the state. A panic while the lock was held cannot leave it
    /// inconsistent in a way that matters to a test server, so a poisoned
    /// lock is used as is rather than taking every connection down with it.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a new connection and returns its number (from 1).
    fn open_connection(&self, client: SocketAddr) -> u64 {
        let mut state = self.lock();
        state.connections_opened += 1;
        state.clients.push(client);
        state.connections_opened as u64
    }

    pub(crate) fn log(&self, connection: u64, line: impl Into<String>) {
        let line = format!("C{connection} {}", line.into());
        if self.echo_to_stderr {
            eprintln!("[testkit smtp] {line}");
        }
        let mut state = self.lock();
        if state.transcript.len() >= TRANSCRIPT_LIMIT {
            state.transcript.pop_front();
        }
        state.transcript.push_back(line);
    }

    /// Records an accepted message and wakes both kinds of waiters.
    pub(crate) fn accept_message(&self, state: &mut State, message: ReceivedMessage) {
        state.messages.push(message);
        state.accepted_total += 1;
        state.recent_accepts.push_back(Instant::now());
        self.message_count.send_replace(state.messages.len());
        self.message_added.notify_all();
    }
}

/// `TCP_NODELAY` of this process's own TCP socket whose local address is `addr`.
#[cfg(target_os = "linux")]
fn own_socket_nodelay(addr: SocketAddr) -> Option<bool> {
    use std::os::fd::{BorrowedFd, RawFd};

    for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<RawFd>() else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        if !is_socket {
            continue;
        }
        // SAFETY: the descriptor was open a moment ago and is only duplicated,
        // never used or closed itself. Should another thread close it in the
        // meantime, duplicating fails or copies whatever took its number, which
        // the address check then rejects; closing the copy leaves the original
        // alone.
        let Ok(copy) = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned() else {
            continue;
        };
        let socket = std::net::TcpStream::from(copy);
        if socket.local_addr().ok() == Some(addr) {
            return socket.nodelay().ok();
        }
    }
    None
}

#[cfg(not(target_os = "linux"))]
fn own_socket_nodelay(_addr: SocketAddr) -> Option<bool> {
    None
}

/// A port on 127.0.0.1 where connections are refused, for testing "the SMTP
/// server is down". The port stays reserved (bound, never listening) for as
/// long as this value lives, so no other test can start listening on it.
#[derive(Debug)]
pub struct RefusingPort {
    _socket: TcpSocket,
    addr: SocketAddr,
}

impl RefusingPort {
    /// # Panics
    /// If no port can be bound.
    pub fn new() -> RefusingPort {
        Self::try_new().expect("letterpress-testkit: could not reserve a port")
    }

    pub fn try_new() -> io::Result<RefusingPort> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let addr = socket.local_addr()?;
        Ok(RefusingPort {
            _socket: socket,
            addr,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }
}

impl Default for RefusingPort {
    fn default() -> Self {
        Self::new()
    }
}

/// A port on 127.0.0.1 where TCP connects hang: the listener's accept queue
/// is full and nobody ever accepts, so the kernel drops new SYNs. For testing
/// a relay that never answers at all: the connect fails only after the
/// kernel's retries, minutes later, so what ends the attempt is the caller's
/// own timeout (letterpress's `SmtpRelay`).
#[derive(Debug)]
pub struct BlackholePort {
    _listener: std::net::TcpListener,
    /// Connections that fill the accept queue; kept open on purpose.
    _queued: Vec<std::net::TcpStream>,
    addr: SocketAddr,
}

impl BlackholePort {
    /// Takes up to a few hundred milliseconds (it probes until the queue is full).
    ///
    /// # Panics
    /// If no port can be bound.
    pub fn new() -> BlackholePort {
        Self::try_new().expect("letterpress-testkit: could not set up a blackhole port")
    }

    pub fn try_new() -> io::Result<BlackholePort> {
        // tokio's TcpSocket is the dependency-free way to pick the backlog,
        // but listening registers the socket with a runtime. Use the current
        // one if there is one, a throwaway one otherwise; `into_std`
        // deregisters it again either way.
        let listen = || -> io::Result<std::net::TcpListener> {
            let socket = TcpSocket::new_v4()?;
            socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
            socket.listen(0)?.into_std()
        };
        let listener = match tokio::runtime::Handle::try_current() {
            Ok(_) => listen()?,
            Err(_) => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()?;
                let _entered = runtime.enter();
                listen()?
            }
        };
        let addr = listener.local_addr()?;
        // With a backlog of 0 Linux still queues one connection; probe until
        // a connect no longer completes, i.e. the queue is full.
        let mut queued = Vec::new();
        for _ in 0..16 {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
                Ok(stream) => queued.push(stream),
                Err(error) if error.kind() == io::ErrorKind::TimedOut => {
                    return Ok(BlackholePort {
                        _listener: listener,
                        _queued: queued,
                        addr,
                    });
                }
                Err(error) => return Err(error),
            }
        }
        Err(io::Error::other("the accept queue never filled up"))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }
}

impl Default for BlackholePort {
    fn default() -> Self {
        Self::new()
    }
}
