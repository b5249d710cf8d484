//! The libc calls of the channel and the doorbell, one system call each,
//! failures returned as `io::Error` from `errno`. Retrying on `EINTR` and
//! the meaning of each result are the callers' business.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

fn check(n: isize) -> io::Result<usize> {
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `send(2)` of `bytes` with `flags`; the number of bytes sent.
pub fn send(fd: BorrowedFd<'_>, bytes: &[u8], flags: i32) -> io::Result<usize> {
    // SAFETY: `bytes` is a live slice for the duration of the call and `fd`
    // is an open descriptor borrowed from its owner.
    check(unsafe { libc::send(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), flags) })
}

/// `recv(2)` into `buf` with `flags`; the length `recv` returns (with
/// `MSG_TRUNC`, the record's full length even when `buf` is shorter).
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8], flags: i32) -> io::Result<usize> {
    // SAFETY: `buf` is a live, writable slice of exactly the length passed,
    // and `fd` is an open descriptor borrowed from its owner.
    check(unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), flags) })
}

/// `ppoll(2)` on `fds` for at most `timeout` (`None`: no limit) with no
/// signal mask; the number of descriptors with events.
pub fn ppoll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos().into(),
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
    // SAFETY: `fds` is a live, writable slice of `fds.len()` pollfds;
    // `ts_ptr` is NULL or points to a live timespec; no signal mask is
    // passed.
    let n = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            ts_ptr,
            std::ptr::null(),
        )
    };
    check(n as isize)
}

/// A new eventfd with a zero counter, non-blocking and close-on-exec.
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain flags; the result is checked.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: eventfd returned a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds `value` to an eventfd's counter.
pub fn eventfd_add(fd: BorrowedFd<'_>, value: u64) -> io::Result<()> {
    let bytes = value.to_ne_bytes();
    // SAFETY: writes the 8 bytes of a live array to an open descriptor.
    check(unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) }).map(drop)
}

/// Reads (and so resets) an eventfd's counter.
pub fn eventfd_take(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut bytes = [0u8; 8];
    // SAFETY: reads at most 8 bytes into a live, writable array.
    check(unsafe { libc::read(fd.as_raw_fd(), bytes.as_mut_ptr().cast(), bytes.len()) })?;
    Ok(u64::from_ne_bytes(bytes))
}

/// A connected `AF_UNIX` `SOCK_SEQPACKET` pair, close-on-exec.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a writable array of two ints.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair returned two fresh descriptors nobody else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `shutdown(2)` of both directions of a socket.
pub fn shutdown(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: `fd` is an open descriptor borrowed from its owner.
    check(unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR) } as isize).map(drop)
}
