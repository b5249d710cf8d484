//! The doorbell: an eventfd that wakes a sleeper. The host library hands
//! one to each device process and rings it when a request should not wait
//! for a busy reader; the device's own threads use more of them.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::sys;

/// An eventfd used as a doorbell: [`Doorbell::ring`] wakes a sleeper (one
/// polling the descriptor for `POLLIN`), [`Doorbell::clear`] makes it quiet
/// again. Non-blocking, close-on-exec.
#[derive(Debug)]
pub struct Doorbell(OwnedFd);

impl Doorbell {
    /// A quiet doorbell.
    pub fn new() -> io::Result<Self> {
        sys::eventfd().map(Self)
    }

    /// Rings (one wake-up event, even when the bell is already ringing).
    pub fn ring(&self) {
        // Fails only when the counter would overflow, which a bell cleared
        // on every wake-up never reaches.
        let _ = sys::eventfd_add(self.0.as_fd(), 1);
    }

    /// Silences the bell (reading an eventfd resets it).
    pub fn clear(&self) {
        // EAGAIN when already quiet.
        let _ = sys::eventfd_take(self.0.as_fd());
    }
}

/// A doorbell whose eventfd was handed over (the device process gets the
/// host's through its command line).
impl From<OwnedFd> for Doorbell {
    fn from(fd: OwnedFd) -> Self {
        Self(fd)
    }
}

impl AsFd for Doorbell {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::channel::wait;

    #[test]
    fn a_rung_bell_reads_as_input_until_cleared() {
        let bell = Doorbell::new().unwrap();
        let quiet = Some(Duration::ZERO);
        assert_eq!(wait(bell.as_fd(), libc::POLLIN, quiet), 0);
        bell.ring();
        bell.ring();
        assert_eq!(wait(bell.as_fd(), libc::POLLIN, quiet), libc::POLLIN);
        bell.clear();
        assert_eq!(wait(bell.as_fd(), libc::POLLIN, quiet), 0);
        bell.clear();
    }
}
