//! The POSIX message queue doorbell: one queue per direction (data, room) under fresh names
//! that carry the channel's identity (`/dev/mqueue/shmchan-mq-PID-IDENTITY-d|r`), which the
//! segment records for peers; a peer opens and removes only queues bound to the channel (see
//! `bind`). A token is a one-byte message; the queue's descriptor is pollable (event loops
//! wait on it).

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

use shmchan_os as os;

use super::{
    bind, both_or_none, dir, pause_until, remove_named, Bell, Desc, Kind, Reach, Site, Slept, Spec,
    Unbound, Unreached,
};
use crate::table::Role;

pub(super) const SPEC: Spec = Spec {
    name: "posix-mq",
    code: 7,
    imp: &PosixMq,
};

struct PosixMq;

impl Kind for PosixMq {
    fn create(&self, mode: os::Mode) -> Result<(Desc, Box<dyn Bell>), os::Error> {
        let max = os::limits::mq_msg_max().unwrap_or(10).clamp(1, 64) as usize;
        let attr = os::MqAttr {
            max_msgs: max,
            msg_size: 8,
        };
        let (identity, names, queues) = both_or_none(
            TAG,
            |n| os::PosixMq::create(n, attr, mode, false),
            |n| {
                let _ = os::PosixMq::unlink(n);
            },
        )?;
        let desc = Desc {
            names,
            identity,
            ..Desc::default()
        };
        Ok((desc, Box::new(Queues(queues))))
    }

    fn open(&self, desc: &Desc, reach: &Reach<'_>) -> Result<Box<dyn Bell>, Unreached> {
        let owner = reach.owner.user();
        Ok(Box::new(Queues([
            bound(desc, 0, owner)?,
            bound(desc, 1, owner)?,
        ])))
    }

    fn remove(&self, desc: &Desc, owner: Option<u32>) -> Result<(), Unbound> {
        remove_named(
            desc,
            owner,
            || self.describe(desc),
            bound,
            describe_one,
            |name| {
                let _ = os::PosixMq::unlink(name);
            },
        )
    }

    fn describe(&self, desc: &Desc) -> String {
        format!(
            "POSIX message queues {} and {}",
            desc.names[0], desc.names[1]
        )
    }
}

/// The name's tag (`/shmchan-mq-…`).
const TAG: &str = "mq";

fn describe_one(name: &str) -> String {
    format!("POSIX message queue {name:?}")
}

/// Opens the queue of direction `dir` that `desc` names if it is bound to the channel: its
/// name carries the channel's identity, and the kernel says (`fstat` of the very descriptor
/// that was opened) that the channel's `owner` owns it (see `bind`).
fn bound(desc: &Desc, dir: usize, owner: u32) -> Result<os::PosixMq, Unreached> {
    let name = &desc.names[dir];
    let unbound = |reason| Unbound {
        object: describe_one(name),
        reason,
    };
    bind::check_posix_name(name, TAG, desc.identity, dir).map_err(unbound)?;
    let q = os::PosixMq::open(name, false)?;
    let st = os::file::fstat(&q)?;
    bind::check_owner(st.uid, st.uid, owner).map_err(unbound)?;
    Ok(q)
}

/// The connected queues (data, room).
struct Queues([os::PosixMq; 2]);

impl Bell for Queues {
    fn post(&self, at: &Site<'_>, n: u32) {
        for _ in 0..n {
            if !matches!(self.0[at.dir()].try_send(&[0u8], 0), Ok(true)) {
                break;
            }
        }
    }

    fn wait(&self, at: &Site<'_>, _slot: usize, until: Instant) -> Slept {
        let mut buf = [0u8; 8];
        match self.0[at.dir()].recv_until(&mut buf, until) {
            Ok(Some(_)) => Slept::Token,
            Ok(None) => Slept::TimedOut,
            Err(_) => pause_until(until),
        }
    }

    fn fd(&self, role: Role) -> Option<BorrowedFd<'_>> {
        Some(self.0[dir(role)].as_fd())
    }
}
