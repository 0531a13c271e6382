//! The start of a run: the workers' meeting point before their loops, so
//! that a run's time (`--duration`) counts from when every worker serves
//! its queue, not from when the threads were spawned.
//!
//! A worker's set-up (its stacks' connection tables made up front, tens of
//! MB) took seconds on a loaded machine: a 4 s run then ended before any
//! worker had looped once (`loops` 0, nothing sent: a loadgen opened 0
//! connections whenever another veth test ran beside it).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Longest wait for the other workers' set-up (a worker that died or hangs
/// in its set-up does not hold the others, or the run, for ever).
pub const START_WAIT: Duration = Duration::from_secs(60);

/// Counts the workers whose set-up is done.
#[derive(Default)]
pub struct StartSync {
    ready: AtomicUsize,
}

impl StartSync {
    pub fn new() -> StartSync {
        StartSync::default()
    }

    /// Workers ready so far.
    pub fn ready(&self) -> usize {
        self.ready.load(Ordering::Acquire)
    }

    /// This worker is set up: wait (bounded by [`START_WAIT`], or until
    /// `stop`) until all `workers` are, so that no worker sends before
    /// another can receive its answers. Whether all were.
    pub fn arrive_and_wait(&self, workers: usize, stop: &AtomicBool) -> bool {
        self.ready.fetch_add(1, Ordering::AcqRel);
        self.wait(workers, stop, &|| false)
    }

    /// Wait (bounded, as above) until all `workers` are ready, `stop` is
    /// set or `gone()` (e.g. every worker thread ended); whether all were.
    pub fn wait(&self, workers: usize, stop: &AtomicBool, gone: &dyn Fn() -> bool) -> bool {
        let deadline = Instant::now() + START_WAIT;
        while self.ready() < workers
            && !stop.load(Ordering::Relaxed)
            && !gone()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_micros(500));
        }
        self.ready() >= workers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn workers_start_together_and_a_stop_releases_the_wait() {
        let s = Arc::new(StartSync::new());
        let stop = Arc::new(AtomicBool::new(false));
        let slow = {
            let (s, stop) = (s.clone(), stop.clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                s.arrive_and_wait(2, &stop)
            })
        };
        let t = Instant::now();
        assert!(s.arrive_and_wait(2, &stop));
        assert!(t.elapsed() >= Duration::from_millis(40), "did not wait");
        assert!(slow.join().unwrap());
        assert!(s.wait(2, &stop, &|| false));
        // One worker of three never arrives: a stop (a signal) ends the
        // wait, and says not all were ready.
        let s = StartSync::new();
        stop.store(true, Ordering::Relaxed);
        assert!(!s.arrive_and_wait(3, &stop));
        let stop = AtomicBool::new(false);
        assert!(!s.wait(3, &stop, &|| true), "every thread gone");
    }
}
