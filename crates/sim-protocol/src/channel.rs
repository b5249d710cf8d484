//! The control channel between the host library and one device process: a
//! `SOCK_SEQPACKET` socket pair carrying [`Record`]s, so every `send` is one
//! whole message and a closed peer reads as end of file. A request is
//! always whole; a reply is sent without the unused end of its message.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

use crate::message::Record;
use crate::sys;

/// Sends one record; never raises `SIGPIPE` when the peer is gone.
pub fn send<T: Record>(fd: BorrowedFd<'_>, msg: &T) -> io::Result<()> {
    send_with(fd, msg, 0)
}

/// Sends one record if the channel has room now; an error of kind
/// `WouldBlock` when it has not.
pub fn try_send<T: Record>(fd: BorrowedFd<'_>, msg: &T) -> io::Result<()> {
    send_with(fd, msg, libc::MSG_DONTWAIT)
}

fn send_with<T: Record>(fd: BorrowedFd<'_>, msg: &T, flags: i32) -> io::Result<()> {
    let bytes = &bytemuck::bytes_of(msg)[..msg.wire_len()];
    loop {
        match sys::send(fd, bytes, libc::MSG_NOSIGNAL | flags) {
            Ok(n) if n == bytes.len() => return Ok(()),
            Ok(_) => return Err(io::Error::other("short send on a seqpacket socket")),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// What a receive got.
#[derive(Debug)]
pub enum Received<T> {
    /// One record.
    Msg(T),
    /// The peer closed the channel (or it was shut down) and every record
    /// it sent has been read.
    Closed,
    /// Nothing to read now (only from [`try_recv`]).
    Empty,
}

/// Receives one record, waiting for it; `Ok(None)` when the peer closed the
/// channel.
pub fn recv<T: Record>(fd: BorrowedFd<'_>) -> io::Result<Option<T>> {
    Ok(match recv_with(fd, 0)? {
        Received::Msg(msg) => Some(msg),
        Received::Closed | Received::Empty => None,
    })
}

/// Receives one record if one is there.
pub fn try_recv<T: Record>(fd: BorrowedFd<'_>) -> io::Result<Received<T>> {
    recv_with(fd, libc::MSG_DONTWAIT)
}

fn recv_with<T: Record>(fd: BorrowedFd<'_>, flags: i32) -> io::Result<Received<T>> {
    let mut msg = T::zeroed();
    let bytes = bytemuck::bytes_of_mut(&mut msg);
    loop {
        match sys::recv(fd, bytes, flags | libc::MSG_TRUNC) {
            Ok(0) => return Ok(Received::Closed),
            // With MSG_TRUNC, n is the record's full length even when it
            // did not fit, so an oversized record is caught too.
            Ok(n) if (T::MIN_LEN..=bytes.len()).contains(&n) => return Ok(Received::Msg(msg)),
            Ok(n) => {
                return Err(io::Error::other(format!(
                    "control message of {n} bytes, expected {}..={}",
                    T::MIN_LEN,
                    bytes.len()
                )))
            }
            Err(err) => match err.raw_os_error() {
                // The peer died with records of ours unread: reported once,
                // before the records it did send, which are still ours to
                // read.
                Some(libc::EINTR | libc::ECONNRESET) => {}
                Some(libc::EAGAIN) => return Ok(Received::Empty),
                _ => return Err(err),
            },
        }
    }
}

/// Waits until `fd` has any of `events` (`POLLIN`, `POLLOUT`,
/// `POLLRDHUP`), or `timeout` passes (`None`: no limit). Returns the events
/// that are set, including `POLLHUP`/`POLLERR`; empty on timeout.
pub fn wait(fd: BorrowedFd<'_>, events: i16, timeout: Option<Duration>) -> i16 {
    let mut fds = [pollfd(fd, events)];
    loop {
        match sys::ppoll(&mut fds, timeout) {
            Ok(_) => return fds[0].revents,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Only EFAULT/EINVAL/ENOMEM are possible: report the channel as
            // broken rather than spin.
            Err(_) => return libc::POLLERR,
        }
    }
}

/// A `pollfd` asking for `events` on `fd`.
pub fn pollfd(fd: BorrowedFd<'_>, events: i16) -> libc::pollfd {
    use std::os::fd::AsRawFd;
    libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    }
}

/// Polls `fds` once for at most `timeout` (`None`: no limit); the number of
/// descriptors with events. An interrupted poll is an error of kind
/// `Interrupted`, for the caller to re-evaluate and poll again.
pub fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    sys::ppoll(fds, timeout)
}

/// A connected channel pair, close-on-exec: one end for the host library,
/// one for the device process.
pub fn pair() -> io::Result<(OwnedFd, OwnedFd)> {
    sys::seqpacket_pair()
}

/// Shuts both directions of our end down: the peer and any thread blocked
/// in [`recv`] on it read end of file.
pub fn shut_down(fd: &OwnedFd) {
    use std::os::fd::AsFd;
    // Fails only for a descriptor that is not a connected socket, which a
    // channel end always is.
    let _ = sys::shutdown(fd.as_fd());
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;
    use crate::message::{reply, Reply, Request};

    #[test]
    fn records_cross_whole_and_a_closed_peer_reads_as_end_of_file() {
        let (host, device) = pair().unwrap();
        let req = Request {
            kind: 1,
            seq: 42,
            ..Request::default()
        };
        send(host.as_fd(), &req).unwrap();
        let got: Request = recv(device.as_fd()).unwrap().unwrap();
        assert_eq!((got.kind, got.seq), (1, 42));
        assert!(matches!(
            try_recv::<Reply>(host.as_fd()).unwrap(),
            Received::Empty
        ));
        send(device.as_fd(), &Reply::new(reply::PONG, 0, "pong")).unwrap();
        assert_eq!(
            wait(host.as_fd(), libc::POLLIN, Some(Duration::from_secs(5))) & libc::POLLIN,
            libc::POLLIN
        );
        let Received::Msg(r) = try_recv::<Reply>(host.as_fd()).unwrap() else {
            panic!("a reply was sent");
        };
        assert_eq!((r.kind, r.message().as_str()), (reply::PONG, "pong"));
        // A reply is shorter than a request would need: refused as one.
        send(device.as_fd(), &Reply::new(reply::PONG, 0, "")).unwrap();
        assert!(recv::<Request>(host.as_fd()).is_err());
        drop(device);
        assert!(recv::<Reply>(host.as_fd()).unwrap().is_none());
        assert_eq!(
            wait(host.as_fd(), libc::POLLRDHUP, None) & libc::POLLRDHUP,
            libc::POLLRDHUP
        );
    }
}
