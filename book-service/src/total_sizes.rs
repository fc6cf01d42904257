//! `total_size` of ListBooks without a COUNT per page. A COUNT walks every matching book (10,000
//! of them cost more than the page itself), so the count of each filter is kept in memory and
//! reused by later pages and later lists:
//!
//! - a write through this process (create, update, delete) forgets its owner's counts once it
//!   committed, so a list after one's own write is exact;
//! - a count is reused for at most [`FRESH_FOR`], the bound on how far behind it can be for
//!   writes made through another replica (or another process on the same SQLite file);
//! - a count taken while one of the owner's writes committed is not kept (it may predate it).
//!
//! Memory is bounded whatever callers send: owners with no fresh count are dropped once a
//! second (the map holds the owners that listed lately, not every owner seen since the start),
//! at most [`MAX_OWNERS`] owners at once (past that the cache starts again empty), at most
//! [`MAX_FILTERS_PER_OWNER`] counts each (stale ones are dropped first, then the oldest), and a
//! filter is kept as a 64-bit hash under a per-process random key, never as its text: a few MiB
//! at most, however many distinct filters arrive. (A collision would need the key, which never
//! leaves the process.)

use std::{
    collections::{hash_map::RandomState, HashMap},
    hash::BuildHasher,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::db::Filter;

/// How long a count is reused: how far behind other replicas' writes `total_size` may be.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// Owners whose counts are kept at once.
pub const MAX_OWNERS: usize = 10_000;
/// Counts kept per owner (about 40 bytes each).
pub const MAX_FILTERS_PER_OWNER: usize = 8;

/// The kept counts (cheap to share behind an `Arc`).
#[derive(Debug, Default)]
pub struct TotalSizes {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Bumped when owners are dropped, so a count begun before is not kept.
    epoch: u64,
    /// When owners without a fresh count were last dropped.
    swept: Option<Instant>,
    owners: HashMap<String, Owner>,
    /// Hashes filter fingerprints with a key of this process.
    hasher: RandomState,
}

#[derive(Debug, Default)]
struct Owner {
    /// Bumped by each committed write of this owner.
    generation: u64,
    /// Hash of the filter's fingerprint → (count, when it was taken).
    sizes: HashMap<u64, (i64, Instant)>,
}

/// What [`TotalSizes::get`] hands out on a miss: the state a new count must still match to be
/// kept.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    epoch: u64,
    generation: u64,
}

impl TotalSizes {
    /// The kept count of `filter`'s books, or the ticket to keep a fresh count with.
    pub fn get(&self, filter: &Filter) -> Result<i64, Ticket> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.swept.is_none_or(|at| at.elapsed() >= FRESH_FOR) {
            let before = inner.owners.len();
            (inner.owners).retain(|_, owner| owner.sizes.values().any(|(_, at)| fresh(*at)));
            if inner.owners.len() < before {
                inner.epoch += 1;
            }
            inner.swept = Some(Instant::now());
        }
        if inner.owners.len() >= MAX_OWNERS && !inner.owners.contains_key(&filter.owner_id) {
            inner.owners.clear();
            inner.epoch += 1;
        }
        let epoch = inner.epoch;
        let key = inner.hasher.hash_one(filter.fingerprint());
        // Made now (not when the count is kept) so that a write committing meanwhile is seen.
        let owner = inner.owners.entry(filter.owner_id.clone()).or_default();
        match owner.sizes.get(&key) {
            Some((size, taken)) if fresh(*taken) => Ok(*size),
            _ => Err(Ticket {
                epoch,
                generation: owner.generation,
            }),
        }
    }

    /// Keeps `size`, counted after `ticket` was handed out, unless a write of the owner
    /// committed since.
    pub fn put(&self, filter: &Filter, ticket: Ticket, size: i64) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.epoch != ticket.epoch {
            return;
        }
        let key = inner.hasher.hash_one(filter.fingerprint());
        if let Some(owner) = inner.owners.get_mut(&filter.owner_id) {
            if owner.generation == ticket.generation {
                owner.sizes.retain(|_, (_, taken)| fresh(*taken));
                if owner.sizes.len() >= MAX_FILTERS_PER_OWNER {
                    let oldest = owner.sizes.iter().min_by_key(|(_, (_, taken))| *taken);
                    if let Some(&oldest) = oldest.map(|(key, _)| key) {
                        owner.sizes.remove(&oldest);
                    }
                }
                owner.sizes.insert(key, (size, Instant::now()));
            }
        }
    }

    /// Forgets `owner_id`'s counts after one of its writes committed.
    pub fn changed(&self, owner_id: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(owner) = inner.owners.get_mut(owner_id) {
            owner.generation += 1;
            owner.sizes.clear();
        }
    }
}

