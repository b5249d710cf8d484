//! The CANN stack of this machine as the bootstrap sees it: the toolkit's
//! and the driver's versions, read from the files CANN's installers write,
//! each against the oldest version whose `libaicpu_extend_kernels` serves
//! the KFC launch. Where the files are and how they are read is in
//! `docs/design.md` §2.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use simpler_abi::stack::{DRIVER_DIR_ENV, MIN_CANN_VERSION, MIN_DRIVER_VERSION};
use simpler_host::cann::TOOLKIT_ENV;

/// Where the driver's installer records its install path.
const ASCEND_INSTALL_INFO: &str = "/etc/ascend_install.info";
/// The key of that path in [`ASCEND_INSTALL_INFO`].
const DRIVER_PATH_KEY: &str = "Driver_Install_Path_Param";
/// The driver's directory when nothing names another.
const DEFAULT_DRIVER_DIR: &str = "/usr/local/Ascend/driver";
/// Version files are a few hundred bytes; nothing past this is read, so a
/// wrong file costs nothing.
const MAX_VERSION_FILE: u64 = 64 << 10;
/// The key of the toolkit's version in an older toolkit's `version.cfg`.
const VERSION_CFG_KEY: &str = "toolkit_running_version";
/// Longest found text shown as it is.
const MAX_SHOWN: usize = 32;

/// A CANN or driver version, ordered as CANN orders its releases: within
/// `a.b`, test builds (`a.b.T6`) before release candidates (`a.b.RC1`)
/// before releases (`a.b.0`); pre-releases (`.alpha001`, `-beta.1`, `.rc1`)
/// before the version they precede, patches (`25.0.rc1.1`) after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    major: u64,
    minor: u64,
    line: Line,
    tail: Tail,
}

/// The third component. Variant order is release order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Line {
    Test(u64),
    Rc(u64),
    Release(u64),
}

/// What follows the third component. Variant order is release order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Tail {
    Alpha(u64),
    Beta(u64),
    Rc(u64),
    None,
    Patch(u64),
}

impl Version {
    /// `text` as a version, case-insensitively, `.` and `-` both
    /// separating; `None` for anything else (`8.5`, `7.6.T13.0.B094`).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().to_ascii_lowercase();
        let mut tokens = text.split(['.', '-']);
        let major = number(tokens.next()?)?;
        let minor = number(tokens.next()?)?;
        let third = tokens.next()?;
        let line = if let Some(n) = third.strip_prefix("rc") {
            Line::Rc(number(n)?)
        } else if let Some(n) = third.strip_prefix('t') {
            Line::Test(number(n)?)
        } else {
            Line::Release(number(third)?)
        };
        let rest: Vec<&str> = tokens.collect();
        let tail = match rest.as_slice() {
            [] => Tail::None,
            [word] => match number(word) {
                Some(n) => Tail::Patch(n),
                None => pre_release(word)?,
            },
            // `-beta.1`: the word and its number apart.
            [word, n] if word.bytes().all(|b| b.is_ascii_alphabetic()) => {
                pre_release(&format!("{word}{n}"))?
            }
            _ => return None,
        };
        Some(Self {
            major,
            minor,
            line,
            tail,
        })
    }
}

/// `alpha001`, `beta`, `rc2`: a pre-release, its number 0 when absent.
fn pre_release(word: &str) -> Option<Tail> {
    let digits = word
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(word.len());
    let (kind, n) = word.split_at(digits);
    let n = if n.is_empty() { 0 } else { number(n)? };
    Some(match kind {
        "alpha" => Tail::Alpha(n),
        "beta" => Tail::Beta(n),
        "rc" => Tail::Rc(n),
        _ => return None,
    })
}

fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// One component's line of the verdict.
#[derive(Debug)]
pub struct Finding {
    component: &'static str,
    required: &'static str,
    found: Found,
}

#[derive(Debug)]
enum Found {
    /// A version text in `file`, understood or not.
    Text { text: String, file: PathBuf },
    /// No version: why.
    Nothing(String),
}

/// Whether the component can serve the bootstrap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    TooOld,
    Unknown,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::Ok => "ok",
            Self::TooOld => "too old",
            Self::Unknown => "unknown",
        })
    }
}

