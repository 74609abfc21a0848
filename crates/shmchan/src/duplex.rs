//! Request/response over a pair of byte channels, with correlation ids.
//!
//! A [`Client`] sends requests on one byte channel and receives responses on another; a
//! [`Server`] does the opposite. Each message starts with an 8-byte id (little endian): the
//! client numbers its requests, the server copies the id into the response, and the client
//! matches responses to requests — so a client can keep several requests in flight
//! ([`Client::send_request`] / [`Client::recv_response`]), and a response to a call that
//! timed out is recognised and dropped instead of being taken for the next call's answer.
//!
//! One duplex connects one client with one server. A server process that serves several
//! clients holds one [`Server`] per client (a thread each, or one event loop over their
//! [`Receiver::doorbell_fd`]s, or async tasks with the `tokio` feature); see the `rpc` example.
//!
//! ```
//! use std::time::Duration;
//! use shmchan::duplex::{Client, Server};
//! use shmchan::{Backing, Bytes, Channel};
//!
//! let requests = Channel::<Bytes>::builder().max_message(256).backing(Backing::anonymous()).create()?;
//! let responses = Channel::<Bytes>::builder().max_message(256).backing(Backing::anonymous()).create()?;
//! let mut client = Client::new(requests.sender()?, responses.receiver()?);
//! let mut server = Server::new(requests.receiver()?, responses.sender()?);
//!
//! let id = client.send_request(b"ping").unwrap();
//! // The server answers in place: the request is read from shared memory and the response
//! // written into its slot, with no copy in between.
//! server
//!     .serve_one(|req, resp| {
//!         assert_eq!(req, b"ping");
//!         resp[..4].copy_from_slice(b"pong");
//!         4
//!     })
//!     .unwrap();
//! assert_eq!(client.recv_response(Duration::from_secs(1)).unwrap(), (id, b"pong".to_vec()));
//! # Ok::<(), shmchan::OpenError>(())
//! ```

use std::fmt;
use std::time::{Duration, Instant};

use crate::endpoint::{Bytes, SendBytesError};
use crate::error::{RecvError, RecvTimeoutError};
use crate::{Receiver, Sender};

/// Bytes of correlation id in front of every request and response.
pub const ID_LEN: usize = 8;

/// Why a request/response operation failed.
///
/// ```
/// use shmchan::duplex::CallError;
/// let e = CallError::TooLong { len: 300, max: 248 };
/// assert_eq!(e.to_string(), "a payload of 300 bytes exceeds the duplex's maximum of 248 bytes");
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
#[non_exhaustive]
pub enum CallError {
    /// The payload is longer than the channel's maximum message minus the id.
    TooLong {
        /// The payload's length.
        len: usize,
        /// The longest payload the channel carries.
        max: usize,
    },
    /// No answer (or no room to send) before the deadline.
    Timeout,
    /// The peer is gone.
    Disconnected,
    /// A message was shorter than its id, or a channel failed validation.
    Corrupted,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::TooLong { len, max } => write!(
                f,
                "a payload of {len} bytes exceeds the duplex's maximum of {max} bytes"
            ),
            CallError::Timeout => f.write_str("timed out waiting for the peer"),
            CallError::Disconnected => f.write_str("the peer is gone"),
            CallError::Corrupted => f.write_str("a malformed message or a corrupted channel"),
        }
    }
}

impl std::error::Error for CallError {}

fn from_send(e: SendBytesError) -> CallError {
    match e {
        SendBytesError::TooLong { len, max } => CallError::TooLong {
            len: len.saturating_sub(ID_LEN),
            max: max.saturating_sub(ID_LEN),
        },
        SendBytesError::Full | SendBytesError::Timeout => CallError::Timeout,
        SendBytesError::Disconnected => CallError::Disconnected,
        _ => CallError::Corrupted,
    }
}

