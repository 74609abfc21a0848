//! The baselines: a pipe (records written with `write` and read with `read` in full, checked
//! word by word; its buffer enlarged to [`RING_BYTES`] where the system allows), and the bare
//! cache-line ping-pong between the two pinned processes, the physical floor of a round trip:
//! two 64-bit words on separate cache lines (128 bytes apart) of an anonymous shared page; the
//! pinger stores the sequence number into one, the echoer spins until it sees it and stores it
//! into the other, the pinger spins until it comes back and checks it. No channel does less.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::proc::{run_pair, shared_page, Ctl};
use crate::rtt::{Echo, Pair, Ping};
use crate::stream::{Clock, Consume, Produce, Stream};
use crate::work::{by_size, fill, parse_lat, ping, verify, with_record, Lat, END, RING_BYTES};
use crate::{Cfg, Error};

fn pipe() -> Result<(File, File), Error> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::msg(format!(
            "pipe: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: a plain fcntl on our own descriptor; a refusal leaves the default size.
    unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, RING_BYTES as libc::c_int) };
    // SAFETY: both descriptors are new and owned here only.
    Ok(unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) })
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |e| Error::msg(format!("{what}: {e}"))
}

/// The stream of `size`-byte records through a pipe, for the interleaved throughput.
pub fn pipe_stream(size: usize) -> Result<Box<dyn Stream>, Error> {
    by_size!(size, pipe_stream_of())
}

fn pipe_stream_of<const W: usize>() -> Result<Box<dyn Stream>, Error> {
    let (r, w) = pipe()?;
    Ok(Box::new(PipeStream::<W> { r, w }))
}

struct PipeStream<const W: usize> {
    r: File,
    w: File,
}

struct PipeEnd<'a, const W: usize> {
    f: &'a File,
    rec: [u64; W],
}

impl<const W: usize> Stream for PipeStream<W> {
    fn producer<'a>(&'a self, _: &Ctl, _: u32) -> Result<Box<dyn Produce + 'a>, Error> {
        Ok(Box::new(PipeEnd::<W> {
            f: &self.w,
            rec: [0; W],
        }))
    }

    fn consumer<'a>(&'a self, _: &Ctl, _: u32) -> Result<Box<dyn Consume + 'a>, Error> {
        Ok(Box::new(PipeEnd::<W> {
            f: &self.r,
            rec: [0; W],
        }))
    }
}

impl<const W: usize> Produce for PipeEnd<'_, W> {
    fn slice(&mut self, ctl: &Ctl, j: u32, seq: &mut u64) -> Result<(), Error> {
        with_record::<W, _>(|rec| {
            while !ctl.slice_over(j) {
                fill(rec, *seq);
                self.f
                    .write_all(shmchan::bytemuck::cast_slice(rec))
                    .map_err(io("write"))?;
                *seq += 1;
            }
            fill(rec, END);
            self.f
                .write_all(shmchan::bytemuck::cast_slice(rec))
                .map_err(io("write"))
        })
    }
}

impl<const W: usize> PipeEnd<'_, W> {
    fn read(&mut self) -> Result<(), Error> {
        self.f
            .read_exact(shmchan::bytemuck::cast_slice_mut(&mut self.rec))
            .map_err(io("read"))
    }
}

impl<const W: usize> Consume for PipeEnd<'_, W> {
    fn slice(&mut self, seq: &mut u64, clock: &mut Clock) -> Result<u64, Error> {
        let mut n = 0;
        loop {
            self.read()?;
            verify(&self.rec, *seq)?;
            *seq += 1;
            n += 1;
            if clock.add(1) {
                return Ok(n);
            }
        }
    }

    fn drain(&mut self, seq: &mut u64) -> Result<(), Error> {
        loop {
            self.read()?;
            if self.rec[0] == END {
                return Ok(());
            }
            verify(&self.rec, *seq)?;
            *seq += 1;
        }
    }
}

