//! Fixed-capacity, NUL-terminated byte strings for the paths handed to
//! libc, built without allocation and without any panic path.

use core::ffi::c_char;

/// The text did not fit; the part that fit was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong;

/// Up to `N - 1` bytes of text followed by a NUL.
pub struct CBuf<const N: usize> {
    // Invariant: len < N and buf[len] == 0, so `as_ptr` is always a C string.
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> CBuf<N> {
    /// An empty string.
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }

    /// Appends `bytes`, keeping whatever fits when not all of it does.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), TooLong> {
        push_terminated(&mut self.buf, &mut self.len, bytes)
    }

    /// Appends `n` in decimal.
    pub fn push_dec(&mut self, mut n: u64) -> Result<(), TooLong> {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        for slot in digits.iter_mut().rev() {
            // `n % 10` is below 10, so the cast keeps every bit.
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
            start = start.saturating_sub(1);
            if n == 0 {
                break;
            }
        }
        self.push(digits.get(start..).unwrap_or_default())
    }

    /// Appends `n` as 16 lower-case hex digits.
    pub fn push_hex(&mut self, mut n: u64) -> Result<(), TooLong> {
        let mut digits = [0u8; 16];
        for slot in digits.iter_mut().rev() {
            // A nibble, so the cast keeps every bit.
            let nibble = (n & 0xf) as u8;
            *slot = if nibble < 10 {
                b'0' + nibble
            } else {
                b'a' + (nibble - 10)
            };
            n >>= 4;
        }
        self.push(&digits)
    }

    /// The current length, to [`rewind`](Self::rewind) to later.
    pub fn mark(&self) -> usize {
        self.len
    }

    /// Drops everything after `mark`.
    pub fn rewind(&mut self, mark: usize) {
        if mark < self.len {
            self.len = mark;
            self.terminate();
        }
    }

    /// The text, without the NUL.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// The NUL-terminated text, for libc.
    pub fn as_ptr(&self) -> *const c_char {
        self.buf.as_ptr().cast()
    }

    /// The text NUL-padded to `N` bytes, for a fixed-size field.
    pub fn to_field(&self) -> [u8; N] {
        let mut field = [0u8; N];
        for (dst, src) in field.iter_mut().zip(self.as_bytes()) {
            *dst = *src;
        }
        field
    }

    fn terminate(&mut self) {
        if let Some(nul) = self.buf.get_mut(self.len) {
            *nul = 0;
        }
    }
}

/// [`CBuf::push`] without the capacity parameter, so the SO carries one
/// copy of it rather than one per buffer size.
fn push_terminated(buf: &mut [u8], len: &mut usize, bytes: &[u8]) -> Result<(), TooLong> {
    let room = buf.len().saturating_sub(1).saturating_sub(*len);
    let tail = buf.get_mut(*len..).unwrap_or_default();
    let mut copied = 0usize;
    for (dst, src) in tail.iter_mut().take(room).zip(bytes) {
        *dst = *src;
        copied = copied.saturating_add(1);
    }
    *len = len.saturating_add(copied);
    if let Some(nul) = buf.get_mut(*len) {
        *nul = 0;
    }
    if copied == bytes.len() {
        Ok(())
    } else {
        Err(TooLong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The C string `as_ptr` hands to libc: the bytes it points at, up to
    /// the first NUL.
    fn c_text<const N: usize>(buf: &CBuf<N>) -> &[u8] {
        assert_eq!(buf.as_ptr(), buf.buf.as_ptr().cast());
        core::ffi::CStr::from_bytes_until_nul(&buf.buf)
            .expect("a NUL inside the buffer")
            .to_bytes()
    }

    #[test]
    fn push_keeps_the_prefix_that_fits_and_stays_terminated() {
        let mut buf = CBuf::<8>::new();
        assert_eq!(buf.push(b"abc"), Ok(()));
        assert_eq!(buf.push(b"defgh"), Err(TooLong));
        assert_eq!(buf.as_bytes(), b"abcdefg");
        assert_eq!(c_text(&buf), b"abcdefg");
        assert_eq!(buf.push(b""), Ok(()));
        assert_eq!(buf.push(b"x"), Err(TooLong));
        assert_eq!(buf.to_field(), *b"abcdefg\0");
    }

    #[test]
    fn rewind_drops_the_tail() {
        let mut buf = CBuf::<16>::new();
        buf.push(b"stem.").unwrap();
        let mark = buf.mark();
        buf.push(b"first-attempt").unwrap_err();
        buf.rewind(mark);
        buf.push(b"2").unwrap();
        assert_eq!(c_text(&buf), b"stem.2");
        assert_eq!(buf.to_field(), *b"stem.2\0\0\0\0\0\0\0\0\0\0");
    }

    #[test]
    fn numbers() {
        let mut buf = CBuf::<64>::new();
        for n in [0, 7, 10, 4_294_967_296, u64::MAX] {
            buf.rewind(0);
            buf.push_dec(n).unwrap();
            assert_eq!(buf.as_bytes(), n.to_string().as_bytes());
        }
        for n in [0, 0xabc, 0x0123_4567_89ab_cdef, u64::MAX] {
            buf.rewind(0);
            buf.push_hex(n).unwrap();
            assert_eq!(buf.as_bytes(), format!("{n:016x}").as_bytes());
        }
        let mut small = CBuf::<4>::new();
        assert_eq!(small.push_dec(12345), Err(TooLong));
        assert_eq!(small.as_bytes(), b"123");
    }
}
