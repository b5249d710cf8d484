//! A watchdog for calls that must return: a test of a bound fails when the
//! call hangs far beyond it, without asserting on how long it took.

use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Runs `f` and returns what it returns, printing how long it took. If `f`
/// has not returned after `limit`, prints `what` and ends the process with
/// status 3: meant for a test body running in a child process
/// ([`crate::in_child`]), whose parent then sees the child fail.
pub fn within<T>(what: &str, limit: Duration, f: impl FnOnce() -> T) -> T {
    let (done, wait) = mpsc::channel::<()>();
    let name = what.to_owned();
    let dog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(limit) {
            eprintln!("watchdog: {name} did not return within {limit:?}");
            std::process::exit(3);
        }
    });
    let started = Instant::now();
    let out = f();
    let took = started.elapsed();
    let _ = done.send(());
    dog.join().expect("the watchdog thread");
    println!("{what} returned after {took:?}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_that_returns_passes_its_value_through() {
        assert_eq!(within("adding", Duration::from_secs(30), || 2 + 2), 4);
    }
}
