//! The custom ops of the example runtime SO, shared by the device crate
//! (which runs them) and the host program (which queues them): one home for
//! their codes and for what their operands mean.
//!
//! Every code is in simpler's custom range (bit 31 set), which no built-in
//! op will ever take; every other code goes to the built-in ops.

#![no_std]

use simpler_abi::CustomOp;

/// `dst[i] = a * src0[i] + src1[i]` over `len / 4` f32s, `a` the f32 whose
/// bits are the low 32 bits of `scalar`.
pub const SAXPY: CustomOp = CustomOp::must(0x8000_0001);

/// `dst[i] = c[0] + c[1]·x + … + c[k-1]·x^(k-1)` with `x = src0[i]`, over
/// `len / 4` f32s, by Horner's rule in f32: `acc = c[k-1]`, then
/// `acc = acc * x + c[j]` for `j` from `k-2` down to 0 (no fused
/// multiply-add, so any machine gets the same bits).
/// The coefficients `c` are the first `k = scalar` f32s of the launch's
/// register block (`KernelArgs::regs`); `k` is 1..=[`POLY_MAX_COEFFS`].
pub const POLY: CustomOp = CustomOp::must(0x8000_0002);

/// Most coefficients a [`POLY`] task may name.
pub const POLY_MAX_COEFFS: u64 = 16;

/// `dst[i] = src0[len - 1 - i]` over `len` bytes (`dst` and `src0` must not
/// overlap).
pub const REVERSE: CustomOp = CustomOp::must(0x8000_0003);

/// Every custom op of the runtime.
pub const ALL: [CustomOp; 3] = [SAXPY, POLY, REVERSE];