/// The 8-byte round trip over two pipes.
pub fn pipe_latency(cfg: &Cfg) -> Result<Lat, Error> {
    let (there_r, there_w) = pipe()?;
    let (back_r, back_w) = pipe()?;
    let [line, _] = run_pair(
        ["pinger", "echoer"],
        cfg.cpus,
        cfg.timing.timeout(),
        |ctl: &Ctl| {
            let (mut w, mut r) = (&there_w, &back_r);
            ctl.start_line()?;
            let (line, _) = ping(cfg.timing, |seq| {
                w.write_all(&seq.to_ne_bytes()).map_err(io("write"))?;
                let mut b = [0u64; 1];
                r.read_exact(shmchan::bytemuck::cast_slice_mut(&mut b))
                    .map_err(io("read"))?;
                verify(&b, seq)
            })?;
            w.write_all(&END.to_ne_bytes()).map_err(io("write"))?;
            Ok(line)
        },
        |ctl: &Ctl| {
            let (mut r, mut w) = (&there_r, &back_w);
            ctl.start_line()?;
            loop {
                let mut b = [0u8; 8];
                r.read_exact(&mut b).map_err(io("read"))?;
                if u64::from_ne_bytes(b) == END {
                    return Ok(String::new());
                }
                w.write_all(&b).map_err(io("write"))?;
            }
        },
    )?;
    parse_lat(&line)
}

/// Two words on separate cache lines of an anonymous shared page.
struct Lines {
    page: *mut libc::c_void,
}

impl Lines {
    fn new() -> Result<Lines, Error> {
        Ok(Lines {
            page: shared_page()?,
        })
    }

    /// Word 0 (there) or 1 (back).
    fn word(&self, i: usize) -> &AtomicU64 {
        // SAFETY: the page is mapped while `self` lives, zeroed (a valid AtomicU64), and offsets
        // 0 and 128 are aligned and within it.
        unsafe { &*self.page.cast::<u8>().add(i * 128).cast::<AtomicU64>() }
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`.
        unsafe { libc::munmap(self.page, 4096) };
    }
}

#[inline(always)]
fn wait_for(w: &AtomicU64, not: u64) -> u64 {
    loop {
        let v = w.load(Ordering::Acquire);
        if v != not {
            return v;
        }
        std::hint::spin_loop();
    }
}

/// The bare cache-line ping-pong.
pub fn bare_pair() -> Result<Box<dyn Pair>, Error> {
    Ok(Box::new(Lines::new()?))
}

/// One side of the bare ping-pong: the word it writes and the word it reads.
struct Side<'a> {
    out: &'a AtomicU64,
    inp: &'a AtomicU64,
    last: u64,
}

// Word values are seq + 1, so that 0 (the initial value) is never a message; every round trip
// carries a larger value than the one before, so a new value always differs from the last seen.
impl Ping for Side<'_> {
    fn round_trip(&mut self, seq: u64) -> Result<(), Error> {
        self.out.store(seq + 1, Ordering::Release);
        self.last = wait_for(self.inp, self.last);
        verify(&[self.last.wrapping_sub(1)], seq)
    }

    fn end(&mut self) -> Result<(), Error> {
        self.out.store(END, Ordering::Release);
        Ok(())
    }
}

impl Echo for Side<'_> {
    fn echo(&mut self) -> Result<bool, Error> {
        self.last = wait_for(self.inp, self.last);
        if self.last == END {
            return Ok(false);
        }
        self.out.store(self.last, Ordering::Release);
        Ok(true)
    }
}

impl Pair for Lines {
    fn pinger<'a>(&'a self, _: &Ctl, _: u32) -> Result<Box<dyn Ping + 'a>, Error> {
        Ok(Box::new(Side {
            out: self.word(0),
            inp: self.word(1),
            last: 0,
        }))
    }

    fn echoer<'a>(&'a self, _: &Ctl, _: u32) -> Result<Box<dyn Echo + 'a>, Error> {
        Ok(Box::new(Side {
            out: self.word(1),
            inp: self.word(0),
            last: 0,
        }))
    }
}
