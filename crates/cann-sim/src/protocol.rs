//! The control channel between the host library and one device process: a
//! `SOCK_SEQPACKET` socket pair carrying records, so every `send` is one
//! whole message and a closed peer reads as end of file. A request is
//! always whole; a reply is sent without the unused end of its message.
//!
//! Compiled into both the library and the `simpler-sim-aicpu` binary.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use bytemuck::{Pod, Zeroable};

/// Request kinds (host → device).
pub mod request {
    /// Run a kernel; answered by a `DONE` reply carrying the same `seq`.
    pub const LAUNCH: u32 = 1;
    /// The host reported the stream's error at a sync: run its later
    /// launches again instead of aborting them.
    pub const CLEAR_STREAM_ERROR: u32 = 2;
    /// The stream was destroyed: the device may forget it.
    pub const DESTROY_STREAM: u32 = 3;
    /// Answered at once by a `PONG` from the thread that reads it (latency
    /// floor).
    pub const PING: u32 = 4;
}

/// Reply kinds (device → host).
pub mod reply {
    /// The device process mapped its memory and set up its filesystem.
    pub const READY: u32 = 1;
    /// A launch finished; `code` is its CANN result.
    pub const DONE: u32 = 2;
    /// Answer to a `PING`.
    pub const PONG: u32 = 3;
    /// The device process could not start; `msg` says why.
    pub const START_FAILED: u32 = 4;
}

/// `Request::flags` bit: the device process kills itself with `SIGKILL` on
/// receipt, before running the launch (`SIMPLER_SIM_KILL_AT_LAUNCH`).
pub const LAUNCH_FLAG_DIE: u32 = 1;

/// A record of the channel: a `Pod` struct whose first [`Record::MIN_LEN`]
/// bytes are always sent (the rest is zero when absent).
pub trait Record: Pod {
    /// Shortest valid record.
    const MIN_LEN: usize = std::mem::size_of::<Self>();

    /// Bytes of this record to send.
    fn wire_len(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}

impl Record for Request {}

impl Record for Reply {
    const MIN_LEN: usize = std::mem::offset_of!(Reply, msg);

    fn wire_len(&self) -> usize {
        Self::MIN_LEN + (self.msg_len as usize).min(MSG_LEN)
    }
}

/// One host → device message.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Request {
    /// A [`request`] kind.
    pub kind: u32,
    /// `LAUNCH_FLAG_*` bits.
    pub flags: u32,
    /// Launch sequence number, unique per device process.
    pub seq: u64,
    /// Stream handle the request belongs to.
    pub stream: u64,
    /// CANN kernel type (2 or 5).
    pub kernel_type: u32,
    /// Number of AICPU threads to run the kernel on.
    pub block_dim: u32,
    /// Device address of the argument block.
    pub args: u64,
    /// Size of the argument block.
    pub args_size: u32,
    /// Offset of the so name inside the argument block.
    pub so_name_offset: u32,
    /// Offset of the kernel name inside the argument block.
    pub kernel_name_offset: u32,
    /// Op timeout in milliseconds.
    pub timeout_ms: u32,
}

/// Capacity of [`Reply::msg`].
pub const MSG_LEN: usize = 512;

/// One device → host message.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct Reply {
    /// A [`reply`] kind.
    pub kind: u32,
    /// CANN result code of a launch.
    pub code: i32,
    /// The request's `seq`.
    pub seq: u64,
    /// The request's stream.
    pub stream: u64,
    /// Calls of the dispatcher's init made by this launch.
    pub kfc_calls: u32,
    /// Dispatcher SOs saved by this launch.
    pub dispatcher_saves: u32,
    /// `dlopen` calls made by this launch.
    pub dlopens: u32,
    /// Bytes used in `msg`.
    pub msg_len: u32,
    /// What went wrong, UTF-8, when `code` is not 0.
    pub msg: [u8; MSG_LEN],
}

