//! The MPMC half of [`ring_vs_model`](super::ring_vs_model): a model of every position's
//! state, and the operations of two producer and two consumer handles checked against it.

use alloc::collections::VecDeque;
use alloc::vec;

use super::{expect_record, record_bytes, wait_cell_roundtrip, Input};
use crate::{MpmcConsumer, MpmcProducer, PopError, PushError, RawRing};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    /// Claimed by a producer, not published; the record it will hold.
    Pending(u64),
    Ready(u64),
    Skipped,
    /// Claimed by a consumer, not released; the record it holds.
    Claimed(u64),
    Released,
}

/// Positions from `base` (the oldest not yet released) to `tail`.
pub(super) struct MpmcModel {
    cap: u64,
    base: u64,
    st: VecDeque<St>,
    tail: u64,
    head: u64,
    next: u64,
}

impl MpmcModel {
    pub(super) fn new(cap: u64) -> Self {
        MpmcModel {
            cap,
            base: 0,
            st: VecDeque::new(),
            tail: 0,
            head: 0,
            next: 0,
        }
    }

    fn get(&self, pos: u64) -> St {
        if pos < self.base {
            St::Released
        } else {
            self.st[(pos - self.base) as usize]
        }
    }

    fn set(&mut self, pos: u64, s: St) {
        let i = (pos - self.base) as usize;
        self.st[i] = s;
        while self.st.front() == Some(&St::Released) {
            self.st.pop_front();
            self.base += 1;
        }
    }

    /// Whether a producer may claim `pos`: within the capacity of the head (consumers claim
    /// records out of the ring), and its slot free (the slot's record one lap of slots back —
    /// the power of two at or above the capacity — released).
    fn free_for(&self, pos: u64) -> bool {
        let lap = self.cap.next_power_of_two();
        pos < self.head + self.cap && (pos < lap || self.get(pos - lap) == St::Released)
    }

    /// Claims up to `want` free slots in a row (all or none with `exact`): (start, n).
    fn claim_push(&mut self, want: u64, exact: bool) -> Option<(u64, u64)> {
        let mut n = 0;
        while n < want && self.free_for(self.tail + n) {
            n += 1;
        }
        if n == 0 || (exact && n < want) {
            return None;
        }
        let start = self.tail;
        for i in 0..n {
            self.st.push_back(St::Pending(self.next + i));
        }
        self.tail += n;
        Some((start, n))
    }

    /// Mirrors `claim_pop`: passes over leading skipped slots, then claims a run of records.
    fn claim_pop(&mut self, want: u64, exact: bool) -> Option<(u64, u64)> {
        loop {
            let (mut skipped, mut data) = (0, 0);
            while data < want && skipped + data < self.cap {
                let q = self.head + skipped + data;
                if q >= self.tail {
                    break;
                }
                match self.get(q) {
                    St::Ready(_) => data += 1,
                    St::Skipped if data == 0 => skipped += 1,
                    _ => break,
                }
            }
            let take = if exact && data < want { 0 } else { data };
            if skipped + take == 0 {
                return None;
            }
            for i in 0..skipped {
                let h = self.head + i;
                self.set(h, St::Released);
            }
            self.head += skipped;
            if take > 0 {
                let start = self.head;
                for i in 0..take {
                    let seq = self.seq_at(start + i);
                    self.set(start + i, St::Claimed(seq));
                }
                self.head += take;
                return Some((start, take));
            }
        }
    }

    fn seq_at(&self, pos: u64) -> u64 {
        match self.get(pos) {
            St::Ready(s) | St::Pending(s) => s,
            other => panic!("no record at {pos}: {other:?}"),
        }
    }
}

