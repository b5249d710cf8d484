//! Reading and validating what the host sent: the bootstrap block, the
//! `DeviceArgs` it points to and the runtime SO bytes.

use core::ffi::c_void;
use core::mem::offset_of;

use simpler_abi::names::MAX_INNER_SO_LEN;
use simpler_abi::{BootstrapArgs, DeviceArgs, ReportStage};

use crate::outcome::Failure;

const ELF_MAGIC: &[u8; 4] = b"\x7fELF";

const fn invalid(errno: libc::c_int, what: &'static core::ffi::CStr) -> Failure {
    Failure::new(ReportStage::Validate, errno, what)
}

/// The `DeviceArgs` the bootstrap block at `block` points to.
///
/// # Safety
///
/// `block` is null or addresses a readable `BootstrapArgs` whose
/// `device_args` is 0 or addresses a readable `DeviceArgs`.
pub unsafe fn device_args(block: *const c_void) -> Result<DeviceArgs, Failure> {
    if block.is_null() {
        return Err(invalid(libc::EINVAL, c"null argument block"));
    }
    // Only `device_args` is read: CANN owns the rest of the block.
    // SAFETY: `block` addresses a whole BootstrapArgs, so the field at its
    // offset is readable; unaligned reads accept any address.
    let address = unsafe {
        block
            .cast::<u8>()
            .add(offset_of!(BootstrapArgs, device_args))
            .cast::<u64>()
            .read_unaligned()
    };
    let device = address as usize as *const DeviceArgs;
    if device.is_null() {
        return Err(invalid(libc::EINVAL, c"device_args is 0"));
    }
    // SAFETY: a non-zero `device_args` addresses a readable DeviceArgs.
    Ok(unsafe { device.read_unaligned() })
}

/// The runtime SO bytes, once their address, length and ELF magic check out.
///
/// # Safety
///
/// A non-zero `inner_so_bin` addresses `inner_so_len` readable bytes
/// whenever `inner_so_len` is within [`MAX_INNER_SO_LEN`]; they stay
/// unchanged while the returned slice lives.
pub unsafe fn runtime_so<'a>(device: &DeviceArgs) -> Result<&'a [u8], Failure> {
    let start = device.inner_so_bin as usize as *const u8;
    if start.is_null() {
        return Err(invalid(libc::EINVAL, c"inner_so_bin is 0"));
    }
    if device.inner_so_len == 0 {
        return Err(invalid(libc::EINVAL, c"inner_so_len is 0"));
    }
    let too_big = invalid(libc::EFBIG, c"inner_so_len over the cap");
    if device.inner_so_len > MAX_INNER_SO_LEN {
        return Err(too_big);
    }
    let len = usize::try_from(device.inner_so_len).map_err(|_| too_big)?;
    // SAFETY: the caller vouches for `len` bytes at `start`; the cap keeps
    // `len` far below isize::MAX.
    let bytes = unsafe { core::slice::from_raw_parts(start, len) };
    if bytes.get(..ELF_MAGIC.len()) != Some(ELF_MAGIC.as_slice()) {
        return Err(invalid(libc::ENOEXEC, c"not an ELF image"));
    }
    Ok(bytes)
}
