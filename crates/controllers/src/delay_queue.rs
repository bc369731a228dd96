//! A small keyed delay queue: each key is due once at its earliest requested time, so a key
//! added again while waiting is not processed twice.

use std::{
    collections::{BTreeSet, HashMap},
    time::Duration,
};

use tokio::time::Instant;

/// Keys with due times; [`DelayQueue::next`] waits for the earliest.
#[derive(Debug, Default)]
pub struct DelayQueue {
    due: BTreeSet<(Instant, String)>,
    by_key: HashMap<String, Instant>,
}

impl DelayQueue {
    /// Makes `key` due after `delay`, unless it is already due sooner.
    pub fn add(&mut self, key: String, delay: Duration) {
        let at = Instant::now() + delay;
        if let Some(old) = self.by_key.get(&key) {
            if *old <= at {
                return;
            }
            self.due.remove(&(*old, key.clone()));
        }
        self.by_key.insert(key.clone(), at);
        self.due.insert((at, key));
    }

    /// Whether no key is waiting.
    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
    }

    /// Waits for the earliest key to be due and removes it; pending forever when empty
    /// (so it can sit in a `select!` beside other sources).
    pub async fn next(&mut self) -> Option<String> {
        let Some((at, _)) = self.due.first().cloned() else {
            return std::future::pending().await;
        };
        tokio::time::sleep_until(at).await;
        let (_, key) = self.due.pop_first()?;
        self.by_key.remove(&key);
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn keys_come_out_once_in_due_order() {
        let mut q = DelayQueue::default();
        q.add("b".into(), Duration::from_secs(2));
        q.add("a".into(), Duration::from_secs(1));
        q.add("b".into(), Duration::from_secs(5));
        q.add("a".into(), Duration::from_millis(500));
        assert_eq!(q.next().await.as_deref(), Some("a"));
        assert_eq!(q.next().await.as_deref(), Some("b"));
        assert!(q.is_empty());
    }
}