fn from_recv(e: RecvTimeoutError) -> CallError {
    match e {
        RecvTimeoutError::Timeout => CallError::Timeout,
        RecvTimeoutError::Disconnected => CallError::Disconnected,
        _ => CallError::Corrupted,
    }
}

/// Writes `id` then `payload` into a reserved slot of the sender; commits it.
fn send_with_id(
    tx: &mut Sender<Bytes>,
    id: u64,
    payload: &[u8],
    deadline: Option<Instant>,
) -> Result<(), CallError> {
    let len = ID_LEN + payload.len();
    let mut slot = match deadline {
        None => tx.reserve(len),
        Some(d) => tx.reserve_timeout(len, d.saturating_duration_since(Instant::now())),
    }
    .map_err(from_send)?;
    slot[..ID_LEN].copy_from_slice(&id.to_le_bytes());
    slot[ID_LEN..].copy_from_slice(payload);
    slot.commit();
    Ok(())
}

fn split_id(msg: &[u8]) -> Option<(u64, &[u8])> {
    let (id, rest) = msg.split_first_chunk::<ID_LEN>()?;
    Some((u64::from_le_bytes(*id), rest))
}

/// The requesting side of a duplex.
///
/// ```
/// # use std::time::Duration;
/// # use shmchan::{Bytes, Channel, duplex::{Client, Server}};
/// # let (q, r) = (Channel::<Bytes>::builder().create()?, Channel::<Bytes>::builder().create()?);
/// # let mut server = Server::new(q.receiver()?, r.sender()?);
/// let mut client = Client::new(q.sender()?, r.receiver()?);
/// # std::thread::scope(|s| {
/// # s.spawn(move || server.serve_one(|req, resp| { resp[..req.len()].copy_from_slice(req); req.len() }));
/// let answer = client.call(b"echo", Duration::from_secs(5)).unwrap();
/// assert_eq!(answer, b"echo");
/// # });
/// # Ok::<(), shmchan::OpenError>(())
/// ```
#[derive(Debug)]
pub struct Client {
    tx: Sender<Bytes>,
    rx: Receiver<Bytes>,
    next_id: u64,
    buf: Vec<u8>,
}

