//! Device memory: an owned allocation freed on drop, and borrowed views of
//! part of one.

use std::ops::{Bound, RangeBounds};

use bytemuck::Pod;

use super::{call, Device};
use crate::error::Error;

/// Device memory from `aclrtMalloc`, freed with `aclrtFree` on drop.
///
/// The host never dereferences device memory; data moves with the typed
/// copy methods. A buffer keeps its device set while it lives.
pub struct DeviceBuffer {
    device: Device,
    addr: u64,
    len: usize,
}

impl std::fmt::Debug for DeviceBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceBuffer")
            .field("device", &self.device.id())
            .field("addr", &format_args!("{:#x}", self.addr))
            .field("len", &self.len)
            .finish()
    }
}

impl DeviceBuffer {
    pub(crate) fn alloc(device: &Device, len: usize) -> Result<DeviceBuffer, Error> {
        if len == 0 {
            return Err(Error::InvalidArgument(
                "a device buffer must hold at least one byte".into(),
            ));
        }
        device.make_current()?;
        let addr = device
            .cann()
            .api()
            .malloc(len)
            .map_err(|code| device.error(call::MALLOC, None, code))?;
        Ok(DeviceBuffer {
            device: device.clone(),
            addr,
            len,
        })
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: buffers hold at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The device address, for building argument blocks by hand.
    pub fn device_addr(&self) -> u64 {
        self.addr
    }

    /// The device this buffer lives on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A view of `range` (in bytes) of this buffer.
    pub fn slice(&self, range: impl RangeBounds<usize>) -> Result<DeviceSlice<'_>, Error> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e.saturating_add(1),
            Bound::Excluded(&e) => e,
            Bound::Unbounded => self.len,
        };
        if start > end || end > self.len {
            return Err(Error::InvalidArgument(format!(
                "range {start}..{end} is outside a {}-byte buffer",
                self.len
            )));
        }
        Ok(DeviceSlice {
            buffer: self,
            offset: start,
            len: end - start,
        })
    }

    /// The whole buffer as a view.
    pub fn as_slice(&self) -> DeviceSlice<'_> {
        DeviceSlice {
            buffer: self,
            offset: 0,
            len: self.len,
        }
    }

    /// Copies `src` to the start of the buffer.
    pub fn copy_from_host<T: Pod>(&mut self, src: &[T]) -> Result<(), Error> {
        self.write_at(0, bytemuck::cast_slice(src))
    }

    /// Copies `bytes` into the buffer at byte `offset`.
    pub fn write_at(&mut self, offset: usize, bytes: &[u8]) -> Result<(), Error> {
        let end = offset.checked_add(bytes.len());
        if end.is_none_or(|end| end > self.len) {
            return Err(Error::InvalidArgument(format!(
                "{} bytes at offset {offset} do not fit a {}-byte buffer",
                bytes.len(),
                self.len
            )));
        }
        if bytes.is_empty() {
            return Ok(());
        }
        self.device.bind()?;
        self.device
            .cann()
            .api()
            .copy_to_device(self.addr + offset as u64, self.len - offset, bytes)
            .map_err(|code| {
                self.device
                    .error(call::MEMCPY, Some("host to device"), code)
                    .into()
            })
    }

    /// Fills `dst` from the start of the buffer.
    pub fn copy_to_host<T: Pod>(&self, dst: &mut [T]) -> Result<(), Error> {
        self.read_at(0, bytemuck::cast_slice_mut(dst))
    }

    /// Fills `dst` from byte `offset` of the buffer.
    pub fn read_at(&self, offset: usize, dst: &mut [u8]) -> Result<(), Error> {
        let end = offset.checked_add(dst.len());
        if end.is_none_or(|end| end > self.len) {
            return Err(Error::InvalidArgument(format!(
                "{} bytes at offset {offset} are outside a {}-byte buffer",
                dst.len(),
                self.len
            )));
        }
        if dst.is_empty() {
            return Ok(());
        }
        self.device.bind()?;
        self.device
            .cann()
            .api()
            .copy_from_device(dst, self.addr + offset as u64)
            .map_err(|code| {
                self.device
                    .error(call::MEMCPY, Some("device to host"), code)
                    .into()
            })
    }

    /// The whole buffer as `T`s; its length must be a multiple of `T`'s.
    pub fn to_vec<T: Pod>(&self) -> Result<Vec<T>, Error> {
        let size = std::mem::size_of::<T>().max(1);
        if !self.len.is_multiple_of(size) {
            return Err(Error::InvalidArgument(format!(
                "a {}-byte buffer is not a whole number of {size}-byte elements",
                self.len
            )));
        }
        let mut out = vec![T::zeroed(); self.len / size];
        self.copy_to_host(&mut out)?;
        Ok(out)
    }
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        let result = self.device.bind().and_then(|()| {
            self.device
                .cann()
                .api()
                .free(self.addr)
                .map_err(|code| self.device.error(call::FREE, None, code))
        });
        if let Err(err) = result {
            tracing::warn!(device = self.device.id(), "{err}");
        }
    }
}

/// A borrowed byte range of a [`DeviceBuffer`], for naming task operands.
#[derive(Clone, Copy, Debug)]
pub struct DeviceSlice<'a> {
    buffer: &'a DeviceBuffer,
    offset: usize,
    len: usize,
}

impl<'a> DeviceSlice<'a> {
    /// The device address of the first byte.
    pub fn device_addr(&self) -> u64 {
        self.buffer.addr + self.offset as u64
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The buffer this is part of.
    pub fn buffer(&self) -> &'a DeviceBuffer {
        self.buffer
    }
}

impl<'a> From<&'a DeviceBuffer> for DeviceSlice<'a> {
    fn from(buffer: &'a DeviceBuffer) -> Self {
        buffer.as_slice()
    }
}
