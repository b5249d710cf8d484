//! The IPC floor of a launch→sync round trip: a `SOCK_SEQPACKET`
//! ping-pong with a child process blocked in `recv` — the transport the
//! simulator's control channel uses (docs/simulator.md), with nothing on
//! either side but the two system calls.

use std::io;
use std::os::fd::OwnedFd;

use crate::sys;

/// Bytes per message: about one launch record of the simulator's channel.
const MESSAGE: usize = 64;

/// A child process echoing every message sent on a socket pair.
pub struct EchoPeer {
    socket: OwnedFd,
    child: libc::pid_t,
    buf: [u8; MESSAGE],
}

impl EchoPeer {
    /// Forks the echo child (only async-signal-safe calls run in it, so
    /// this is sound in a process that already runs other threads, the
    /// simulator's).
    pub fn spawn() -> io::Result<Self> {
        let (ours, theirs) = simpler_sim_protocol::channel::pair()?;
        let child = sys::fork_echo::<MESSAGE>(&theirs)?;
        drop(theirs);
        Ok(Self {
            socket: ours,
            child,
            buf: [0; MESSAGE],
        })
    }

    /// One round trip: send a message and wait for its echo.
    pub fn round_trip(&mut self) {
        let ok = sys::send_and_receive(&self.socket, &mut self.buf);
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
        sys::shutdown(&self.socket);
        sys::reap(self.child);
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
        let alive = sys::is_alive(pid);
        assert!(!alive, "the echo child outlived its peer");
    }
}
