//! The SO's dynamic interface: exactly the three contract symbols, the two
//! stubs returning 0, and nothing needed beyond libc and libdl.

use object::{Object, ObjectSymbol};
use simpler_abi::names::DISPATCHER_SYMBOLS;

use crate::ffi::dispatcher;

#[test]
fn stubs_return_zero() {
    let d = dispatcher();
    let mut block = simpler_abi::BootstrapArgs::new(0);
    for arg in [std::ptr::null_mut(), (&raw mut block).cast()] {
        assert_eq!(d.static_server(arg), 0);
        assert_eq!(d.server(arg), 0);
    }
}

fn artifact() -> Vec<u8> {
    std::fs::read(simpler_testkit::host_artifacts().dispatcher()).unwrap()
}

#[test]
fn exports_exactly_the_contract_symbols() {
    let bytes = artifact();
    let elf = object::File::parse(&*bytes).unwrap();
    let mut exported: Vec<&str> = elf
        .dynamic_symbols()
        .filter(|s| s.is_definition() && s.is_global())
        .map(|s| s.name().unwrap())
        .collect();
    exported.sort_unstable();
    let mut contract = DISPATCHER_SYMBOLS;
    contract.sort_unstable();
    assert_eq!(exported, contract);
}

#[test]
fn needs_only_libc_and_libdl() {
    let bytes = artifact();
    let elf = object::read::elf::ElfFile64::<object::Endianness>::parse(&*bytes).unwrap();
    let needed = needed_libraries(&elf);
    assert!(needed.iter().any(|n| n == "libc.so.6"), "{needed:?}");
    for lib in &needed {
        assert!(
            ["libc.so.6", "libdl.so.2"].contains(&lib.as_str()) || lib.starts_with("ld-linux"),
            "unexpected NEEDED {lib} in {needed:?}"
        );
    }
}

fn needed_libraries(elf: &object::read::elf::ElfFile64<'_, object::Endianness>) -> Vec<String> {
    use object::read::elf::{Dyn, FileHeader, SectionHeader};
    let endian = elf.endian();
    let data = elf.data();
    let sections = elf.elf_header().sections(endian, data).unwrap();
    let mut needed = Vec::new();
    for (_, section) in sections.enumerate() {
        let Some((entries, strings_index)) = section.dynamic(endian, data).unwrap() else {
            continue;
        };
        let strings = sections.strings(endian, data, strings_index).unwrap();
        for entry in entries {
            if entry.tag32(endian) == Some(object::elf::DT_NEEDED) {
                let name = entry.string(endian, strings).unwrap();
                needed.push(String::from_utf8(name.to_vec()).unwrap());
            }
        }
    }
    needed
}
