//! The floors of a one-record stream: the two bare ring designs of [`crate::floor`], no library
//! and nothing around them, streaming records one at a time. Beside ringfire and shmchan they
//! show how fast each design can carry records one by one on this machine at all, whatever a
//! library adds.
//!
//! - `floor-cursor-ring`: a Lamport ring with cached cursors (rtrb's design, shmchan's SPSC
//!   ring's): records packed back to back; the writer's cursor on a line of its own, stored
//!   after every record; the reader's on another, stored after every record. Each side loads
//!   the other's cursor only when its cached copy shows no record (no room). A writer that
//!   finds the ring full waits for [`RESUME`] free slots, looking every [`LOOK_EVERY`] pauses
//!   (as shmchan's sender does, and for the same reason: a writer that resumed at the first
//!   free slot would trade the reader's line with it for every record; without it this floor's
//!   median rate at 8 bytes was about four fifths, over seven invocations).
//! - `floor-stamp-ring`: a stamp beside each record in its slot (ringfire's design): the reader
//!   polls the next slot's stamp and stores its own cursor after every record; the writer
//!   loads the reader's cursor only when it reaches its gate, which is at most half a ring
//!   ahead (as ringfire's lossless writer does).
//!
//! A reader that finds nothing pauses once (`spin_loop`) and looks again, as ringfire's
//! busy-polling reader in this comparison does. No prefetch, no validation, no wake-up.
//!
//! What they showed on a 2-vCPU VM: the same bare code runs at rates that differ up to
//! twofold from one invocation to the next (which of the two sides waits, and how often the
//! reader runs right behind the writer, trading lines with it, is what sets the rate of a
//! one-record stream here); over the invocations, neither design carried 8-byte records
//! reliably faster than ringfire, which is one of them with more around it.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::floor::Design;
use crate::proc::{shared_mapping, Ctl};
use crate::stream::{Clock, Consume, Produce, Stream};
use crate::work::{by_size, capacity_for, fill, verify, with_record, END};
use crate::Error;

/// The free slots a cursor-design writer that found the ring full waits for.
const RESUME: u64 = 128;

/// Pauses between two looks of a cursor-design writer waiting for [`RESUME`] free slots.
const LOOK_EVERY: u32 = 16;

/// The stream of `size`-byte records through a bare ring of `design` (cursor or stamp).
pub fn stream(design: Design, size: usize) -> Result<Box<dyn Stream>, Error> {
    by_size!(size, stream_of(design))
}

/// One mapping holding one ring. Cursor design: the writer's cursor at +0, the reader's at
/// +128, records from +256. Stamp design: the reader's cursor at +0, slots (a stamp, then the
/// record) from +128. A stamp is the record's position + 1 (0: never written).
struct Region<const W: usize> {
    base: NonNull<u8>,
    len: usize,
    design: Design,
    cap: u64,
}

impl<const W: usize> Drop for Region<W> {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `stream_of`; the ends borrow the Region.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

fn stream_of<const W: usize>(design: Design) -> Result<Box<dyn Stream>, Error> {
    if design == Design::Mailbox {
        return Err(Error::msg(
            "the mailbox design has a round-trip floor only".into(),
        ));
    }
    let cap = capacity_for(W * 8) as u64;
    let len = (256 + cap as usize * (W + 1) * 8).next_multiple_of(4096);
    let base = shared_mapping(len)?;
    Ok(Box::new(Region::<W> {
        base,
        len,
        design,
        cap,
    }))
}

impl<const W: usize> Region<W> {
    /// The word at byte `offset` (8-aligned, inside the mapping).
    fn word(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset.is_multiple_of(8) && offset + 8 <= self.len);
        // SAFETY: the mapping lives as long as `self`, zeroed (valid AtomicU64s); every offset
        // used is 8-aligned and inside it.
        unsafe { &*self.base.as_ptr().add(offset).cast::<AtomicU64>() }
    }

    /// The record at position `pos`.
    fn record(&self, pos: u64) -> *mut [u64; W] {
        let i = (pos & (self.cap - 1)) as usize;
        let off = match self.design {
            Design::Stamp => 128 + i * (W + 1) * 8 + 8,
            _ => 256 + i * W * 8,
        };
        // SAFETY: inside the mapping (see `stream_of`'s length), 8-aligned.
        unsafe { self.base.as_ptr().add(off).cast() }
    }

    /// The stamp of position `pos`'s slot (stamp design).
    fn stamp(&self, pos: u64) -> &AtomicU64 {
        let i = (pos & (self.cap - 1)) as usize;
        self.word(128 + i * (W + 1) * 8)
    }
}

impl<const W: usize> Stream for Region<W> {
    fn producer<'a>(&'a self, _: &Ctl, _: u32) -> Result<Box<dyn Produce + 'a>, Error> {
        Ok(Box::new(Prod::<W> {
            r: self,
            pos: 0,
            limit: 0,
        }))
    }

    fn consumer<'a>(&'a self, _: &Ctl, _: u32) -> Result<Box<dyn Consume + 'a>, Error> {
        Ok(Box::new(Cons::<W> {
            r: self,
            pos: 0,
            seen: 0,
        }))
    }
}

