//! The records of the control channel: one [`Request`] per host → device
//! message, one [`Reply`] per device → host message, with their kinds and
//! flags.

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
    /// Offset of the kernel's parameter in the argument block: the kernel
    /// is called with `args + param_offset` (`cpuParamHeadOffset` of
    /// `rtsLaunchCpuKernel`; 0 for `rtAicpuKernelLaunchExWithArgs`).
    pub param_offset: u32,
    /// Zero; keeps the record free of padding.
    pub reserved: u32,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_message_is_cut_at_a_character_boundary_and_sent_without_the_rest() {
        let long = "é".repeat(MSG_LEN);
        let reply = Reply::new(reply::DONE, 7, &long);
        assert_eq!(reply.msg_len as usize, MSG_LEN);
        assert_eq!(reply.message(), "é".repeat(MSG_LEN / 2));
        let short = Reply::new(reply::DONE, 0, "ok");
        assert_eq!(short.wire_len(), Reply::MIN_LEN + 2);
        assert_eq!(short.message(), "ok");
        assert_eq!(Request::default().wire_len(), Request::MIN_LEN);
    }
}
