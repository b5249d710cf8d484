//! The device binary's ELF machine, so the host can check SOs against the
//! architecture the device side really runs.

use std::io::Read;
use std::path::Path;

use object::elf::{FileHeader32, FileHeader64};
use object::read::elf::FileHeader;
use object::Endianness;

/// `e_machine` of the ELF file at `path`, `None` if it is not ELF.
pub fn elf_machine(path: &Path) -> Option<u16> {
    // The header is all we need: 64 bytes for ELF64, 52 for ELF32.
    let mut header = Vec::with_capacity(64);
    std::fs::File::open(path)
        .ok()?
        .take(64)
        .read_to_end(&mut header)
        .ok()?;
    if let Ok(h) = FileHeader64::<Endianness>::parse(&*header) {
        return Some(h.e_machine(h.endian().ok()?));
    }
    let h = FileHeader32::<Endianness>::parse(&*header).ok()?;
    Some(h.e_machine(h.endian().ok()?))
}
