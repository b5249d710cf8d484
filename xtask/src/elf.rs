//! The facts about an ELF file that the manifest records and `check-abi`
//! judges: class, machine, exported symbols, NEEDED libraries and the
//! versioned glibc symbols it references.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use object::elf;
use object::read::elf::{Dyn, FileHeader, Sym};
use object::{Endianness, FileKind, SymbolIndex};

/// What an ELF file exports, needs and references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    /// 64-bit (`ELFCLASS64`)?
    pub class64: bool,
    /// `e_machine`.
    pub machine: u16,
    /// Defined dynamic symbols other objects can bind to (global or weak,
    /// default or protected visibility).
    pub exports: BTreeSet<String>,
    /// `DT_NEEDED` entries, in order.
    pub needed: Vec<String>,
    /// Undefined dynamic symbols bound to a `GLIBC_*` version.
    pub glibc_refs: Vec<VersionedRef>,
}

/// An undefined symbol and the version it requires, e.g. `memcpy@GLIBC_2.17`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedRef {
    /// The symbol name.
    pub symbol: String,
    /// The version name, e.g. `GLIBC_2.17` or `GLIBC_PRIVATE`.
    pub version: String,
}

impl VersionedRef {
    /// The numeric glibc version, `None` for non-numeric ones such as
    /// `GLIBC_PRIVATE`.
    pub fn glibc_version(&self) -> Option<GlibcVersion> {
        GlibcVersion::parse(&self.version)
    }
}

impl fmt::Display for VersionedRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.symbol, self.version)
    }
}

/// A numeric glibc symbol version, ordered as glibc orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GlibcVersion(pub u32, pub u32, pub u32);

impl GlibcVersion {
    /// Parses `GLIBC_<major>.<minor>[.<patch>]`.
    pub fn parse(version: &str) -> Option<Self> {
        let mut parts = version.strip_prefix("GLIBC_")?.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        parts.next().is_none().then_some(Self(major, minor, patch))
    }
}

impl fmt::Display for GlibcVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self(major, minor, 0) => write!(f, "GLIBC_{major}.{minor}"),
            Self(major, minor, patch) => write!(f, "GLIBC_{major}.{minor}.{patch}"),
        }
    }
}

impl ElfInfo {
    /// Reads the file at `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&data).with_context(|| format!("{} is not a readable ELF file", path.display()))
    }

    /// Parses an ELF image in memory.
    pub fn parse(data: &[u8]) -> Result<Self> {
        match FileKind::parse(data)? {
            FileKind::Elf64 => parse_as::<elf::FileHeader64<Endianness>>(data),
            FileKind::Elf32 => parse_as::<elf::FileHeader32<Endianness>>(data),
            kind => bail!("not ELF but {kind:?}"),
        }
    }

    /// The highest numeric glibc version referenced, if any.
    pub fn glibc_max(&self) -> Option<GlibcVersion> {
        self.glibc_refs
            .iter()
            .filter_map(VersionedRef::glibc_version)
            .max()
    }
}

fn parse_as<Elf>(data: &[u8]) -> Result<ElfInfo>
where
    Elf: FileHeader<Endian = Endianness>,
{
    let header = Elf::parse(data)?;
    let endian = header.endian()?;
    let sections = header.sections(endian, data)?;
    let dynsym = sections.symbols(endian, data, elf::SHT_DYNSYM)?;
    let versions = sections.versions(endian, data)?;
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();

    let mut exports = BTreeSet::new();
    let mut glibc_refs = Vec::new();
    for (index, sym) in dynsym.symbols().iter().enumerate() {
        let name = sym.name(endian, dynsym.strings())?;
        if name.is_empty() {
            continue;
        }
        if sym.is_undefined(endian) {
            let Some(versions) = &versions else { continue };
            let version = versions.version(versions.version_index(endian, SymbolIndex(index)))?;
            if let Some(version) = version.filter(|v| v.name().starts_with(b"GLIBC_")) {
                glibc_refs.push(VersionedRef {
                    symbol: text(name),
                    version: text(version.name()),
                });
            }
        } else if matches!(
            sym.st_bind(),
            elf::STB_GLOBAL | elf::STB_WEAK | elf::STB_GNU_UNIQUE
        ) && matches!(sym.st_visibility(), elf::STV_DEFAULT | elf::STV_PROTECTED)
        {
            exports.insert(text(name));
        }
    }

    let mut needed = Vec::new();
    if let Some((entries, strtab)) = sections.dynamic(endian, data)? {
        let strings = sections.strings(endian, data, strtab)?;
        for entry in entries {
            if entry.tag32(endian) == Some(elf::DT_NEEDED) {
                needed.push(text(entry.string(endian, strings)?));
            }
        }
    }

    Ok(ElfInfo {
        class64: header.is_class_64(),
        machine: header.e_machine(endian),
        exports,
        needed,
        glibc_refs,
    })
}

/// A readable name for an ELF machine number.
pub fn machine_name(machine: u16) -> String {
    match machine {
        elf::EM_X86_64 => "x86_64".into(),
        elf::EM_AARCH64 => "aarch64".into(),
        elf::EM_386 => "i386".into(),
        elf::EM_ARM => "arm".into(),
        other => format!("machine {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_versions_parse_and_order_numerically() {
        let v = |s| GlibcVersion::parse(s).unwrap();
        assert_eq!(v("GLIBC_2.17"), GlibcVersion(2, 17, 0));
        assert_eq!(v("GLIBC_2.3.4"), GlibcVersion(2, 3, 4));
        assert!(v("GLIBC_2.3.4") < v("GLIBC_2.17"));
        assert!(v("GLIBC_2.17") < v("GLIBC_2.34"));
        assert_eq!(v("GLIBC_2.34").to_string(), "GLIBC_2.34");
        assert_eq!(v("GLIBC_2.2.5").to_string(), "GLIBC_2.2.5");
        for bad in [
            "GLIBC_PRIVATE",
            "GCC_3.0",
            "GLIBC_2",
            "GLIBC_2.1.2.3",
            "GLIBC_x.1",
        ] {
            assert_eq!(GlibcVersion::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn non_elf_bytes_are_an_error() {
        assert!(ElfInfo::parse(b"#!/bin/sh\n").is_err());
        assert!(ElfInfo::parse(b"\x7fELF").is_err());
    }
}
