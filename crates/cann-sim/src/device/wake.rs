//! What the device process's threads sleep on: an eventfd doorbell, each
//! AICPU worker's epoll set, and the main thread's poll.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
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

impl AsFd for Bell {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// A worker's wait set: the control channel and the job bell, both with
/// `EPOLLEXCLUSIVE`, so one arriving request (or one ring) wakes one idle
/// worker rather than all of them.
pub struct WaitSet(OwnedFd);

/// What woke a worker.
#[derive(Clone, Copy, Debug, Default)]
pub struct Woken {
    /// The control channel is readable (a request, or end of file).
    pub channel: bool,
    /// The job bell rang.
    pub bell: bool,
}

const CHANNEL: u64 = 0;
const BELL: u64 = 1;

impl WaitSet {
    /// A wait set over `channel` and `bell`.
    pub fn new(channel: BorrowedFd<'_>, bell: &Bell) -> io::Result<Self> {
        // SAFETY: plain flags; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: epoll_create1 returned a fresh descriptor we now own.
        let set = Self(unsafe { OwnedFd::from_raw_fd(fd) });
        for (target, token) in [(channel.as_raw_fd(), CHANNEL), (bell.0.as_raw_fd(), BELL)] {
            let mut event = libc::epoll_event {
                events: (libc::EPOLLIN | libc::EPOLLEXCLUSIVE) as u32,
                u64: token,
            };
            // SAFETY: both descriptors are open; `event` is a valid
            // epoll_event for the duration of the call.
            let rc = unsafe {
                libc::epoll_ctl(set.0.as_raw_fd(), libc::EPOLL_CTL_ADD, target, &mut event)
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(set)
    }

    /// Sleeps until the channel or the bell is ready.
    pub fn wait(&self) -> Woken {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 2];
        loop {
            // SAFETY: `events` is writable for the 2 entries passed.
            let n = unsafe { libc::epoll_wait(self.0.as_raw_fd(), events.as_mut_ptr(), 2, -1) };
            if n < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // Only EFAULT/EINVAL are possible: look at both sources.
                return Woken {
                    channel: true,
                    bell: true,
                };
            }
            let mut woken = Woken::default();
            for event in &events[..n as usize] {
                match event.u64 {
                    CHANNEL => woken.channel = true,
                    _ => woken.bell = true,
                }
            }
            return woken;
        }
    }
}

/// The main thread's sleep: until `channel` has any of `events`, `bell`
/// rings, or `timeout` passes (`None`: no limit). Returns the channel's
/// events (with `POLLHUP`/`POLLERR`) and whether the bell rang.
pub fn poll_main(
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