impl Finding {
    pub fn verdict(&self) -> Verdict {
        let Found::Text { text, .. } = &self.found else {
            return Verdict::Unknown;
        };
        let floor = Version::parse(self.required).expect("the floors in simpler_abi parse");
        match Version::parse(text) {
            Some(v) if v >= floor => Verdict::Ok,
            Some(_) => Verdict::TooOld,
            None => Verdict::Unknown,
        }
    }

    pub fn component(&self) -> &'static str {
        self.component
    }

    pub fn required(&self) -> &'static str {
        self.required
    }
}

impl fmt::Display for Finding {
    /// `CANN toolkit  8.3.RC1  required ≥ 8.5.0  too old  (<file>)`, in columns.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = self.verdict();
        let (found, detail) = match &self.found {
            Found::Text { text, file } if verdict == Verdict::Unknown => (
                shown(text),
                format!("not a version simpler understands, in {}", file.display()),
            ),
            Found::Text { text, file } => (text.clone(), file.display().to_string()),
            Found::Nothing(why) => ("not found".to_owned(), why.clone()),
        };
        write!(
            f,
            "{:<13} {:<14} required ≥ {:<7} {:<8} ({detail})",
            self.component, found, self.required, verdict
        )
    }
}

/// `text` quoted, and cut short when long: it may be anything.
fn shown(text: &str) -> String {
    if text.chars().count() > MAX_SHOWN {
        let head: String = text.chars().take(MAX_SHOWN).collect();
        format!("{head:?}…")
    } else {
        format!("{text:?}")
    }
}

/// The toolkit named by the first set variable of [`TOOLKIT_ENV`] that has
/// a version file: `share/info/runtime/version.info` (`Version=`, what
/// `aclsysGetCANNVersion` reads), else `<arch>-linux/ascend_toolkit_install.info`
/// (`version=`, the installer's record), else `version.cfg` (the public half
/// of `toolkit_running_version=[inner:public]`).
pub fn toolkit() -> Finding {
    let homes: Vec<PathBuf> = TOOLKIT_ENV
        .iter()
        .filter_map(|var| std::env::var_os(var).filter(|v| !v.is_empty()))
        .map(PathBuf::from)
        .collect();
    let found = if homes.is_empty() {
        Found::Nothing(format!("{} unset", TOOLKIT_ENV.join(" and ")))
    } else {
        let mut problems = Vec::new();
        let mut found = None;
        'homes: for home in &homes {
            for (file, key) in toolkit_files(home) {
                match read_key(&file, key) {
                    Ok(Some(text)) => {
                        let text = if key == VERSION_CFG_KEY {
                            public_version(&text).to_owned()
                        } else {
                            text
                        };
                        found = Some(Found::Text { text, file });
                        break 'homes;
                    }
                    Ok(None) => problems.push(format!("no {key}= line in {}", file.display())),
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(err) => problems.push(format!("cannot read {}: {err}", file.display())),
                }
            }
        }
        found.unwrap_or_else(|| {
            Found::Nothing(problems.into_iter().next().unwrap_or_else(|| {
                let homes: Vec<String> = homes.iter().map(|h| h.display().to_string()).collect();
                format!("no version file in {}", homes.join(" or "))
            }))
        })
    };
    Finding {
        component: "CANN toolkit",
        required: MIN_CANN_VERSION,
        found,
    }
}

/// The version files of a toolkit at `home`, in the order they are tried,
/// each with its key.
fn toolkit_files(home: &Path) -> Vec<(PathBuf, &'static str)> {
    let mut files = vec![(home.join("share/info/runtime/version.info"), "Version")];
    // `<arch>-linux` for this machine's arch first; older toolkits spelled
    // aarch64 `arm64`, and a toolkit may carry another arch's directory.
    let mut arch_dirs: Vec<String> = std::fs::read_dir(home)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with("-linux"))
        .collect();
    let own = format!("{}-linux", std::env::consts::ARCH);
    arch_dirs.sort_by_key(|n| (*n != own, n.clone()));
    if !arch_dirs.contains(&own) {
        arch_dirs.insert(0, own);
    }
    for dir in arch_dirs {
        files.push((
            home.join(dir).join("ascend_toolkit_install.info"),
            "version",
        ));
    }
    files.push((home.join("version.cfg"), VERSION_CFG_KEY));
    files
}

