//! The POSIX message queue doorbell: one queue per direction (data, room) under fresh names
//! (`/dev/mqueue/shmchan-…`), which the segment records for peers. A token is a one-byte
//! message; the queue's descriptor is pollable (event loops wait on it).

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

use shmchan_os as os;

use super::{
    both_or_none, dir, pause_until, Bell, Desc, Kind, Reach, Site, Slept, Spec, Unreached,
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
        let (names, queues) = both_or_none(
            "mq",
            |n| os::PosixMq::create(n, attr, mode, false),
            |n| {
                let _ = os::PosixMq::unlink(n);
            },
        )?;
        let desc = Desc {
            names,
            ..Desc::default()
        };
        Ok((desc, Box::new(Queues(queues))))
    }

    fn open(&self, desc: &Desc, _reach: &Reach<'_>) -> Result<Box<dyn Bell>, Unreached> {
        Ok(Box::new(Queues([
            os::PosixMq::open(&desc.names[0], false)?,
            os::PosixMq::open(&desc.names[1], false)?,
        ])))
    }

    fn remove(&self, desc: &Desc) {
        for n in &desc.names {
            let _ = os::PosixMq::unlink(n);
        }
    }

    fn describe(&self, desc: &Desc) -> String {
        format!(
            "POSIX message queues {} and {}",
            desc.names[0], desc.names[1]
        )
    }
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
