//! A capped set of open connections in which a newcomer takes the place of
//! the connection idle the longest. The TCP front and the ops listener each
//! hold one, so that clients that connect and then send nothing (or
//! trickle) cannot lock others out: when every slot is taken, the idlest
//! connection is told to close and its slot goes to the newcomer; only when
//! every connection is busy answering is the newcomer refused.
//!
//! A connection counts as idle from when it is admitted, so one that never
//! sends is the first to go. Its front marks it busy while it answers and
//! idle again after.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Notify;

/// `idle_since` of a connection that is answering.
const BUSY: u64 = u64::MAX;

/// At most `max` connections, each with its front's `T`.
pub struct Slots<T> {
    max: usize,
    epoch: Instant,
    open: Mutex<Open<T>>,
    /// Told how many connections are open whenever that changes (a gauge).
    on_count: fn(usize),
}

struct Open<T> {
    next_id: u64,
    connections: HashMap<u64, Arc<Connection<T>>>,
}

/// One open connection as the slots see it, and what its front keeps with it.
pub struct Connection<T> {
    /// Milliseconds since `epoch` when it last became idle; [`BUSY`] while
    /// it is answering.
    idle_since: AtomicU64,
    epoch: Instant,
    evicted: Notify,
    pub data: T,
}

impl<T> Connection<T> {
    /// Answering: not to be evicted until [`Connection::set_idle`].
    pub fn set_busy(&self) {
        self.idle_since.store(BUSY, Ordering::Relaxed);
    }

    /// Idle from now on: the longest idle goes first.
    pub fn set_idle(&self) {
        self.idle_since
            .store(millis_since(self.epoch), Ordering::Relaxed);
    }

    /// Completes once a newcomer has evicted this connection (at once if
    /// that happened before the call).
    pub async fn evicted(&self) {
        self.evicted.notified().await;
    }
}

/// A connection's place, given back when dropped.
pub struct Slot<T> {
    id: u64,
    connection: Arc<Connection<T>>,
    slots: Arc<Slots<T>>,
}

impl<T> Slot<T> {
    /// The connection, to keep beside the slot (in a request in progress).
    pub fn connection(&self) -> &Arc<Connection<T>> {
        &self.connection
    }
}

impl<T> Deref for Slot<T> {
    type Target = Connection<T>;

    fn deref(&self) -> &Connection<T> {
        &self.connection
    }
}

impl<T> Drop for Slot<T> {
    fn drop(&mut self) {
        let mut open = self.slots.lock();
        open.connections.remove(&self.id);
        (self.slots.on_count)(open.connections.len());
    }
}

/// A newcomer let in.
pub struct Admitted<T> {
    pub slot: Slot<T>,
    /// Whether the connection idle the longest was evicted for it.
    pub evicted_one: bool,
}

impl<T> Slots<T> {
    /// Room for `max` connections (at least one); `on_count` is told how
    /// many are open whenever that changes.
    pub fn new(max: usize, on_count: fn(usize)) -> Slots<T> {
        Slots {
            max: max.max(1),
            epoch: Instant::now(),
            open: Mutex::new(Open {
                next_id: 0,
                connections: HashMap::new(),
            }),
            on_count,
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// How many connections are open.
    pub fn open(&self) -> usize {
        self.lock().connections.len()
    }

    /// A slot for a newcomer carrying `data`: a free one, or that of the
    /// connection idle the longest, which is told to close. `None` when
    /// every connection is busy.
    pub fn admit(slots: &Arc<Slots<T>>, data: T) -> Option<Admitted<T>> {
        let mut open = slots.lock();
        let mut evicted_one = false;
        if open.connections.len() >= slots.max {
            let (&idlest, _) = open
                .connections
                .iter()
                .filter(|(_, c)| c.idle_since.load(Ordering::Relaxed) != BUSY)
                // Idle the longest; of equals, the oldest connection.
                .min_by_key(|(id, c)| (c.idle_since.load(Ordering::Relaxed), **id))?;
            if let Some(evicted) = open.connections.remove(&idlest) {
                evicted.evicted.notify_one();
                evicted_one = true;
            }
        }
        let id = open.next_id;
        open.next_id += 1;
        let connection = Arc::new(Connection {
            idle_since: AtomicU64::new(millis_since(slots.epoch)),
            epoch: slots.epoch,
            evicted: Notify::new(),
            data,
        });
        open.connections.insert(id, connection.clone());
        (slots.on_count)(open.connections.len());
        Some(Admitted {
            slot: Slot {
                id,
                connection,
                slots: slots.clone(),
            },
            evicted_one,
        })
    }

    /// The map stays whole whatever panicked while holding it: every change
    /// to it is one insert or remove.
    fn lock(&self) -> MutexGuard<'_, Open<T>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Milliseconds since `epoch`, below [`BUSY`].
fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).map_or(BUSY - 1, |ms| ms.min(BUSY - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    static COUNT: AtomicUsize = AtomicUsize::new(usize::MAX);

    fn remember(open: usize) {
        COUNT.store(open, Ordering::Relaxed);
    }

    fn is_open(slots: &Slots<&str>, slot: &Slot<&str>) -> bool {
        slots.lock().connections.contains_key(&slot.id)
    }

    #[tokio::test]
    async fn a_newcomer_evicts_the_idlest_and_is_refused_when_all_are_busy() {
        let slots = Arc::new(Slots::new(2, remember));
        let a = Slots::admit(&slots, "a").unwrap();
        assert!(!a.evicted_one);
        std::thread::sleep(Duration::from_millis(5));
        let b = Slots::admit(&slots, "b").unwrap();
        assert_eq!(COUNT.load(Ordering::Relaxed), 2);
        // Full: the idlest (a, idle since it was admitted) goes, and is told.
        let c = Slots::admit(&slots, "c").unwrap();
        assert!(c.evicted_one);
        assert!(!is_open(&slots, &a.slot));
        tokio::time::timeout(Duration::from_secs(5), a.slot.evicted())
            .await
            .expect("the evicted connection is told");
        // b and c busy: a newcomer is turned away.
        b.slot.set_busy();
        c.slot.set_busy();
        assert!(Slots::admit(&slots, "d").is_none());
        // b is idle again, and goes for the next one.
        b.slot.set_idle();
        let d = Slots::admit(&slots, "d").unwrap();
        assert!(d.evicted_one);
        assert!(!is_open(&slots, &b.slot));
        assert!(is_open(&slots, &c.slot) && is_open(&slots, &d.slot));
        assert_eq!(d.slot.data, "d");
        // Dropped slots are given back.
        drop((c, d));
        assert_eq!(slots.open(), 0);
        assert_eq!(COUNT.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn of_equally_idle_connections_the_oldest_goes() {
        let slots = Arc::new(Slots::new(2, |_| {}));
        let a = Slots::admit(&slots, "a").unwrap();
        let b = Slots::admit(&slots, "b").unwrap();
        // Both idle since the same millisecond, as far as the slots know.
        let since = a.slot.idle_since.load(Ordering::Relaxed);
        b.slot.idle_since.store(since, Ordering::Relaxed);
        let _c = Slots::admit(&slots, "c").unwrap();
        assert!(!is_open(&slots, &a.slot));
        assert!(is_open(&slots, &b.slot));
    }
}
