//! The C ABI from the outside: the committed header is what cbindgen makes
//! of the crate and compiles as C and C++ with the prototypes the ABI
//! promises; a C program that includes only the header and links only
//! libsimpler.so runs kernels on the simulator.

mod header;
mod program;
