//! The writer's in-memory view of the leases: their TTLs and deadlines, and a timer queue that
//! tells the writer when the next lease expires (so expiry never polls the database).
//!
//! Only the TTL is persisted. Like etcd after a leader change, a restarted store gives every
//! lease a fresh full TTL: a lease never expires because the store was down, and keep-alives
//! cost no disk write.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
    time::{Duration, Instant},
};

use crate::LeaseId;

/// One live lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lease {
    /// The time to live granted, renewed by each keep-alive.
    pub(crate) ttl: Duration,
    /// When the lease expires unless renewed.
    pub(crate) deadline: Instant,
}

/// The leases and a min-heap of their deadlines.
///
/// The heap may hold stale entries (for renewed or revoked leases); an entry counts only while
/// it matches the lease's current deadline.
#[derive(Debug, Default)]
pub(crate) struct LeaseTable {
    leases: HashMap<LeaseId, Lease>,
    deadlines: BinaryHeap<Reverse<(Instant, LeaseId)>>,
}

/// `now + ttl`, or a deadline far in the future for absurd TTLs.
fn deadline(now: Instant, ttl: Duration) -> Instant {
    now.checked_add(ttl)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

impl LeaseTable {
    /// Adds a lease expiring `ttl` after `now`.
    pub(crate) fn grant(&mut self, id: LeaseId, ttl: Duration, now: Instant) {
        self.restore(
            id,
            Lease {
                ttl,
                deadline: deadline(now, ttl),
            },
        );
    }

    /// Puts a lease back as it was (undoing a revocation).
    pub(crate) fn restore(&mut self, id: LeaseId, lease: Lease) {
        self.leases.insert(id, lease);
        self.deadlines.push(Reverse((lease.deadline, id)));
        self.trim();
    }

    /// Removes a lease, returning it.
    pub(crate) fn remove(&mut self, id: LeaseId) -> Option<Lease> {
        self.leases.remove(&id)
    }

    /// Whether the lease exists (expired or not).
    pub(crate) fn contains(&self, id: LeaseId) -> bool {
        self.leases.contains_key(&id)
    }

    /// Whether the lease exists and has not expired at `now`.
    pub(crate) fn is_live(&self, id: LeaseId, now: Instant) -> bool {
        self.leases.get(&id).is_some_and(|l| l.deadline > now)
    }

    /// Renews a live lease for its full TTL; `false` if it expired or never existed.
    pub(crate) fn keep_alive(&mut self, id: LeaseId, now: Instant) -> bool {
        let Some(lease) = self.leases.get_mut(&id).filter(|l| l.deadline > now) else {
            return false;
        };
        lease.deadline = deadline(now, lease.ttl);
        let entry = Reverse((lease.deadline, id));
        self.deadlines.push(entry);
        self.trim();
        true
    }

    /// The earliest deadline of a live lease.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, id))) = self.deadlines.peek().copied() {
            if self.is_current(at, id) {
                return Some(at);
            }
            self.deadlines.pop();
        }
        None
    }

    /// The leases whose deadline is at or before `now`. They stay in the table until revoked;
    /// [`LeaseTable::requeue`] re-arms the timer of one whose revocation failed.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Vec<LeaseId> {
        let mut expired = Vec::new();
        while let Some(Reverse((at, id))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if self.is_current(at, id) {
                expired.push(id);
            }
        }
        expired
    }

    /// Re-arms the timer of a lease still in the table.
    pub(crate) fn requeue(&mut self, id: LeaseId) {
        if let Some(lease) = self.leases.get(&id) {
            self.deadlines.push(Reverse((lease.deadline, id)));
        }
    }

    /// The number of leases.
    pub(crate) fn len(&self) -> usize {
        self.leases.len()
    }

    fn is_current(&self, at: Instant, id: LeaseId) -> bool {
        self.leases.get(&id).is_some_and(|l| l.deadline == at)
    }

    /// Drops stale heap entries once they outnumber the live ones, so that frequent keep-alives
    /// do not grow the heap without bound.
    fn trim(&mut self) {
        if self.deadlines.len() > 2 * self.leases.len() + 1024 {
            self.deadlines = self
                .leases
                .iter()
                .map(|(id, l)| Reverse((l.deadline, *id)))
                .collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_leases_come_out_in_deadline_order_and_renewals_postpone_them() {
        let now = Instant::now();
        let mut table = LeaseTable::default();
        table.grant(1, Duration::from_secs(3), now);
        table.grant(2, Duration::from_secs(1), now);
        table.grant(3, Duration::from_secs(2), now);
        assert_eq!(table.next_deadline(), Some(now + Duration::from_secs(1)));

        assert!(table.keep_alive(2, now + Duration::from_millis(500)));
        assert_eq!(
            table.take_expired(now + Duration::from_millis(1200)),
            Vec::<LeaseId>::new(),
            "the renewed lease's old deadline no longer counts"
        );
        assert_eq!(
            table.next_deadline(),
            Some(now + Duration::from_millis(1500))
        );
        assert!(table.is_live(2, now + Duration::from_secs(1)));
        assert_eq!(table.take_expired(now + Duration::from_secs(2)), vec![2, 3]);
        assert!(
            !table.is_live(3, now + Duration::from_secs(2)),
            "lease 3 expired"
        );
        assert!(
            table.contains(3),
            "an expired lease stays until it is revoked"
        );
        assert_eq!(table.next_deadline(), Some(now + Duration::from_secs(3)));
    }

    #[test]
    fn expired_leases_cannot_be_kept_alive_and_requeue_rearms_the_timer() {
        let now = Instant::now();
        let mut table = LeaseTable::default();
        table.grant(7, Duration::from_secs(1), now);
        let later = now + Duration::from_secs(2);
        assert!(!table.keep_alive(7, later));
        assert_eq!(table.take_expired(later), vec![7]);
        assert_eq!(table.next_deadline(), None);
        table.requeue(7);
        assert_eq!(table.take_expired(later), vec![7]);
        assert!(table.remove(7).is_some());
        table.requeue(7);
        assert_eq!(table.next_deadline(), None);
    }

    #[test]
    fn frequent_keep_alives_do_not_grow_the_timer_queue() {
        let now = Instant::now();
        let mut table = LeaseTable::default();
        table.grant(1, Duration::from_secs(10), now);
        for i in 0..10_000 {
            assert!(table.keep_alive(1, now + Duration::from_millis(i)));
        }
        assert!(table.deadlines.len() <= 2 + 1024 + 1);
    }
}