/// Whether a count taken at `taken` may still be reused.
fn fresh(taken: Instant) -> bool {
    taken.elapsed() < FRESH_FOR
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_keeps_a_bounded_number_of_counts_however_many_filters_arrive() {
        let sizes = TotalSizes::default();
        for i in 0..1000 {
            let author = format!("author {i}");
            let one = filter("alice", Some(&author));
            let ticket = sizes.get(&one).expect_err("a new filter");
            sizes.put(&one, ticket, i);
        }
        let inner = sizes.inner.lock().expect("not poisoned");
        assert_eq!(inner.owners["alice"].sizes.len(), MAX_FILTERS_PER_OWNER);
    }

    fn filter(owner: &str, author: Option<&str>) -> Filter {
        Filter {
            owner_id: owner.into(),
            author: author.map(str::to_string),
            title_query: None,
        }
    }

    #[test]
    fn a_count_is_reused_per_filter_until_a_write_of_its_owner() {
        let sizes = TotalSizes::default();
        let all = filter("alice", None);
        let ticket = sizes.get(&all).expect_err("nothing kept yet");
        sizes.put(&all, ticket, 7);
        assert_eq!(sizes.get(&all).ok(), Some(7));
        assert!(
            sizes.get(&filter("alice", Some("le guin"))).is_err(),
            "per filter"
        );
        assert!(sizes.get(&filter("bob", None)).is_err(), "per owner");
        sizes.changed("bob");
        assert_eq!(sizes.get(&all).ok(), Some(7), "another owner's write");
        sizes.changed("alice");
        assert!(sizes.get(&all).is_err(), "forgotten after alice's write");
    }

    #[test]
    fn a_count_taken_while_a_write_committed_is_not_kept() {
        let sizes = TotalSizes::default();
        let all = filter("alice", None);
        let first = sizes.get(&all).expect_err("miss");
        sizes.put(&all, first, 1);
        sizes.changed("alice");
        let ticket = sizes.get(&all).expect_err("miss after the write");
        sizes.changed("alice"); // a second write commits while the count runs
        sizes.put(&all, ticket, 1);
        assert!(sizes.get(&all).is_err(), "the count may predate the write");

        let bob = filter("bob", None);
        let ticket = sizes.get(&bob).expect_err("bob's first list");
        sizes.changed("bob"); // bob's first write commits while his first count runs
        sizes.put(&bob, ticket, 0);
        assert!(
            sizes.get(&bob).is_err(),
            "also for an owner seen for the first time"
        );
    }

    #[test]
    fn owners_without_a_fresh_count_are_dropped_once_a_second() {
        let sizes = TotalSizes::default();
        for i in 0..100 {
            let one = filter(&format!("owner {i}"), None);
            let ticket = sizes.get(&one).expect_err("a new owner");
            sizes.put(&one, ticket, i);
        }
        let long_ago = Instant::now()
            .checked_sub(Duration::from_secs(2))
            .expect("the clock is past two seconds");
        {
            let mut inner = sizes.inner.lock().expect("not poisoned");
            assert_eq!(inner.owners.len(), 100);
            // Every count but owner 7's has gone stale, and the last sweep was long ago.
            for (id, owner) in inner.owners.iter_mut() {
                if id != "owner 7" {
                    owner
                        .sizes
                        .values_mut()
                        .for_each(|(_, taken)| *taken = long_ago);
                }
            }
            inner.swept = Some(long_ago);
        }
        assert_eq!(sizes.get(&filter("owner 7", None)).ok(), Some(7));
        let inner = sizes.inner.lock().expect("not poisoned");
        assert_eq!(inner.owners.keys().collect::<Vec<_>>(), ["owner 7"]);
    }
}
