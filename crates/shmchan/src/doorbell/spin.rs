//! The spin doorbell: no kernel object. Waiters never sleep (and so never announce); they
//! poll, yielding after a bound (see `crate::wait`).

use std::time::Instant;

use shmchan_os as os;

use super::{Bell, Desc, Kind, Reach, Site, Slept, Spec, Unreached};

pub(super) const SPEC: Spec = Spec {
    name: "spin",
    code: 2,
    imp: &Spin,
};

struct Spin;

impl Kind for Spin {
    fn create(&self, _mode: os::Mode) -> Result<(Desc, Box<dyn Bell>), os::Error> {
        Ok((Desc::default(), Box::new(Spin)))
    }

    fn open(&self, _desc: &Desc, _reach: &Reach<'_>) -> Result<Box<dyn Bell>, Unreached> {
        Ok(Box::new(Spin))
    }

    fn describe(&self, _desc: &Desc) -> String {
        "none".into()
    }

    fn sleeps(&self) -> bool {
        false
    }
}

impl Bell for Spin {
    fn post(&self, _at: &Site<'_>, _n: u32) {}

    fn wait(&self, _at: &Site<'_>, _slot: usize, _until: Instant) -> Slept {
        // Spin waiters never announce, so they never hold a token.
        Slept::TimedOut
    }
}
