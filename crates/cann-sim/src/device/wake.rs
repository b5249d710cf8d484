//! What the device process's threads sleep on besides mutexes: an eventfd
//! doorbell, and a poll of the control channel with a bell.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// An eventfd used as a doorbell: [`Bell::ring`] wakes a sleeper,
/// [`Bell::clear`] makes it quiet again. Non-blocking, close-on-exec.
pub struct Bell(OwnedFd);

impl Bell {
    /// A quiet bell.
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain flags; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: eventfd returned a fresh descriptor we now own.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Wakes one sleeper (each ring is one wake-up event, even when the
    /// bell is already ringing).
    pub fn ring(&self) {
        let one = 1u64;
        // SAFETY: writes the 8 bytes of `one` to our eventfd. It can only
        // fail when the counter would overflow, which a cleared-on-wake
        // doorbell never reaches.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Silences the bell (reading an eventfd resets it).
    pub fn clear(&self) {
        let mut count = 0u64;
        // SAFETY: reads 8 bytes into `count`; EAGAIN when already quiet.
        unsafe { libc::read(self.0.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
    }
}

/// Sleeps until `channel` has any of `events`, `bell` rings, or `timeout`
/// passes (`None`: no limit). Returns the channel's events (with
/// `POLLHUP`/`POLLERR`) and whether the bell rang.
pub fn poll_channel(
    channel: BorrowedFd<'_>,
    events: i16,
    bell: &Bell,
    timeout: Option<Duration>,
) -> (i16, bool) {
    let mut fds = [
        libc::pollfd {
            fd: channel.as_raw_fd(),
            events,
            revents: 0,
        },
        libc::pollfd {
            fd: bell.0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos().into(),
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
    // SAFETY: two valid pollfds; `ts_ptr` is NULL or a live timespec.
    let n = unsafe { libc::ppoll(fds.as_mut_ptr(), 2, ts_ptr, std::ptr::null()) };
    if n < 0 {
        // EINTR (or nothing sensible): the caller re-evaluates and polls again.
        return (0, false);
    }
    (fds[0].revents, fds[1].revents != 0)
}
