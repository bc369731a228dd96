//! The scheduling queue, as upstream's `PriorityQueue`: an *active* heap the scheduler pops
//! (higher priority first, then the earliest queued — PrioritySort), a *back-off* set of pods
//! that failed recently (1 s doubling to 10 s by default), and an *unschedulable* set of pods
//! that did not fit, parked until a cluster event one of their rejecting plugins registered
//! (node added, pod deleted, …) or five minutes pass. Pods kept out by PreEnqueue (scheduling
//! gates) wait in the unschedulable set until they change.
//!
//! Also the nominator: pods nominated to a node by preemption, which the filters count as
//! already there for pods of lower priority.

use std::{
    cmp::Ordering,
    collections::{BTreeSet, BinaryHeap, HashMap, HashSet},
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::Pod;

use crate::framework::{ClusterEvent, PodInfo, types::pod_priority};

/// A pod waiting in the unschedulable set longer than this is retried anyway.
pub const MAX_IN_UNSCHEDULABLE: Duration = Duration::from_secs(5 * 60);

/// A pod taken off the queue for one scheduling attempt.
#[derive(Debug, Clone)]
pub struct QueuedPod {
    /// The pod at the time it was popped.
    pub pod: Arc<Pod>,
    /// Attempts so far (this one included).
    pub attempts: u32,
    /// When it first entered the queue (for the scheduling latency metric).
    pub initial: Instant,
    /// The scheduling cycle this attempt belongs to.
    pub cycle: u64,
}

#[derive(Debug)]
struct Entry {
    pod: Arc<Pod>,
    attempts: u32,
    initial: Instant,
    /// When the pod was last (re)queued: the tie-breaker of PrioritySort.
    timestamp: Instant,
    /// Plugins that rejected it last time.
    rejectors: HashSet<&'static str>,
    /// Where the pod is.
    place: Place,
    /// End of its current back-off.
    backoff_until: Option<Instant>,
    /// Monotonic sequence of its current place, so stale heap entries are ignored.
    seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Active,
    Backoff,
    Unschedulable,
    /// Popped and being scheduled.
    InFlight,
}

#[derive(Debug, PartialEq, Eq)]
struct HeapItem {
    priority: i32,
    timestamp: Instant,
    seq: u64,
    uid: String,
}

impl Ord for HeapItem {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.timestamp.cmp(&self.timestamp))
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for HeapItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Default)]
struct State {
    pods: HashMap<String, Entry>,
    /// The uids whose place is `Unschedulable`, so cluster events touch only those.
    unschedulable: HashSet<String>,
    active: BinaryHeap<HeapItem>,
    backoff: BTreeSet<(Instant, u64, String)>,
    seq: u64,
    cycle: u64,
    /// The cycle in which the last move request (cluster event) happened.
    move_request_cycle: u64,
    closed: bool,
    /// node → nominated pods; uid → node.
    nominated: HashMap<String, Vec<Arc<PodInfo>>>,
    nominated_node: HashMap<String, String>,
}

/// The scheduling queue; shared between the event handlers and the scheduling loop.
#[derive(Debug)]
pub struct SchedulingQueue {
    state: Mutex<State>,
    ready: Condvar,
    initial_backoff: Duration,
    max_backoff: Duration,
    /// plugin → the events after which a pod it rejected may fit.
    events: HashMap<&'static str, Vec<ClusterEvent>>,
}

