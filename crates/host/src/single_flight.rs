//! A cache where concurrent callers asking for the same missing key wait for
//! one computation, and a failed computation is not remembered.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::error::Error;

/// How a runner got its runtime SO installed, from the process-wide
/// bootstrap cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CacheStatus {
    /// This runner bootstrapped.
    Miss,
    /// An earlier runner in this process had bootstrapped it.
    Hit,
    /// Another runner was bootstrapping it; this one waited for that.
    Joined,
}

pub(crate) struct SingleFlight<K, V> {
    slots: Mutex<HashMap<K, Slot<V>>>,
}

enum Slot<V> {
    Ready(V),
    Running(Arc<Flight<V>>),
}

struct Flight<V> {
    result: Mutex<Option<Result<V, Error>>>,
    done: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<V: Clone> Flight<V> {
    fn wait(&self) -> Result<V, Error> {
        let mut result = lock(&self.result);
        loop {
            if let Some(r) = result.as_ref() {
                return r.clone();
            }
            result = self
                .done
                .wait(result)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Publishes the leader's outcome, also when the computation unwinds.
struct Leader<'a, K: Eq + Hash, V> {
    cache: &'a SingleFlight<K, V>,
    key: Option<K>,
    flight: Arc<Flight<V>>,
}

impl<K: Eq + Hash, V: Clone> Leader<'_, K, V> {
    fn finish(mut self, result: &Result<V, Error>) {
        self.publish(result.clone());
    }

    fn publish(&mut self, result: Result<V, Error>) {
        let Some(key) = self.key.take() else {
            return;
        };
        {
            let mut slots = lock(&self.cache.slots);
            match &result {
                Ok(v) => {
                    slots.insert(key, Slot::Ready(v.clone()));
                }
                Err(_) => {
                    slots.remove(&key);
                }
            }
        }
        *lock(&self.flight.result) = Some(result);
        self.flight.done.notify_all();
    }
}

impl<K: Eq + Hash, V> Drop for Leader<'_, K, V> {
    fn drop(&mut self) {
        // Only reached with a key left when the computation panicked.
        if let Some(key) = self.key.take() {
            lock(&self.cache.slots).remove(&key);
            *lock(&self.flight.result) = Some(Err(Error::BootstrapAbandoned));
            self.flight.done.notify_all();
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> SingleFlight<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The cached value for `key`, or the result of `compute` — run by
    /// exactly one of the callers that ask for `key` while it is missing.
    /// The others wait and share its result; an error is handed to them but
    /// not cached, so the next caller computes again.
    pub(crate) fn get_or_compute(
        &self,
        key: &K,
        compute: impl FnOnce() -> Result<V, Error>,
    ) -> Result<(V, CacheStatus), Error> {
        let flight = {
            let mut slots = lock(&self.slots);
            match slots.get(key) {
                Some(Slot::Ready(v)) => return Ok((v.clone(), CacheStatus::Hit)),
                Some(Slot::Running(flight)) => Err(flight.clone()),
                None => {
                    let flight = Arc::new(Flight {
                        result: Mutex::new(None),
                        done: Condvar::new(),
                    });
                    slots.insert(key.clone(), Slot::Running(flight.clone()));
                    Ok(flight)
                }
            }
        };
        match flight {
            Err(running) => running.wait().map(|v| (v, CacheStatus::Joined)),
            Ok(flight) => {
                let leader = Leader {
                    cache: self,
                    key: Some(key.clone()),
                    flight,
                };
                let result = compute();
                leader.finish(&result);
                result.map(|v| (v, CacheStatus::Miss))
            }
        }
    }

    /// Drops the cached value for `key`, if one is cached (a computation in
    /// flight is left alone).
    pub(crate) fn forget(&self, key: &K) {
        let mut slots = lock(&self.slots);
        if let Some(Slot::Ready(_)) = slots.get(key) {
            slots.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Barrier;
    use std::thread;
    use std::time::Duration;

    use super::*;

    #[test]
    fn concurrent_callers_share_one_computation() {
        let cache = SingleFlight::<u32, u64>::new();
        let runs = AtomicUsize::new(0);
        let barrier = Barrier::new(16);
        let statuses: Vec<CacheStatus> = thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        let (v, status) = cache
                            .get_or_compute(&7, || {
                                runs.fetch_add(1, Ordering::SeqCst);
                                thread::sleep(Duration::from_millis(100));
                                Ok(42)
                            })
                            .unwrap();
                        assert_eq!(v, 42);
                        status
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(
            statuses.iter().filter(|s| **s == CacheStatus::Miss).count(),
            1
        );
        let (_, status) = cache.get_or_compute(&7, || unreachable!()).unwrap();
        assert_eq!(status, CacheStatus::Hit);
        let (v, status) = cache.get_or_compute(&8, || Ok(1)).unwrap();
        assert_eq!((v, status), (1, CacheStatus::Miss));
    }

    #[test]
    fn failures_reach_waiters_but_are_not_cached() {
        let cache = SingleFlight::<u32, u64>::new();
        let barrier = Barrier::new(2);
        let results: Vec<_> = thread::scope(|s| {
            let a = s.spawn(|| {
                cache.get_or_compute(&1, || {
                    barrier.wait();
                    thread::sleep(Duration::from_millis(100));
                    Err(Error::InvalidArgument("boom".into()))
                })
            });
            barrier.wait();
            let b = s.spawn(|| cache.get_or_compute(&1, || Ok(5)));
            vec![a.join().unwrap(), b.join().unwrap()]
        });
        for r in &results {
            // The second caller either joined the failing flight or (if the
            // failure was already published) computed afresh.
            match r {
                Err(Error::InvalidArgument(m)) => assert_eq!(m, "boom"),
                Ok((5, CacheStatus::Miss)) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(results[0].is_err());
        let (v, status) = cache.get_or_compute(&1, || Ok(9)).unwrap();
        assert!(
            (v, status) == (9, CacheStatus::Miss) || (v, status) == (5, CacheStatus::Hit),
            "{v} {status:?}"
        );
    }

    #[test]
    fn a_panicking_leader_releases_waiters() {
        let cache = SingleFlight::<u32, u64>::new();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = cache.get_or_compute(&3, || panic!("leader dies"));
        }));
        assert!(panicked.is_err());
        let (v, status) = cache.get_or_compute(&3, || Ok(11)).unwrap();
        assert_eq!((v, status), (11, CacheStatus::Miss));
    }

    #[test]
    fn forget_drops_only_ready_values() {
        let cache = SingleFlight::<u32, u64>::new();
        cache.get_or_compute(&1, || Ok(1)).unwrap();
        cache.forget(&1);
        let (_, status) = cache.get_or_compute(&1, || Ok(2)).unwrap();
        assert_eq!(status, CacheStatus::Miss);
    }
}
