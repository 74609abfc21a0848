// The README's Quick start, verbatim (a test checks that they agree): included by the
// programs `shmchan-test-quickstart-producer` and `-consumer`, built separately.

use shmchan::{Backing, Channel};

#[derive(Clone, Copy, Debug, shmchan::Pod, shmchan::Zeroable, shmchan::Schema)]
#[bytemuck(crate = "shmchan::bytemuck")] // or depend on bytemuck yourself
#[repr(C)]                                // Schema: the fields are the record's identity
struct Tick { seq: u64, price: f64 }

/// The channel both programs use; whichever starts first creates it.
fn ticks() -> shmchan::Builder<Tick> {
    Channel::<Tick>::builder()
        .capacity(4096)
        .backing(Backing::sysv_key(key()))                 // or ::file(path), ::anonymous()
        .spsc()                                            // or .mpmc()
}

/// Its name, agreed by both programs (`TICKS_KEY` overrides it).
fn key() -> i32 {
    std::env::var("TICKS_KEY").ok().and_then(|k| k.parse().ok()).unwrap_or(0x7469_636b)
}

fn producer() -> Result<(), Box<dyn std::error::Error>> {
    let mut tx = ticks().open_or_create_sender()?;
    tx.send(Tick { seq: 1, price: 99.5 })?;               // try_send, send_timeout, send_batch
    let mut slot = tx.reserve()?;                          // zero copy: write in place ...
    *slot = Tick { seq: 2, price: 100.0 };
    slot.commit();                                         // ... then publish
    Ok(())                                                 // the records wait for the consumer
}

fn consumer() -> Result<(), Box<dyn std::error::Error>> {
    let mut rx = ticks().open_or_create_receiver()?;      // checks the record type: TypeMismatch names the field
    let t = rx.recv()?;                                    // try_recv, recv_timeout, recv_batch, iter()
    let r = rx.peek()?;                                    // zero-copy read, released on drop
    println!("{} {}", t.seq, r.price);
    Ok(())
}