fn uid_of(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

impl SchedulingQueue {
    /// An empty queue.
    pub fn new(
        initial_backoff: Duration,
        max_backoff: Duration,
        events: HashMap<&'static str, Vec<ClusterEvent>>,
    ) -> Self {
        Self {
            state: Mutex::default(),
            ready: Condvar::new(),
            initial_backoff,
            max_backoff,
            events,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push_active(state: &mut State, uid: &str) {
        state.seq += 1;
        let seq = state.seq;
        state.unschedulable.remove(uid);
        if let Some(e) = state.pods.get_mut(uid) {
            e.place = Place::Active;
            e.seq = seq;
            state.active.push(HeapItem {
                priority: pod_priority(&e.pod),
                timestamp: e.timestamp,
                seq,
                uid: uid.to_owned(),
            });
        }
    }

    fn push_backoff(state: &mut State, uid: &str, until: Instant) {
        state.seq += 1;
        let seq = state.seq;
        state.unschedulable.remove(uid);
        if let Some(e) = state.pods.get_mut(uid) {
            e.place = Place::Backoff;
            e.seq = seq;
            e.backoff_until = Some(until);
            state.backoff.insert((until, seq, uid.to_owned()));
        }
    }

    /// A new unscheduled pod; `gated` is its PreEnqueue verdict (`Some(plugin)` keeps it out of
    /// the active queue).
    pub fn add(&self, pod: Arc<Pod>, gated_by: Option<&'static str>) {
        let uid = uid_of(&pod);
        let mut state = self.lock();
        let now = Instant::now();
        if let Some(e) = state.pods.get_mut(&uid) {
            // Already known: an update.
            e.pod = pod;
            drop(state);
            self.update_gate(&uid, gated_by);
            return;
        }
        state.pods.insert(
            uid.clone(),
            Entry {
                pod,
                attempts: 0,
                initial: now,
                timestamp: now,
                rejectors: gated_by.into_iter().collect(),
                place: Place::Unschedulable,
                backoff_until: None,
                seq: 0,
            },
        );
        if gated_by.is_none() {
            Self::push_active(&mut state, &uid);
            self.ready.notify_one();
        } else {
            state.unschedulable.insert(uid);
        }
    }

    /// An unscheduled pod changed: a pod parked as unschedulable is retried when its spec
    /// changed in a way that may help (upstream re-queues on any update of a rejected pod).
    pub fn update(&self, pod: Arc<Pod>, gated_by: Option<&'static str>) {
        let uid = uid_of(&pod);
        let mut state = self.lock();
        let Some(e) = state.pods.get_mut(&uid) else {
            drop(state);
            self.add(pod, gated_by);
            return;
        };
        let spec_changed = e.pod.spec != pod.spec
            || e.pod.metadata.labels != pod.metadata.labels
            || e.pod.metadata.annotations != pod.metadata.annotations;
        e.pod = pod;
        let place = e.place;
        drop(state);
        if place == Place::Unschedulable && spec_changed {
            self.update_gate(&uid, gated_by);
        }
    }

    fn update_gate(&self, uid: &str, gated_by: Option<&'static str>) {
        let mut state = self.lock();
        let Some(e) = state.pods.get_mut(uid) else {
            return;
        };
        if e.place != Place::Unschedulable {
            return;
        }
        match gated_by {
            Some(plugin) => {
                e.rejectors = HashSet::from([plugin]);
            }
            None => {
                let until = e.backoff_until.filter(|t| *t > Instant::now());
                e.timestamp = Instant::now();
                match until {
                    Some(t) => Self::push_backoff(&mut state, uid, t),
                    None => Self::push_active(&mut state, uid),
                }
                self.ready.notify_one();
            }
        }
    }

    /// The pod was deleted or got assigned elsewhere.
    pub fn delete(&self, uid: &str) {
        let mut state = self.lock();
        state.pods.remove(uid);
        state.unschedulable.remove(uid);
        Self::remove_nominated(&mut state, uid);
    }

    /// True when the queue holds the pod (in any set, or in flight).
    pub fn contains(&self, uid: &str) -> bool {
        self.lock().pods.contains_key(uid)
    }

    /// Blocks until a pod is active (moving expired back-offs first), or the queue is closed.
    pub fn pop(&self) -> Option<QueuedPod> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return None;
            }
            let now = Instant::now();
            self.flush_backoff(&mut state, now);
            while let Some(item) = state.active.pop() {
                let current = state
                    .pods
                    .get(&item.uid)
                    .is_some_and(|e| e.place == Place::Active && e.seq == item.seq);
                if !current {
                    continue;
                }
                state.cycle += 1;
                let cycle = state.cycle;
                if let Some(e) = state.pods.get_mut(&item.uid) {
                    e.place = Place::InFlight;
                    e.attempts += 1;
                    return Some(QueuedPod {
                        pod: e.pod.clone(),
                        attempts: e.attempts,
                        initial: e.initial,
                        cycle,
                    });
                }
            }
            let wait = state
                .backoff
                .iter()
                .next()
                .map(|(t, _, _)| t.saturating_duration_since(now))
                .unwrap_or(Duration::from_secs(1))
                .clamp(Duration::from_millis(1), Duration::from_secs(1));
            state = self
                .ready
                .wait_timeout(state, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            self.flush_unschedulable(&mut state, Instant::now());
        }
    }

    fn flush_backoff(&self, state: &mut State, now: Instant) {
        while let Some(first) = state.backoff.iter().next().cloned() {
            if first.0 > now {
                break;
            }
            state.backoff.remove(&first);
            let (_, seq, uid) = first;
            let current = state
                .pods
                .get(&uid)
                .is_some_and(|e| e.place == Place::Backoff && e.seq == seq);
            if current {
                Self::push_active(state, &uid);
            }
        }
    }

    fn flush_unschedulable(&self, state: &mut State, now: Instant) {
        let stale: Vec<String> = state
            .unschedulable
            .iter()
            .filter(|uid| {
                state.pods.get(*uid).is_some_and(|e| {
                    now.duration_since(e.timestamp) > MAX_IN_UNSCHEDULABLE
                        && !e.rejectors.contains(crate::plugins::scheduling_gates::NAME)
                })
            })
            .cloned()
            .collect();
        for uid in stale {
            self.requeue_moved(state, &uid, now);
        }
    }

    fn backoff_duration(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        self.initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff)
    }

    /// The attempt failed: park the pod as unschedulable (rejected by `rejectors`), or, when a
    /// cluster event arrived while it was being scheduled or the failure was an error, put it
    /// in back-off so it is retried soon.
    pub fn requeue_failed(
        &self,
        popped: &QueuedPod,
        rejectors: HashSet<&'static str>,
        error: bool,
    ) {
        let uid = uid_of(&popped.pod);
        let mut state = self.lock();
        let now = Instant::now();
        let backoff = self.backoff_duration(popped.attempts);
        let moved_meanwhile = state.move_request_cycle >= popped.cycle;
        let Some(e) = state.pods.get_mut(&uid) else {
            return;
        };
        if e.place != Place::InFlight {
            return;
        }
        e.timestamp = now;
        e.rejectors = rejectors;
        e.backoff_until = Some(now + backoff);
        if error || moved_meanwhile || e.rejectors.is_empty() {
            Self::push_backoff(&mut state, &uid, now + backoff);
        } else {
            e.place = Place::Unschedulable;
            state.unschedulable.insert(uid);
        }
        self.ready.notify_one();
    }

    /// The pod was bound (or assumed and binding is under way): it leaves the queue.
    pub fn done(&self, uid: &str) {
        let mut state = self.lock();
        if state
            .pods
            .get(uid)
            .is_some_and(|e| e.place == Place::InFlight)
        {
            state.pods.remove(uid);
        }
    }

    fn requeue_moved(&self, state: &mut State, uid: &str, now: Instant) {
        let Some(e) = state.pods.get_mut(uid) else {
            return;
        };
        e.timestamp = now;
        match e.backoff_until.filter(|t| *t > now) {
            Some(t) => Self::push_backoff(state, uid, t),
            None => Self::push_active(state, uid),
        }
    }

    /// A cluster event happened: every unschedulable pod rejected by a plugin that registered
    /// a matching event is retried (after its back-off).
    pub fn on_event(&self, event: ClusterEvent) {
        let mut state = self.lock();
        state.move_request_cycle = state.cycle;
        if state.unschedulable.is_empty() {
            return;
        }
        let now = Instant::now();
        let moved: Vec<String> = state
            .unschedulable
            .iter()
            .filter_map(|uid| state.pods.get(uid).map(|e| (uid, e)))
            .filter(|(_, e)| {
                e.rejectors.iter().any(|p| {
                    *p != crate::plugins::scheduling_gates::NAME
                        && self
                            .events
                            .get(p)
                            .is_none_or(|evs| evs.iter().any(|r| r.covers(&event)))
                })
            })
            .map(|(uid, _)| (*uid).clone())
            .collect();
        if moved.is_empty() {
            return;
        }
        for uid in &moved {
            self.requeue_moved(&mut state, uid, now);
        }
        self.ready.notify_all();
    }

    /// Stops the queue: `pop` returns `None` from now on.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Pods in each set: (active, backoff, unschedulable), for metrics and tests.
    pub fn lengths(&self) -> (usize, usize, usize) {
        let state = self.lock();
        let count = |p: Place| state.pods.values().filter(|e| e.place == p).count();
        debug_assert_eq!(count(Place::Unschedulable), state.unschedulable.len());
        (
            count(Place::Active),
            count(Place::Backoff),
            state.unschedulable.len(),
        )
    }

    fn remove_nominated(state: &mut State, uid: &str) {
        if let Some(node) = state.nominated_node.remove(uid)
            && let Some(list) = state.nominated.get_mut(&node)
        {
            list.retain(|p| p.uid() != uid);
            if list.is_empty() {
                state.nominated.remove(&node);
            }
        }
    }

    /// Records (or clears, with `None`) the node a pod is nominated to.
    pub fn nominate(&self, pod: Arc<PodInfo>, node: Option<&str>) {
        let uid = pod.uid().to_owned();
        let mut state = self.lock();
        Self::remove_nominated(&mut state, &uid);
        if let Some(node) = node.filter(|n| !n.is_empty()) {
            state.nominated_node.insert(uid, node.to_owned());
            state
                .nominated
                .entry(node.to_owned())
                .or_default()
                .push(pod);
        }
    }

    /// Pods nominated per node.
    pub fn nominated(&self) -> HashMap<String, Vec<Arc<PodInfo>>> {
        self.lock().nominated.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        framework::{ActionType, EventResource},
        plugins::testing::PodBuilder,
    };

    fn queue() -> SchedulingQueue {
        let events = HashMap::from([(
            "NodeResourcesFit",
            vec![ClusterEvent::new(EventResource::Node, ActionType::Add)],
        )]);
        SchedulingQueue::new(Duration::from_millis(20), Duration::from_millis(80), events)
    }

    fn pod(name: &str, priority: i32) -> Arc<Pod> {
        Arc::new(PodBuilder::new(name).priority(priority).build())
    }

    #[test]
    fn pops_by_priority_then_age() {
        let q = queue();
        q.add(pod("low", 1), None);
        q.add(pod("high", 10), None);
        q.add(pod("low2", 1), None);
        let order: Vec<String> = (0..3)
            .map(|_| {
                q.pop()
                    .expect("pod")
                    .pod
                    .metadata
                    .name
                    .clone()
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(order, ["high", "low", "low2"]);
    }

    #[test]
    fn unschedulable_pods_wait_for_a_matching_event() {
        let q = queue();
        q.add(pod("a", 0), None);
        let p = q.pop().expect("pod");
        q.requeue_failed(&p, HashSet::from(["NodeResourcesFit"]), false);
        assert_eq!(q.lengths(), (0, 0, 1));
        // An unrelated event does not move it.
        q.on_event(ClusterEvent::new(
            EventResource::PersistentVolume,
            ActionType::Add,
        ));
        assert_eq!(q.lengths(), (0, 0, 1));
        q.on_event(ClusterEvent::new(EventResource::Node, ActionType::Add));
        let (active, backoff, unsched) = q.lengths();
        assert_eq!((active + backoff, unsched), (1, 0));
        // After the back-off it pops again.
        let again = q.pop().expect("pod");
        assert_eq!(again.attempts, 2);
    }

    #[test]
    fn errors_back_off_and_double() {
        let q = queue();
        assert_eq!(q.backoff_duration(1), Duration::from_millis(20));
        assert_eq!(q.backoff_duration(2), Duration::from_millis(40));
        assert_eq!(q.backoff_duration(5), Duration::from_millis(80));
        q.add(pod("a", 0), None);
        let p = q.pop().expect("pod");
        let t = Instant::now();
        q.requeue_failed(&p, HashSet::new(), true);
        assert_eq!(q.lengths(), (0, 1, 0));
        q.pop().expect("pod");
        assert!(t.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn gated_pods_enter_when_the_gate_is_lifted() {
        let q = queue();
        q.add(pod("g", 0), Some(crate::plugins::scheduling_gates::NAME));
        assert_eq!(q.lengths(), (0, 0, 1));
        q.on_event(ClusterEvent::new(EventResource::Node, ActionType::Add));
        assert_eq!(q.lengths(), (0, 0, 1));
        let mut lifted = (*pod("g", 0)).clone();
        lifted.metadata.labels = Some([("x".to_owned(), "y".to_owned())].into());
        q.update(Arc::new(lifted), None);
        assert_eq!(q.lengths(), (1, 0, 0));
    }

    #[test]
    fn deleted_pods_never_pop() {
        let q = queue();
        q.add(pod("a", 0), None);
        q.add(pod("b", 0), None);
        q.delete("a");
        assert_eq!(
            q.pop().expect("pod").pod.metadata.name.as_deref(),
            Some("b")
        );
        q.close();
        assert!(q.pop().is_none());
    }
}
