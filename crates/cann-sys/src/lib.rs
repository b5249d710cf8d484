//! The one Rust binding of the CANN ACL/RT C API that simpler uses, in
//! three layers as cudarc has them:
//!
//! - [`sys`]: the C function types and the symbol each is exported under;
//! - [`Api`] (`table.rs`): those functions resolved at run time from a list
//!   of libraries — real CANN or the simulator, with no `cfg` between them;
//! - [`calls`]: thin safe wrappers returning `Result<_, AclError>`.
//!
//! Every `unsafe` of simpler's CANN calls is in this crate, each with its
//! `SAFETY:` note. The host's safe API, the benches and the tests are all
//! written against it, and the simulator checks its exports against [`sys`].

pub mod calls;
pub mod sys;
mod table;

pub use calls::{
    check, BinaryCalls, BorrowedStream, LaunchDesc, PreparedLaunch, RawBinary, RawFunc, RawStream,
    StreamCalls,
};
pub use sys::AclError;
pub use table::{Api, LoadFailure, ResolvedSymbol};