/// `[7.6.0.1.220:8.0.0]` → `8.0.0`; `[8.3.RC2]` → `8.3.RC2`.
fn public_version(value: &str) -> &str {
    let inner = value.trim().trim_start_matches('[');
    let inner = inner.split(']').next().unwrap_or(inner);
    inner.rsplit(':').next().unwrap_or(inner).trim()
}

/// The driver in `$SIMPLER_DRIVER_DIR`, else where
/// `/etc/ascend_install.info` says (`Driver_Install_Path_Param=<p>`:
/// `<p>/driver`), else in `/usr/local/Ascend/driver`: its `version.info`,
/// `Version=`.
pub fn driver() -> Finding {
    let dir = match std::env::var_os(DRIVER_DIR_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match read_key(Path::new(ASCEND_INSTALL_INFO), DRIVER_PATH_KEY) {
            Ok(Some(path)) if !path.is_empty() => Path::new(&path).join("driver"),
            _ => PathBuf::from(DEFAULT_DRIVER_DIR),
        },
    };
    let file = dir.join("version.info");
    let found = match read_key(&file, "Version") {
        Ok(Some(text)) => Found::Text { text, file },
        Ok(None) => Found::Nothing(format!("no Version= line in {}", file.display())),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            Found::Nothing(format!("no {}", file.display()))
        }
        Err(err) => Found::Nothing(format!("cannot read {}: {err}", file.display())),
    };
    Finding {
        component: "NPU driver",
        required: MIN_DRIVER_VERSION,
        found,
    }
}

/// The trimmed value of the first `key=value` line of `path` (the key
/// compared without case, as CANN's installers grep for it); `None` when no
/// line has the key.
fn read_key(path: &Path, key: &str) -> io::Result<Option<String>> {
    let mut bytes = Vec::new();
    File::open(path)?
        .take(MAX_VERSION_FILE)
        .read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(text.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().to_owned())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap_or_else(|| panic!("{text:?} should parse"))
    }

    #[test]
    fn the_floors_parse() {
        v(MIN_CANN_VERSION);
        v(MIN_DRIVER_VERSION);
    }

    #[test]
    fn versions_order_as_cann_releases_them() {
        let ascending = [
            "8.0.T6",
            "8.0.RC2.alpha002",
            "8.0.RC2",
            "8.0.RC3",
            "8.0.0",
            "8.3.RC2",
            "8.5.RC1",
            "8.5.0.alpha001",
            "8.5.0-alpha.2",
            "8.5.0-beta.1",
            "8.5.0.rc1",
            "8.5.0",
            "8.5.0.1",
            "8.5.1",
            "9.0.0-beta.1",
            "9.0.0",
            "10.0.0",
        ];
        for pair in ascending.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        let drivers = ["24.1.rc3", "25.0.rc1", "25.0.rc1.1", "25.2.rc1", "25.2.0"];
        for pair in drivers.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(v("25.2.RC1"), v("25.2.rc1"));
        assert_eq!(v(" 8.5.0.alpha001 "), v("8.5.0.alpha001"));
        assert_eq!(v("8.5.0-beta"), v("8.5.0.beta0"));
    }

    #[test]
    fn anything_else_is_not_a_version() {
        for text in [
            "",
            "8",
            "8.5",
            "8.5.",
            "8..0",
            "abc",
            "v8.5.0",
            "CANN8.5.0",
            "8.5.x",
            "7.6.T13.0.B094",
            "9.1.0-beta.2.pre",
            "8.5.0.gamma1",
            "8.5.0.alpha1x",
            "99999999999999999999.0.0",
            "8.5.0 9.0.0",
        ] {
            assert_eq!(Version::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn version_cfg_holds_the_public_version_after_the_colon() {
        assert_eq!(public_version("[7.6.0.1.220:8.0.0]"), "8.0.0");
        assert_eq!(public_version("[8.3.RC2]"), "8.3.RC2");
        assert_eq!(public_version("[7.5.0.1.129:8.0.RC3],[x:y]"), "8.0.RC3");
        assert_eq!(public_version("8.5.0"), "8.5.0");
    }

    #[test]
    fn a_long_or_odd_text_is_quoted_and_cut() {
        assert_eq!(shown("banana"), "\"banana\"");
        let long = "x".repeat(100);
        assert_eq!(shown(&long), format!("\"{}\"…", "x".repeat(MAX_SHOWN)));
    }
}