impl Reply {
    /// A reply of `kind` with `code` and a message cut to [`MSG_LEN`] bytes
    /// at a character boundary.
    pub fn new(kind: u32, code: i32, message: &str) -> Self {
        let mut reply = Self::zeroed();
        reply.kind = kind;
        reply.code = code;
        let mut len = message.len().min(MSG_LEN);
        while !message.is_char_boundary(len) {
            len -= 1;
        }
        reply.msg[..len].copy_from_slice(&message.as_bytes()[..len]);
        reply.msg_len = len as u32;
        reply
    }

    /// The message text.
    pub fn message(&self) -> String {
        let len = (self.msg_len as usize).min(MSG_LEN);
        String::from_utf8_lossy(&self.msg[..len]).into_owned()
    }
}

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
        // SAFETY: `bytes` is a live slice for the duration of the call and
        // `fd` is an open socket borrowed from its owner.
        let n = unsafe {
            libc::send(
                fd.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_NOSIGNAL | flags,
            )
        };
        if n >= 0 {
            return if n as usize == bytes.len() {
                Ok(())
            } else {
                Err(io::Error::other("short send on a seqpacket socket"))
            };
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
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
        // SAFETY: `bytes` is a live, writable slice of exactly the length
        // passed, and `fd` is an open socket borrowed from its owner.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                bytes.as_mut_ptr().cast(),
                bytes.len(),
                flags | libc::MSG_TRUNC,
            )
        };
        if n == 0 {
            return Ok(Received::Closed);
        }
        if n > 0 {
            // With MSG_TRUNC, n is the record's full length even when it
            // did not fit, so an oversized record is caught too.
            return if (T::MIN_LEN..=bytes.len()).contains(&(n as usize)) {
                Ok(Received::Msg(msg))
            } else {
                Err(io::Error::other(format!(
                    "control message of {n} bytes, expected {}..={}",
                    T::MIN_LEN,
                    bytes.len()
                )))
            };
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            // The peer died with records of ours unread: reported once,
            // before the records it did send, which are still ours to read.
            Some(libc::EINTR | libc::ECONNRESET) => continue,
            Some(libc::EAGAIN) => return Ok(Received::Empty),
            _ => return Err(err),
        }
    }
}

/// Waits until `fd` has any of `events` (`POLLIN`, `POLLOUT`,
/// `POLLRDHUP`), or `timeout` passes (`None`: no limit). Returns the events
/// that are set, including `POLLHUP`/`POLLERR`; empty on timeout.
pub fn wait(fd: BorrowedFd<'_>, events: i16, timeout: Option<std::time::Duration>) -> i16 {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos().into(),
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
    loop {
        // SAFETY: one valid pollfd; `ts_ptr` is NULL or a live timespec;
        // no signal mask is passed.
        let n = unsafe { libc::ppoll(&mut pfd, 1, ts_ptr, std::ptr::null()) };
        if n >= 0 {
            return pfd.revents;
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            // Only EFAULT/EINVAL/ENOMEM are possible: report the channel
            // as broken rather than spin.
            return libc::POLLERR;
        }
    }
}

/// A new eventfd doorbell, non-blocking and close-on-exec. The library
/// hands one to each device process: it rings it when a request should not
/// wait for a busy reader (see the device's `engine`).
pub fn bell() -> io::Result<OwnedFd> {
    // SAFETY: plain flags; the result is checked.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: eventfd returned a fresh descriptor we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Rings an eventfd doorbell (one wake-up event).
pub fn ring(bell: BorrowedFd<'_>) {
    let one = 1u64;
    // SAFETY: writes the 8 bytes of `one` to an eventfd. It can only fail
    // when the counter would overflow, which a cleared-on-wake doorbell
    // never reaches.
    unsafe { libc::write(bell.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

/// A connected `SOCK_SEQPACKET` pair, close-on-exec.
pub fn pair() -> io::Result<(OwnedFd, OwnedFd)> {
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
    // SAFETY: socketpair returned two fresh descriptors we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Shuts both directions of our end down: the peer and any thread blocked
/// in [`recv`] on it read end of file.
pub fn shut_down(fd: &OwnedFd) {
    // SAFETY: `fd` is an open socket owned by the caller.
    unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR) };
}
