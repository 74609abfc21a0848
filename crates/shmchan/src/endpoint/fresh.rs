//! The copy of a record or message out of the caller's memory into a slot, made for memory
//! the caller has just written.
//!
//! A caller builds a record field by field, one store per field, and sends it at once: its
//! stores are still in the core's store buffer when the send copies it. A load is served from
//! the store buffer only when one store holds all of its bytes; a load that needs two stores
//! waits until both reach the cache. The compiler's copy of a record loads 16 bytes at a
//! time, which for a record of 8-byte fields is two stores each: a `[u64; 2]` took 8.6-9.0 ns
//! to send against 4.1 for one written in place, a `[u64; 8]` built field by field 8.5-8.9
//! against 5.7-5.9 (one thread, batches of 64). So the words are loaded 8 bytes at a time,
//! each from its own store (or from a wider one that holds it, as when the caller's compiler
//! wrote two fields at once). The price, for a record the caller's compiler wrote 16 bytes at
//! a time: twice the loads and stores of the wide copy (a 64-byte one sent in 5.9-6.3 ns
//! against 5.4-5.5); the peers comparison's 64-byte stream, whose records are written so,
//! ran no slower (110-112 against 96-105 M/s, interleaved builds).
//!
//! A typed send by value that goes the short way does not copy at all: it writes the value
//! into its slot (see `Sender::send_value`). This copy is for the rest: `send_ref`, a byte
//! message, a send by value the general way.
//!
//! Volatile, so that the compiler does not merge the loads back into wide ones. (An `asm!`
//! pair of 8-byte loads into one register and one 16-byte store per two words was tried, for
//! fewer stores to the slot's line: no faster on either bench.) Not for 4-byte words: the
//! compiler merges a caller's adjacent 4-byte stores into 8-byte ones, and a `[u32; 2]` sent
//! as two 4-byte words took 7-11 ns against 3.4-5.7 as one copy.

/// The longest record or message, in 8-byte words, that a send copies with
/// [`copy_fresh_words`]: 64 bytes, the largest measured (above, the compiler's copy, with half
/// the loads).
pub(crate) const FRESH_WORDS_MAX: usize = 8;

/// Copies `n` 8-byte words from `src` to `dst`, loading each on its own.
///
/// # Safety
///
/// `src` is readable and `dst` writable for `n` words, both 8-aligned, not overlapping; any
/// bits at `src` are initialized (a Pod record's or a byte message's).
#[inline(always)]
pub(crate) unsafe fn copy_fresh_words(src: *const u64, dst: *mut u64, n: usize) {
    let mut i = 0;
    while i < n {
        // SAFETY: word `i < n`: the caller's contract.
        unsafe { dst.add(i).write(src.add(i).read_volatile()) };
        i += 1;
    }
}
