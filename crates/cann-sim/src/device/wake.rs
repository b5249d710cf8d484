//! What the device process's threads sleep on besides mutexes: an eventfd
//! doorbell, and a poll of the control channel with a bell.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

/// An eventfd used as a doorbell: [`Bell::ring`] wakes a sleeper,
/// [`Bell::clear`] makes it quiet again. Non-blocking, close-on-exec.
pub struct Bell(OwnedFd);

impl Bell {
    /// A quiet bell.
    pub fn new() -> io::Result<Self> {
        crate::protocol::bell().map(Self)
    }

    /// A bell whose eventfd was handed to this process (the host library's
    /// hint, see `engine`).
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self(fd)
    }

    /// Wakes one sleeper (each ring is one wake-up event, even when the
    /// bell is already ringing).
    pub fn ring(&self) {
        crate::protocol::ring(self.0.as_fd());
    }

    /// Silences the bell (reading an eventfd resets it).
    pub fn clear(&self) {
        let mut count = 0u64;
        // SAFETY: reads 8 bytes into `count`; EAGAIN when already quiet.
        unsafe { libc::read(self.0.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
    }
}

/// Sleeps until `channel` has any of `events`, one of `bells` rings, or
/// `timeout` passes (`None`: no limit). Returns the channel's events (with
/// `POLLHUP`/`POLLERR`) and which bells rang.
pub fn poll_channel<const N: usize>(
    channel: BorrowedFd<'_>,
    events: i16,
    bells: [&Bell; N],
    timeout: Option<Duration>,
) -> (i16, [bool; N]) {
    const MAX: usize = 4;
    assert!(N < MAX, "poll_channel: at most {} bells", MAX - 1);
    let mut fds = [libc::pollfd {
        fd: channel.as_raw_fd(),
        events,
        revents: 0,
    }; MAX];
    for (pfd, bell) in fds[1..].iter_mut().zip(bells) {
        pfd.fd = bell.0.as_raw_fd();
        pfd.events = libc::POLLIN;
    }
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos().into(),
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
    // SAFETY: N + 1 valid pollfds; `ts_ptr` is NULL or a live timespec.
    let n = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            N as libc::nfds_t + 1,
            ts_ptr,
            std::ptr::null(),
        )
    };
    if n < 0 {
        // EINTR (or nothing sensible): the caller re-evaluates and polls again.
        return (0, [false; N]);
    }
    (
        fds[0].revents,
        std::array::from_fn(|i| fds[i + 1].revents != 0),
    )
}