impl Client {
    /// A client that sends requests on `requests` and reads responses from `responses`.
    ///
    /// ```
    /// # use shmchan::{Bytes, Channel, duplex::Client};
    /// # let (q, r) = (Channel::<Bytes>::builder().create()?, Channel::<Bytes>::builder().create()?);
    /// let client = Client::new(q.sender()?, r.receiver()?);
    /// assert_eq!(client.max_payload(), shmchan::DEFAULT_MAX_MESSAGE - 8);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn new(requests: Sender<Bytes>, responses: Receiver<Bytes>) -> Client {
        Client {
            tx: requests,
            rx: responses,
            next_id: 1,
            buf: Vec::new(),
        }
    }

    /// The longest request payload (the request channel's maximum message minus the id).
    ///
    /// ```
    /// # use shmchan::{Bytes, Channel, duplex::Client};
    /// # let q = Channel::<Bytes>::builder().max_message(64).create()?;
    /// # let r = Channel::<Bytes>::builder().create()?;
    /// let client = Client::new(q.sender()?, r.receiver()?);
    /// assert_eq!(client.max_payload(), 56);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn max_payload(&self) -> usize {
        self.tx.max_message().saturating_sub(ID_LEN)
    }

    /// Sends a request (waiting for room) and returns its id; the response carries the same
    /// id. Several requests may be in flight.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmchan::{Bytes, Channel, duplex::{Client, Server}};
    /// # let (q, r) = (Channel::<Bytes>::builder().create()?, Channel::<Bytes>::builder().create()?);
    /// # let (mut client, mut server) = (Client::new(q.sender()?, r.receiver()?), Server::new(q.receiver()?, r.sender()?));
    /// let a = client.send_request(b"a").unwrap();
    /// let b = client.send_request(b"b").unwrap(); // pipelined
    /// for _ in 0..2 { server.serve_one(|req, resp| { resp[0] = req[0].to_ascii_uppercase(); 1 }).unwrap(); }
    /// assert_eq!(client.recv_response(Duration::from_secs(1)).unwrap(), (a, b"A".to_vec()));
    /// assert_eq!(client.recv_response(Duration::from_secs(1)).unwrap(), (b, b"B".to_vec()));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn send_request(&mut self, payload: &[u8]) -> Result<u64, CallError> {
        let id = self.next_id;
        send_with_id(&mut self.tx, id, payload, None)?;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        Ok(id)
    }

    /// Receives the next response, waiting at most `timeout`: its id and payload.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmchan::{Bytes, Channel, duplex::{CallError, Client}};
    /// # let (q, r) = (Channel::<Bytes>::builder().create()?, Channel::<Bytes>::builder().create()?);
    /// # let (_srv_rx, _srv_tx) = (q.receiver()?, r.sender()?);
    /// let mut client = Client::new(q.sender()?, r.receiver()?);
    /// let r = client.recv_response(Duration::from_millis(5));
    /// assert_eq!(r, Err(CallError::Timeout)); // nobody answered
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn recv_response(&mut self, timeout: Duration) -> Result<(u64, Vec<u8>), CallError> {
        self.recv_response_until(Instant::now() + timeout)
    }

    fn recv_response_until(&mut self, deadline: Instant) -> Result<(u64, Vec<u8>), CallError> {
        self.rx
            .recv_into_deadline(&mut self.buf, deadline)
            .map_err(from_recv)?;
        let (id, payload) = split_id(&self.buf).ok_or(CallError::Corrupted)?;
        Ok((id, payload.to_vec()))
    }

    /// Sends a request and waits at most `timeout` (in all) for its response. Responses to
    /// earlier requests (a call that timed out, or pipelined ones) are dropped on the way; do
    /// not mix `call` with unanswered [`send_request`](Self::send_request)s whose responses
    /// you still want.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmchan::{Bytes, Channel, duplex::{Client, Server}};
    /// # let (q, r) = (Channel::<Bytes>::builder().create()?, Channel::<Bytes>::builder().create()?);
    /// # let mut server = Server::new(q.receiver()?, r.sender()?);
    /// # let t = std::thread::spawn(move || while server.serve_one(|req, resp| { resp[0] = req[0] + 1; 1 }).is_ok() {});
    /// let mut client = Client::new(q.sender()?, r.receiver()?);
    /// assert_eq!(client.call(&[1], Duration::from_secs(5)).unwrap(), [2]);
    /// assert_eq!(client.call(&[41], Duration::from_secs(5)).unwrap(), [42]);
    /// drop(client); // the server sees Disconnected and stops
    /// # t.join().unwrap();
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn call(&mut self, payload: &[u8], timeout: Duration) -> Result<Vec<u8>, CallError> {
        let deadline = Instant::now() + timeout;
        let id = self.next_id;
        send_with_id(&mut self.tx, id, payload, Some(deadline))?;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        loop {
            let (got, body) = self.recv_response_until(deadline)?;
            if got == id {
                return Ok(body);
            }
        }
    }
}

/// A request as the server received it.
///
/// ```
/// let r = shmchan::duplex::Request { id: 7, payload: b"hi".to_vec() };
/// assert_eq!(r.id, 7);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The correlation id to answer with.
    pub id: u64,
    /// The request's bytes.
    pub payload: Vec<u8>,
}

