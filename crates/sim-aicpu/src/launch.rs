//! What a launch is to the engine: what its blocks call once prepared
//! ([`Ready`]), and how it ended ([`Outcome`]).

use simpler_abi::cann::error::{ACL_ERROR_RT_AICPU_EXCEPTION, ACL_ERROR_RT_AICPU_TIMEOUT};
use simpler_sim_protocol::{reply, Reply};

use crate::log;

/// The result of one launch, with what it did for the accounting.
#[derive(Debug, Default)]
pub struct Outcome {
    code: i32,
    message: String,
    /// Calls of the dispatcher's init.
    pub kfc_calls: u32,
    /// Dispatcher SOs saved.
    pub dispatcher_saves: u32,
    /// `dlopen` calls.
    pub dlopens: u32,
}

impl Outcome {
    /// Fails with `code` and `message` (logged).
    pub fn failed(mut self, code: i32, message: String) -> Self {
        log::note(log::ERROR, &message);
        self.code = code;
        self.message = message;
        self
    }

    /// 507018: the AICPU task failed.
    pub fn exception(self, message: String) -> Self {
        self.failed(ACL_ERROR_RT_AICPU_EXCEPTION, message)
    }

    /// 507017: the AICPU task exceeded its timeout.
    pub fn timeout(self, message: String) -> Self {
        self.failed(ACL_ERROR_RT_AICPU_TIMEOUT, message)
    }

    /// Whether the launch failed.
    pub fn is_failure(&self) -> bool {
        self.code != 0
    }

    /// The `DONE` reply that reports this outcome of launch `seq` on `stream`.
    pub fn reply(&self, seq: u64, stream: u64) -> Reply {
        let mut reply = Reply::new(reply::DONE, self.code, &self.message);
        reply.seq = seq;
        reply.stream = stream;
        reply.kfc_calls = self.kfc_calls;
        reply.dispatcher_saves = self.dispatcher_saves;
        reply.dlopens = self.dlopens;
        reply
    }
}

/// How a launch's blocks are run, and how its failures read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `blockDim` blocks on as many AICPU threads; a failure lists the
    /// blocks that returned non-zero.
    Blocks,
    /// One call whatever `blockDim` says; its return value is the result.
    Single,
}

/// A launch that passed its checks and only has to run.
#[derive(Debug)]
pub struct Ready<E> {
    /// What its blocks call (the router's business).
    pub entry: E,
    /// How many blocks run.
    pub shape: Shape,
    /// `so:kernel` (or the entry point's name), for messages.
    pub label: &'static str,
    /// Accounting so far (SO loads, dispatcher saves and calls).
    pub outcome: Outcome,
}

impl<E> Ready<E> {
    /// The same launch calling `f(entry)`.
    pub fn map<F>(self, f: impl FnOnce(E) -> F) -> Ready<F> {
        Ready {
            entry: f(self.entry),
            shape: self.shape,
            label: self.label,
            outcome: self.outcome,
        }
    }
}
