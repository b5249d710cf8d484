//! The IPC floor of a launch→sync round trip: a `SOCK_SEQPACKET`
//! ping-pong with a child process blocked in `recv` — the transport the
//! simulator's control channel uses (docs/simulator.md), with nothing on
//! either side but the two system calls.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Bytes per message: about one launch record of the simulator's channel.
const MESSAGE: usize = 64;

/// A child process echoing every message sent on a socket pair.
pub struct EchoPeer {
    socket: OwnedFd,
    child: libc::pid_t,
    buf: [u8; MESSAGE],
}

impl EchoPeer {
    /// Forks the echo child. The child runs only async-signal-safe calls
    /// (`prctl`, `recv`, `send`, `_exit`), so this is sound in a process
    /// that already runs other threads (the simulator's).
    pub fn spawn() -> io::Result<Self> {
        let mut fds = [0; 2];
        // SAFETY: `fds` is writable for two descriptors.
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
        // SAFETY: both descriptors are fresh and owned by nobody else.
        let (ours, theirs) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: the child branch below calls only async-signal-safe
        // functions and leaves with `_exit`, never returning into Rust.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            // SAFETY: async-signal-safe calls on descriptors this process
            // owns; `_exit` skips every destructor and atexit handler.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                echo(theirs.as_raw_fd());
                libc::_exit(0);
            }
        }
        drop(theirs);
        Ok(Self {
            socket: ours,
            child: pid,
            buf: [0; MESSAGE],
        })
    }

    /// One round trip: send a message and wait for its echo.
    pub fn round_trip(&mut self) {
        let fd = self.socket.as_raw_fd();
        // SAFETY: `buf` is a live buffer of MESSAGE bytes for both calls.
        let ok = unsafe {
            libc::send(fd, self.buf.as_ptr().cast(), MESSAGE, libc::MSG_NOSIGNAL)
                == MESSAGE as isize
                && libc::recv(fd, self.buf.as_mut_ptr().cast(), MESSAGE, 0) == MESSAGE as isize
        };
        assert!(
            ok,
            "the echo child stopped answering: {}",
            io::Error::last_os_error()
        );
    }
}

impl Drop for EchoPeer {
    fn drop(&mut self) {
        // End of file on the socket ends the child; then reap it.
        // SAFETY: shutting down a socket we own.
        unsafe { libc::shutdown(self.socket.as_raw_fd(), libc::SHUT_RDWR) };
        let mut status = 0;
        // SAFETY: `child` is our child, not yet reaped.
        unsafe { libc::waitpid(self.child, &mut status, 0) };
    }
}

/// The child's loop: echo until end of file or an error.
///
/// # Safety
/// `fd` is a connected `SOCK_SEQPACKET` socket.
unsafe fn echo(fd: RawFd) {
    let mut buf = [0u8; MESSAGE];
    loop {
        // SAFETY: `buf` is writable for MESSAGE bytes.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), MESSAGE, 0) };
        if n <= 0 {
            return;
        }
        // SAFETY: `buf` holds `n` received bytes.
        if unsafe { libc::send(fd, buf.as_ptr().cast(), n as usize, libc::MSG_NOSIGNAL) } != n {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_echo_child_answers_and_is_reaped() {
        let mut peer = EchoPeer::spawn().unwrap();
        peer.buf[0] = 42;
        peer.round_trip();
        assert_eq!(peer.buf[0], 42);
        let pid = peer.child;
        drop(peer);
        // SAFETY: probing a pid with signal 0 sends nothing.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "the echo child outlived its peer");
    }
}
