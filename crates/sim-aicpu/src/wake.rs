//! What the device process's threads sleep on besides mutexes: a poll of
//! the control channel together with doorbells.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use simpler_sim_protocol::channel;
use simpler_sim_protocol::Doorbell;

/// Sleeps until `channel` has any of `events`, one of `bells` rings, or
/// `timeout` passes (`None`: no limit). Returns the channel's events (with
/// `POLLHUP`/`POLLERR`) and which bells rang.
pub fn poll_channel<const N: usize>(
    channel: BorrowedFd<'_>,
    events: i16,
    bells: [&Doorbell; N],
    timeout: Option<Duration>,
) -> (i16, [bool; N]) {
    const MAX: usize = 4;
    assert!(N < MAX, "poll_channel: at most {} bells", MAX - 1);
    let mut fds = [channel::pollfd(channel, events); MAX];
    for (pfd, bell) in fds[1..].iter_mut().zip(bells) {
        *pfd = channel::pollfd(bell.as_fd(), libc::POLLIN);
    }
    if channel::poll(&mut fds[..=N], timeout).is_err() {
        // EINTR (or nothing sensible): the caller re-evaluates and polls again.
        return (0, [false; N]);
    }
    (
        fds[0].revents,
        std::array::from_fn(|i| fds[i + 1].revents != 0),
    )
}
