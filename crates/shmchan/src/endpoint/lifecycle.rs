//! What endpoints do when their peers come and go: the rule an endpoint follows once every
//! peer has left ([`WhenPeersLeave`]), and the record of how the last peer left
//! ([`Departure`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::table::Left;

/// What an endpoint's calls do once every peer that was here has left (every sender, for a
/// receiver; every receiver, for a sender).
///
/// Disconnection is an event, not a state: whatever the rule, a peer that attaches later makes
/// the channel live again, and the records it sends reach a receiver that is still waiting or
/// that calls again. Before any peer has attached, calls wait (a channel whose other side has
/// not started yet is not disconnected).
///
/// | | [`Disconnect`](WhenPeersLeave::Disconnect) (the default) | [`Wait`](WhenPeersLeave::Wait) |
/// |---|---|---|
/// | receiver, last sender left | drains what was committed, then `Disconnected` (each call, until a sender attaches) | drains, then waits for the next sender (`try_recv`: `Empty`) |
/// | sender, last receiver left | `Disconnected`, the record comes back | sends while there is room, then waits for the next receiver (`try_send`: `Full`) |
/// | `iter()` | ends when the senders have left and the ring is drained | runs across sender restarts; ends only on an error |
/// | use for | a one-shot pipeline (crossbeam-channel's rule) | a restartable pipeline, a log, a service |
///
/// ```
/// use shmchan::{Channel, TryRecvError, WhenPeersLeave};
///
/// let chan = Channel::<u32>::builder().create()?;
/// let mut rx = chan.receiver()?;
/// let mut tx = chan.sender()?;
/// tx.send(1).unwrap();
/// drop(tx); // the producer stops...
/// assert_eq!(rx.recv(), Ok(1)); // ...what it committed is received...
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected)); // ...then the stream ends
///
/// rx.set_when_peers_leave(WhenPeersLeave::Wait);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty)); // waits for the next producer
/// let mut tx = chan.sender()?; // a restarted producer: the channel is live again
/// tx.send(2).unwrap();
/// assert_eq!(rx.recv(), Ok(2));
/// # Ok::<(), shmchan::OpenError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WhenPeersLeave {
    /// End of stream: once every peer has left (and, for a receiver, every committed record
    /// was received), calls report `Disconnected`. crossbeam-channel's rule.
    #[default]
    Disconnect,
    /// Wait for the next peer: departures are not errors. Blocking calls wait (with their
    /// timeouts), the `try_` forms report `Empty` or `Full`.
    Wait,
}

/// How the last peer of a side left a channel: [`Sender::last_departure`] and
/// [`Receiver::last_departure`] tell a peer that closed its endpoint from one whose process
/// died.
///
/// The record lives in the segment, which every peer can write: it is a report for people and
/// logs, not a proof.
///
/// ```
/// use shmchan::{Channel, HowLeft};
/// let chan = Channel::<u32>::builder().create()?;
/// let rx = chan.receiver()?;
/// assert_eq!(rx.last_departure(), None); // no sender left yet
/// drop(chan.sender()?);
/// let d = rx.last_departure().unwrap();
/// assert_eq!(d.how, HowLeft::Closed);
/// assert_eq!(d.pid, std::process::id());
/// # Ok::<(), shmchan::OpenError>(())
/// ```
///
/// [`Sender::last_departure`]: crate::Sender::last_departure
/// [`Receiver::last_departure`]: crate::Receiver::last_departure
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Departure {
    /// The process that held the endpoint.
    pub pid: u32,
    /// Whether it closed its endpoint or died.
    pub how: HowLeft,
    /// When the departure was recorded, to the second: when the endpoint was dropped, or when
    /// a peer noticed that its process had died.
    pub at: SystemTime,
}

/// How an endpoint left (see [`Departure`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HowLeft {
    /// Its endpoint was dropped (the process may still run).
    Closed,
    /// Its process died holding it (killed, crashed, or exited without dropping it); a peer
    /// noticed and removed it from the channel.
    Died,
}

impl From<Left> for Departure {
    fn from(l: Left) -> Departure {
        Departure {
            pid: l.pid,
            how: if l.died {
                HowLeft::Died
            } else {
                HowLeft::Closed
            },
            at: UNIX_EPOCH + Duration::from_secs(Left::EPOCH + u64::from(l.at)),
        }
    }
}

impl std::fmt::Display for Departure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = match self.how {
            HowLeft::Closed => "closed its endpoint",
            HowLeft::Died => "died",
        };
        let ago = SystemTime::now()
            .duration_since(self.at)
            .map_or(0, |d| d.as_secs());
        write!(f, "process {} {how} {ago} s ago", self.pid)
    }
}