struct Prod<'a, const W: usize> {
    r: &'a Region<W>,
    /// The next position to write.
    pos: u64,
    /// The first position this writer may not write before it looks at the reader again.
    limit: u64,
}

impl<const W: usize> Prod<'_, W> {
    /// Where the reader's cursor is.
    fn reader(&self) -> &AtomicU64 {
        self.r.word(if self.r.design == Design::Stamp {
            0
        } else {
            128
        })
    }

    /// Looks at the reader's cursor until this writer may write `pos`.
    #[inline(never)]
    fn wait_for_room(&mut self) {
        let r = self.r;
        let mut first = true;
        loop {
            // SYNC: pairs with the reader's Release store of its cursor: its reads of the
            // slots it freed happen before our writes.
            let h = self.reader().load(Ordering::Acquire);
            self.limit = match r.design {
                // ringfire's lossless writer: at most half a ring ahead of its last look.
                Design::Stamp => (h + r.cap).min(self.pos + r.cap / 2),
                _ => h + r.cap,
            };
            let free = self.limit - self.pos;
            let enough = match r.design {
                Design::Stamp => free > 0,
                _ => free >= RESUME.min(r.cap / 2) || (first && free > 0),
            };
            if enough {
                return;
            }
            first = false;
            let pauses = if r.design == Design::Stamp {
                1
            } else {
                LOOK_EVERY
            };
            for _ in 0..pauses {
                std::hint::spin_loop();
            }
        }
    }

    #[inline(always)]
    fn push(&mut self, rec: &[u64; W]) {
        if self.pos == self.limit {
            self.wait_for_room();
        }
        // SAFETY: the slot is free (the reader's cursor is past it) and only we write it.
        unsafe { self.r.record(self.pos).write(*rec) };
        self.pos += 1;
        // SYNC: pairs with the reader's Acquire load of the stamp or the cursor: our write of
        // the record happens before its read.
        match self.r.design {
            Design::Stamp => self
                .r
                .stamp(self.pos - 1)
                .store(self.pos, Ordering::Release),
            _ => self.r.word(0).store(self.pos, Ordering::Release),
        }
    }
}

impl<const W: usize> Produce for Prod<'_, W> {
    fn slice(&mut self, ctl: &Ctl, j: u32, seq: &mut u64) -> Result<(), Error> {
        with_record::<W, _>(|rec| {
            while !ctl.slice_over(j) {
                fill(rec, *seq);
                self.push(rec);
                *seq += 1;
            }
            fill(rec, END);
            self.push(rec);
        });
        Ok(())
    }
}

struct Cons<'a, const W: usize> {
    r: &'a Region<W>,
    /// The next position to read.
    pos: u64,
    /// The writer's cursor as last loaded (cursor design).
    seen: u64,
}

impl<const W: usize> Cons<'_, W> {
    #[inline(always)]
    fn next(&mut self, out: &mut [u64; W]) {
        let r = self.r;
        let cursor = match r.design {
            Design::Stamp => {
                let want = self.pos + 1;
                // SYNC: pairs with the writer's Release store of the stamp.
                while r.stamp(self.pos).load(Ordering::Acquire) != want {
                    std::hint::spin_loop();
                }
                0
            }
            _ => {
                while self.pos == self.seen {
                    // SYNC: pairs with the writer's Release store of its cursor.
                    self.seen = r.word(0).load(Ordering::Acquire);
                    if self.pos == self.seen {
                        std::hint::spin_loop();
                    }
                }
                128
            }
        };
        // SAFETY: the record is published (its stamp or the writer's cursor said so, with
        // Acquire) and the writer leaves it alone until our cursor passes it.
        unsafe { std::ptr::copy_nonoverlapping(r.record(self.pos), out, 1) };
        self.pos += 1;
        // SYNC: pairs with the writer's Acquire load in `wait_for_room`.
        r.word(cursor).store(self.pos, Ordering::Release);
    }
}

impl<const W: usize> Consume for Cons<'_, W> {
    fn slice(&mut self, seq: &mut u64, clock: &mut Clock) -> Result<u64, Error> {
        let mut n = 0;
        let mut r = [0u64; W];
        loop {
            self.next(&mut r);
            verify(&r, *seq)?;
            *seq += 1;
            n += 1;
            if clock.add(1) {
                return Ok(n);
            }
        }
    }

    fn drain(&mut self, seq: &mut u64) -> Result<(), Error> {
        let mut r = [0u64; W];
        loop {
            self.next(&mut r);
            if r[0] == END {
                return Ok(());
            }
            verify(&r, *seq)?;
            *seq += 1;
        }
    }
}
