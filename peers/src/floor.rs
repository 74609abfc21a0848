//! The floors of a ring's round trip: three bare rings of 8-byte records, no library, that differ
//! only in where the reader learns that a record was published. They show what the ring design
//! itself costs a round trip beside the bare ping-pong (one cache line each way), whatever code
//! runs around it.
//!
//! - `floor-cursor-ring`: a Lamport ring (shmchan's SPSC design, rtrb's): records packed in
//!   their slots, the writer's cursor on a line of its own, the reader's cursor on another. A
//!   reader that waits polls the cursor's line, then reads the record's line: two lines
//!   reach it, one after the other.
//! - `floor-stamp-ring`: a stamp beside each record in its slot (ringfire's design, and
//!   shmchan's MPMC ring's): a reader that waits polls the slot itself, so one line reaches it,
//!   as in the bare ping-pong.
//! - `floor-mailbox-ring`: the Lamport ring whose writer also copies each record into a
//!   mailbox after its cursor, on the cursor's line (shmchan's SPSC design since the mailbox): a
//!   reader that waits polls the cursor's line and finds the record there, so one line reaches
//!   it, and the slots stay packed records.
//!
//! Round trips here; the one-record streams of the cursor and stamp designs are in
//! [`crate::floor_stream`].

use std::sync::atomic::{AtomicU64, Ordering};

use crate::proc::{shared_page, Ctl};
use crate::rtt::{Echo, Pair, Ping};
use crate::work::{verify, END};
use crate::Error;

/// Slots per ring (a power of two): one record is in flight at a time.
const SLOTS: u64 = 32;

/// Where a reader learns of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Design {
    /// The writer's cursor, on a line of its own.
    Cursor,
    /// A stamp beside the record, in its slot.
    Stamp,
    /// The writer's cursor, with a copy of the record (a mailbox) on its line.
    Mailbox,
}

/// One page holding two rings (there and back) of one design.
struct Rings {
    page: *mut libc::c_void,
    design: Design,
}

/// Offsets in the page: ring `r` starts at `r * 2048`. Cursor design: the writer's cursor at
/// +0, the reader's at +128, the slots (8 bytes each) from +256. Stamp design: slots of 16
/// bytes (stamp, record) from +0. Mailbox design: the cursor design's, with the mailbox's tag
/// at +8 and its record at +16.
const RING_BYTES: usize = 2048;

impl Rings {
    fn word(&self, ring: usize, offset: usize) -> &AtomicU64 {
        debug_assert!(offset + 8 <= RING_BYTES && ring < 2);
        // SAFETY: the page is mapped while `self` lives, zeroed (valid AtomicU64s), and every
        // offset used is 8-aligned and inside it (two rings of 2048 bytes in 4096).
        unsafe {
            &*self
                .page
                .cast::<u8>()
                .add(ring * RING_BYTES + offset)
                .cast::<AtomicU64>()
        }
    }
}

impl Drop for Rings {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `pair`.
        unsafe { libc::munmap(self.page, 4096) };
    }
}

/// The two rings of `design`.
pub fn pair(design: Design) -> Result<Box<dyn Pair>, Error> {
    Ok(Box::new(Rings {
        page: shared_page()?,
        design,
    }))
}

/// One end of one ring: its position.
struct End<'a> {
    rings: &'a Rings,
    ring: usize,
    pos: u64,
}

impl End<'_> {
    fn write(&mut self, v: u64) {
        let (r, i) = (self.ring, (self.pos % SLOTS) as usize);
        match self.rings.design {
            Design::Cursor => {
                self.rings.word(r, 256 + i * 8).store(v, Ordering::Relaxed);
                self.rings.word(r, 0).store(self.pos + 1, Ordering::Release);
            }
            Design::Stamp => {
                self.rings.word(r, i * 16 + 8).store(v, Ordering::Relaxed);
                self.rings
                    .word(r, i * 16)
                    .store(self.pos + 1, Ordering::Release);
            }
            Design::Mailbox => {
                // The slot, then the mailbox (tag cleared, record, tag), then the cursor.
                self.rings.word(r, 256 + i * 8).store(v, Ordering::Relaxed);
                self.rings.word(r, 8).store(0, Ordering::Relaxed);
                std::sync::atomic::fence(Ordering::Release);
                self.rings.word(r, 16).store(v, Ordering::Relaxed);
                self.rings.word(r, 8).store(self.pos + 1, Ordering::Relaxed);
                self.rings.word(r, 0).store(self.pos + 1, Ordering::Release);
            }
        }
        self.pos += 1;
    }

    fn read(&mut self) -> u64 {
        let (r, i) = (self.ring, (self.pos % SLOTS) as usize);
        let want = self.pos + 1;
        let v = match self.rings.design {
            Design::Cursor => {
                while self.rings.word(r, 0).load(Ordering::Acquire) != want {
                    std::hint::spin_loop();
                }
                let v = self.rings.word(r, 256 + i * 8).load(Ordering::Relaxed);
                self.rings.word(r, 128).store(want, Ordering::Release);
                v
            }
            Design::Stamp => {
                while self.rings.word(r, i * 16).load(Ordering::Acquire) != want {
                    std::hint::spin_loop();
                }
                self.rings.word(r, i * 16 + 8).load(Ordering::Relaxed)
            }
            Design::Mailbox => {
                while self.rings.word(r, 0).load(Ordering::Acquire) != want {
                    std::hint::spin_loop();
                }
                // The mailbox when its tag names this record before and after the read.
                let mut v = None;
                if self.rings.word(r, 8).load(Ordering::Relaxed) == want {
                    let m = self.rings.word(r, 16).load(Ordering::Relaxed);
                    std::sync::atomic::fence(Ordering::Acquire);
                    if self.rings.word(r, 8).load(Ordering::Relaxed) == want {
                        v = Some(m);
                    }
                }
                let v =
                    v.unwrap_or_else(|| self.rings.word(r, 256 + i * 8).load(Ordering::Relaxed));
                self.rings.word(r, 128).store(want, Ordering::Release);
                v
            }
        };
        self.pos += 1;
        v
    }
}

/// A process's two ends: it writes ring `out` and reads ring `1 - out`.
struct Side<'a> {
    out: End<'a>,
    inp: End<'a>,
}

impl<'a> Side<'a> {
    fn new(rings: &'a Rings, out: usize) -> Side<'a> {
        Side {
            out: End {
                rings,
                ring: out,
                pos: 0,
            },
            inp: End {
                rings,
                ring: 1 - out,
                pos: 0,
            },
        }
    }
}

impl Ping for Side<'_> {
    fn round_trip(&mut self, seq: u64) -> Result<(), Error> {
        self.out.write(seq);
        verify(&[self.inp.read()], seq)
    }

    fn end(&mut self) -> Result<(), Error> {
        self.out.write(END);
        Ok(())
    }
}

impl Echo for Side<'_> {
    fn echo(&mut self) -> Result<bool, Error> {
        let v = self.inp.read();
        if v == END {
            return Ok(false);
        }
        self.out.write(v);
        Ok(true)
    }
}

impl Pair for Rings {
    fn pinger<'a>(&'a self, _: &Ctl, _: u32) -> Result<Box<dyn Ping + 'a>, Error> {
        Ok(Box::new(Side::new(self, 0)))
    }

    fn echoer<'a>(&'a self, _: &Ctl, _: u32) -> Result<Box<dyn Echo + 'a>, Error> {
        Ok(Box::new(Side::new(self, 1)))
    }
}
