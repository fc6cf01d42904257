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
//! At most [`MAX_OWNERS`] owners are kept; past that the cache starts again empty.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::db::Filter;

/// How long a count is reused: how far behind other replicas' writes `total_size` may be.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// Owners whose counts are kept at once (a few hundred bytes each).
const MAX_OWNERS: usize = 10_000;

/// The kept counts (cheap to share behind an `Arc`).
#[derive(Debug, Default)]
pub struct TotalSizes {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Bumped when the owners are dropped, so a count begun before is not kept.
    epoch: u64,
    owners: HashMap<String, Owner>,
}

#[derive(Debug, Default)]
struct Owner {
    /// Bumped by each committed write of this owner.
    generation: u64,
    /// Filter fingerprint → (count, when it was taken).
    sizes: HashMap<String, (i64, Instant)>,
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
        if inner.owners.len() >= MAX_OWNERS && !inner.owners.contains_key(&filter.owner_id) {
            inner.owners.clear();
            inner.epoch += 1;
        }
        let epoch = inner.epoch;
        // Made now (not when the count is kept) so that a write committing meanwhile is seen.
        let owner = inner.owners.entry(filter.owner_id.clone()).or_default();
        match owner.sizes.get(&filter.fingerprint()) {
            Some((size, taken)) if taken.elapsed() < FRESH_FOR => Ok(*size),
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
        if let Some(owner) = inner.owners.get_mut(&filter.owner_id) {
            if owner.generation == ticket.generation {
                owner
                    .sizes
                    .insert(filter.fingerprint(), (size, Instant::now()));
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