pub(super) struct Handles<'a> {
    pub(super) p: [Option<&'a mut MpmcProducer>; 2],
    pub(super) c: [Option<&'a mut MpmcConsumer>; 2],
}

/// Runs up to `budget` operations (nested holds run a few inside).
pub(super) fn mpmc_ops(
    ring: &RawRing,
    h: &mut Handles<'_>,
    m: &mut MpmcModel,
    inp: &mut Input<'_>,
    budget: usize,
    depth: u32,
) {
    let cap = m.cap as usize;
    let rs = ring.config().record_size as usize;
    let mut buf = vec![0u8; rs * (cap + 2)];
    let mut done = 0;
    while done < budget {
        let Some(op) = inp.byte() else { return };
        done += 1;
        let arg = inp.arg();
        let n = usize::from(arg) % (cap + 2);
        let pi = usize::from(arg >> 7);
        let ci = usize::from((arg >> 6) & 1);
        match op % 12 {
            0 => {
                let Some(p) = h.p[pi].as_deref_mut() else {
                    continue;
                };
                let seq = m.next;
                record_bytes(seq, &mut buf[..rs]);
                let r = if arg & 0x20 == 0 {
                    p.try_push(&buf[..rs])
                } else {
                    let src = &buf[..rs];
                    p.try_push_with(|slot| {
                        // SAFETY: the claimed slot holds rs writable bytes until publish.
                        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), slot.as_ptr(), rs) }
                    })
                };
                match m.claim_push(1, true) {
                    Some((pos, _)) => {
                        assert_eq!(r, Ok(()));
                        m.set(pos, St::Ready(seq));
                        m.next += 1;
                    }
                    None => assert_eq!(r, Err(PushError::Full)),
                }
            }
            1 => {
                let Some(c) = h.c[ci].as_deref_mut() else {
                    continue;
                };
                let r = if arg & 0x20 == 0 {
                    c.try_pop(&mut buf[..rs])
                } else {
                    let dst = &mut buf[..rs];
                    c.try_pop_with(|slot| {
                        // SAFETY: the claimed slot holds rs published bytes until release.
                        unsafe {
                            core::ptr::copy_nonoverlapping(slot.as_ptr(), dst.as_mut_ptr(), rs)
                        }
                    })
                };
                match m.claim_pop(1, true) {
                    Some((pos, _)) => {
                        assert_eq!(r, Ok(()));
                        expect_record(m.seq_at_claimed(pos), &buf[..rs]);
                        m.release_claimed(pos);
                    }
                    None => assert_eq!(r, Err(PopError::Empty)),
                }
            }
            2 => {
                let Some(p) = h.p[pi].as_deref_mut() else {
                    continue;
                };
                for i in 0..n {
                    record_bytes(m.next + i as u64, &mut buf[i * rs..(i + 1) * rs]);
                }
                let got = p.push_batch(&buf[..n * rs]);
                let want = (n as u64).min(m.cap);
                let exp = if want == 0 {
                    None
                } else {
                    m.claim_push(want, false)
                };
                match exp {
                    Some((start, k)) => {
                        assert_eq!(got as u64, k);
                        for i in 0..k {
                            m.set(start + i, St::Ready(m.next + i));
                        }
                        m.next += k;
                    }
                    None => assert_eq!(got, 0),
                }
            }
            3 => {
                let Some(c) = h.c[ci].as_deref_mut() else {
                    continue;
                };
                let got = c.pop_batch(&mut buf[..n * rs]);
                let want = (n as u64).min(m.cap);
                let exp = if want == 0 {
                    None
                } else {
                    m.claim_pop(want, false)
                };
                match exp {
                    Some((start, k)) => {
                        assert_eq!(got as u64, k);
                        for i in 0..k {
                            let seq = m.seq_at_claimed(start + i);
                            expect_record(seq, &buf[i as usize * rs..(i as usize + 1) * rs]);
                            m.release_claimed(start + i);
                        }
                    }
                    None => assert_eq!(got, 0),
                }
            }
            4..=6 => {
                // Reserve on one producer; op 6 holds the grant while nested operations run
                // on the other handles.
                let how = inp.arg();
                let Some(p) = h.p[pi].take() else { continue };
                let exact = op % 12 != 5;
                let want = n as u64;
                let r = if exact {
                    p.try_reserve(n).ok()
                } else {
                    Some(p.reserve_up_to(n))
                };
                let exp = if want == 0 {
                    Some((m.tail, 0))
                } else if exact && want > m.cap {
                    None
                } else {
                    m.claim_push(want.min(m.cap), exact).or(if exact {
                        None
                    } else {
                        Some((m.tail, 0))
                    })
                };
                match (r, exp) {
                    (None, None) => {}
                    (Some(mut g), Some((start, k))) => {
                        assert_eq!(g.len() as u64, k);
                        for i in 0..k as usize {
                            record_bytes(m.next + i as u64, &mut buf[..rs]);
                            g.write(i, &buf[..rs]);
                        }
                        let seq0 = m.next;
                        m.next += k;
                        if op % 12 == 6 && depth < 2 {
                            mpmc_ops(ring, h, m, inp, usize::from(how % 8), depth + 1);
                        }
                        let committed = match how >> 6 {
                            0 | 1 => {
                                g.commit();
                                k
                            }
                            2 => {
                                let j = u64::from(how >> 3 & 7) % (k + 2);
                                g.commit_first(j as usize);
                                j.min(k)
                            }
                            _ => {
                                drop(g);
                                0
                            }
                        };
                        for i in 0..k {
                            let s = if i < committed {
                                St::Ready(seq0 + i)
                            } else {
                                St::Skipped
                            };
                            m.set(start + i, s);
                        }
                    }
                    (r, exp) => panic!(
                        "reserve({n}, exact {exact}): ring {:?}, model {exp:?}",
                        r.map(|g| g.len())
                    ),
                }
                h.p[pi] = Some(p);
            }
            7..=9 => {
                // Peek on one consumer; op 9 holds the grant across nested operations.
                let how = inp.arg();
                let Some(c) = h.c[ci].take() else { continue };
                let exact = op % 12 != 8;
                let want = n as u64;
                let r = if exact {
                    c.try_peek(n).ok()
                } else {
                    Some(c.peek_up_to(n))
                };
                let exp = if want == 0 {
                    Some((m.head, 0))
                } else if exact && want > m.cap {
                    None
                } else {
                    m.claim_pop(want.min(m.cap), exact).or(if exact {
                        None
                    } else {
                        Some((m.head, 0))
                    })
                };
                match (r, exp) {
                    (None, None) => {}
                    (Some(g), Some((start, k))) => {
                        assert_eq!(g.len() as u64, k);
                        for i in 0..k as usize {
                            g.read(i, &mut buf[..rs]);
                            expect_record(m.seq_at_claimed(start + i as u64), &buf[..rs]);
                        }
                        if op % 12 == 9 && depth < 2 {
                            mpmc_ops(ring, h, m, inp, usize::from(how % 8), depth + 1);
                        }
                        match how >> 6 {
                            0 | 1 => g.release(),
                            2 => g.release_first(usize::from(how >> 3 & 7)),
                            _ => drop(g),
                        }
                        for i in 0..k {
                            m.release_claimed(start + i);
                        }
                    }
                    (r, exp) => panic!(
                        "peek({n}, exact {exact}): ring {:?}, model {exp:?}",
                        r.map(|g| g.len())
                    ),
                }
                h.c[ci] = Some(c);
            }
            10 => {
                assert_eq!(ring.len() as u64, m.tail - m.head);
                assert_eq!(ring.is_empty(), m.tail == m.head);
                assert_eq!(ring.is_full(), m.tail - m.head == m.cap);
                let bad = rs + 1;
                buf.resize(buf.len().max(bad), 0);
                if let Some(p) = h.p[pi].as_deref_mut() {
                    assert_eq!(
                        p.try_push(&buf[..bad]),
                        Err(PushError::WrongLength {
                            expected: rs,
                            got: bad
                        })
                    );
                }
                if let Some(c) = h.c[ci].as_deref_mut() {
                    assert_eq!(
                        c.try_pop(&mut buf[..bad]),
                        Err(PopError::WrongLength {
                            expected: rs,
                            got: bad
                        })
                    );
                }
            }
            _ => wait_cell_roundtrip(ring, arg),
        }
        assert_eq!(ring.len() as u64, m.tail - m.head, "len after op {op}");
    }
}

impl MpmcModel {
    fn seq_at_claimed(&self, pos: u64) -> u64 {
        match self.get(pos) {
            St::Claimed(s) => s,
            other => panic!("position {pos} is not claimed: {other:?}"),
        }
    }

    fn release_claimed(&mut self, pos: u64) {
        assert!(matches!(self.get(pos), St::Claimed(_)));
        self.set(pos, St::Released);
    }
}