/// The answering side of a duplex.
///
/// ```
/// # use std::time::Duration;
/// # use shmchan::{Bytes, Channel, duplex::{Client, Server}};
/// # let (q, r) = (Channel::<Bytes>::builder().create()?, Channel::<Bytes>::builder().create()?);
/// # let mut client = Client::new(q.sender()?, r.receiver()?);
/// let mut server = Server::new(q.receiver()?, r.sender()?);
/// let id = client.send_request(b"question").unwrap();
/// let req = server.recv_request().unwrap(); // the copying form
/// server.respond(req.id, b"answer").unwrap();
/// assert_eq!(client.recv_response(Duration::from_secs(1)).unwrap(), (id, b"answer".to_vec()));
/// # Ok::<(), shmchan::OpenError>(())
/// ```
#[derive(Debug)]
pub struct Server {
    rx: Receiver<Bytes>,
    tx: Sender<Bytes>,
    buf: Vec<u8>,
}

impl Server {
    /// A server that reads requests from `requests` and answers on `responses`.
    ///
    /// ```
    /// # use shmchan::{Bytes, Channel, duplex::Server};
    /// # let (q, r) = (Channel::<Bytes>::builder().create()?, Channel::<Bytes>::builder().max_message(72).create()?);
    /// let server = Server::new(q.receiver()?, r.sender()?);
    /// assert_eq!(server.max_payload(), 64);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn new(requests: Receiver<Bytes>, responses: Sender<Bytes>) -> Server {
        Server {
            rx: requests,
            tx: responses,
            buf: Vec::new(),
        }
    }

    /// The longest response payload.
    ///
    /// ```
    /// # use shmchan::{Bytes, Channel, duplex::Server};
    /// # let (q, r) = (Channel::<Bytes>::builder().create()?, Channel::<Bytes>::builder().create()?);
    /// let server = Server::new(q.receiver()?, r.sender()?);
    /// assert_eq!(server.max_payload(), shmchan::DEFAULT_MAX_MESSAGE - 8);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn max_payload(&self) -> usize {
        self.tx.max_message().saturating_sub(ID_LEN)
    }

    /// Receives the next request (copied out), waiting while there is none; `Disconnected`
    /// once the client is gone.
    ///
    /// ```
    /// # use shmchan::{Bytes, Channel, RecvError, duplex::{Client, Server}};
    /// # let (q, r) = (Channel::<Bytes>::builder().create()?, Channel::<Bytes>::builder().create()?);
    /// # let mut server = Server::new(q.receiver()?, r.sender()?);
    /// let client = Client::new(q.sender()?, r.receiver()?);
    /// drop(client);
    /// assert_eq!(server.recv_request().err(), Some(shmchan::duplex::CallError::Disconnected));
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn recv_request(&mut self) -> Result<Request, CallError> {
        self.rx.recv_into(&mut self.buf).map_err(|e| match e {
            RecvError::Disconnected => CallError::Disconnected,
            _ => CallError::Corrupted,
        })?;
        let (id, payload) = split_id(&self.buf).ok_or(CallError::Corrupted)?;
        Ok(Request {
            id,
            payload: payload.to_vec(),
        })
    }

    /// Answers request `id` with a copy of `payload` (waiting for room).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmchan::{Bytes, Channel, duplex::{Client, Server}};
    /// # let (q, r) = (Channel::<Bytes>::builder().create()?, Channel::<Bytes>::builder().create()?);
    /// # let (mut client, mut server) = (Client::new(q.sender()?, r.receiver()?), Server::new(q.receiver()?, r.sender()?));
    /// let id = client.send_request(b"x").unwrap();
    /// let req = server.recv_request().unwrap();
    /// server.respond(req.id, b"y").unwrap();
    /// assert_eq!(client.recv_response(Duration::from_secs(1)).unwrap().0, id);
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn respond(&mut self, id: u64, payload: &[u8]) -> Result<(), CallError> {
        send_with_id(&mut self.tx, id, payload, None)
    }

    /// Serves one request in place: waits for a request, reserves a response slot of
    /// [`max_payload`](Self::max_payload) bytes, and calls `handler(request, response)`,
    /// which writes the response into `response` and returns its length (at most
    /// `response.len()`). Neither message is copied.
    ///
    /// A handler that returns more than `response.len()` gets [`CallError::TooLong`] and the
    /// response is not sent (nothing is truncated silently); the request is consumed either
    /// way, as it is when it is malformed (shorter than its id: [`CallError::Corrupted`]).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmchan::{Bytes, Channel, duplex::{CallError, Client, Server}};
    /// # let (q, r) = (Channel::<Bytes>::builder().create()?, Channel::<Bytes>::builder().create()?);
    /// # let (mut client, mut server) = (Client::new(q.sender()?, r.receiver()?), Server::new(q.receiver()?, r.sender()?));
    /// client.send_request(b"len?").unwrap();
    /// server.serve_one(|req, resp| {
    ///     resp[..8].copy_from_slice(&(req.len() as u64).to_le_bytes());
    ///     8
    /// }).unwrap();
    /// let (_, body) = client.recv_response(Duration::from_secs(1)).unwrap();
    /// assert_eq!(body, 4u64.to_le_bytes());
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn serve_one(
        &mut self,
        handler: impl FnOnce(&[u8], &mut [u8]) -> usize,
    ) -> Result<(), CallError> {
        self.serve_until(None, handler)
    }

    /// [`serve_one`](Self::serve_one) that waits at most `timeout` in all: when no request
    /// came in time it returns [`CallError::Timeout`] with nothing consumed; when a request
    /// came but the response found no room in time, the request is consumed and the result is
    /// `Timeout` too.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmchan::{Bytes, Channel, duplex::{CallError, Client, Server}};
    /// # let (q, r) = (Channel::<Bytes>::builder().create()?, Channel::<Bytes>::builder().create()?);
    /// # let (_client, mut server) = (Client::new(q.sender()?, r.receiver()?), Server::new(q.receiver()?, r.sender()?));
    /// let r = server.serve_one_timeout(Duration::from_millis(5), |_, _| 0);
    /// assert_eq!(r, Err(CallError::Timeout)); // no request came
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn serve_one_timeout(
        &mut self,
        timeout: Duration,
        handler: impl FnOnce(&[u8], &mut [u8]) -> usize,
    ) -> Result<(), CallError> {
        self.serve_until(Some(Instant::now() + timeout), handler)
    }

    fn serve_until(
        &mut self,
        deadline: Option<Instant>,
        handler: impl FnOnce(&[u8], &mut [u8]) -> usize,
    ) -> Result<(), CallError> {
        let max = self.tx.max_message();
        let req = match deadline {
            None => self.rx.peek().map_err(|e| match e {
                RecvError::Disconnected => CallError::Disconnected,
                _ => CallError::Corrupted,
            }),
            Some(d) => self
                .rx
                .peek_timeout(d.saturating_duration_since(Instant::now()))
                .map_err(from_recv),
        }?;
        let (id, payload) = split_id(&req).ok_or(CallError::Corrupted)?;
        let mut slot = match deadline {
            None => self.tx.reserve(max),
            Some(d) => self
                .tx
                .reserve_timeout(max, d.saturating_duration_since(Instant::now())),
        }
        .map_err(from_send)?;
        slot[..ID_LEN].copy_from_slice(&id.to_le_bytes());
        let n = handler(payload, &mut slot[ID_LEN..]);
        if n > max - ID_LEN {
            return Err(CallError::TooLong {
                len: n,
                max: max - ID_LEN,
            });
        }
        slot.set_len(ID_LEN + n).map_err(from_send)?;
        slot.commit();
        drop(req);
        Ok(())
    }

    /// The request receiver, e.g. for its [`doorbell_fd`](Receiver::doorbell_fd) in an event
    /// loop.
    ///
    /// ```
    /// # use shmchan::{Bytes, Channel, duplex::Server};
    /// # let (q, r) = (Channel::<Bytes>::builder().create()?, Channel::<Bytes>::builder().create()?);
    /// let server = Server::new(q.receiver()?, r.sender()?);
    /// assert!(server.requests().is_empty());
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn requests(&self) -> &Receiver<Bytes> {
        &self.rx
    }
}
