//! `simpler device ls | rm | gc` with the exact spellings scripts use, on
//! the simulator (and with the aarch64 device side under qemu): what each
//! prints, the exit status, and that files of other namings stay.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use simpler_host::abi::PreinstallName;
use simpler_testkit::{device_artifacts, host_artifacts, SimRoot};

use super::{simpler, text};

/// Creates `name` in `dir`, last written `age` ago.
fn plant(dir: &Path, name: &str, len: usize, age: Duration) {
    fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    fs::write(&path, vec![1; len]).unwrap();
    let file = fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

fn temp_name(fp: u64) -> String {
    format!(
        ".{}.tmp.0.77.77.0.{fp:016x}.{:016x}",
        PreinstallName::new(fp),
        !fp
    )
}

/// `simpler <args>`, asserting its exit status; (stdout, stderr).
fn ok(root: &SimRoot, args: &[&str]) -> (String, String) {
    let out = simpler(root, args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{args:?}\n{stdout}\n{stderr}");
    (stdout, stderr)
}

/// The `<kind> <name> <size> <age>` rows of `ls` output.
fn rows(stdout: &str) -> Vec<(String, String, u64, u64)> {
    stdout
        .lines()
        .map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let [kind, name, size, age] = cols[..] else {
                panic!("not four columns: {line:?}")
            };
            (
                kind.to_owned(),
                name.to_owned(),
                size.parse().unwrap(),
                age.parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn ls_rm_gc_list_and_clean_what_was_installed() {
    let root = SimRoot::new();
    let dir = root.preinstall(0);
    ok(&root, &["run", "--elements", "64"]);
    let runtime = fs::read(device_artifacts().runtime()).unwrap();
    let installed = PreinstallName::of(&runtime).to_string();
    let fp = &installed["simpler_inner_".len()..][..16];

    plant(&dir, "libother.so", 5, Duration::from_secs(99_999));
    let old = PreinstallName::new(0xabc).to_string();
    plant(&dir, &old, 10, Duration::from_secs(7200));
    let temp = temp_name(0x51);
    plant(&dir, &temp, 3, Duration::from_secs(700));

    let (stdout, stderr) = ok(&root, &["device", "ls"]);
    assert!(stderr.is_empty(), "{stderr}");
    let got = rows(&stdout);
    assert_eq!(got.len(), 3, "{stdout}");
    assert_eq!(
        (got[0].0.as_str(), got[0].1.as_str(), got[0].2),
        ("installed", installed.as_str(), runtime.len() as u64)
    );
    assert!(got[0].3 < 120, "{stdout}");
    assert_eq!(
        (got[1].0.as_str(), got[1].1.as_str(), got[1].2),
        ("installed", old.as_str(), 10)
    );
    assert!((7200..7300).contains(&got[1].3), "{stdout}");
    assert_eq!(
        (got[2].0.as_str(), got[2].1.as_str(), got[2].2),
        ("temp", temp.as_str(), 3)
    );

    // rm: one present, one absent; the present one goes all the same.
    let out = simpler(
        &root,
        &["device", "rm", fp, "00000000000000ff", "--device", "0"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let line = stdout.trim_end();
    assert!(
        line.starts_with(&format!("removed installed {installed} {} ", runtime.len())),
        "{stdout}"
    );
    assert!(
        stderr.contains("no runtime with fingerprint 00000000000000ff is installed on device 0"),
        "{stderr}"
    );
    assert!(!dir.join(&installed).exists());

    // gc with its defaults: 8 kept, temp files past 600 s go.
    let (stdout, _) = ok(&root, &["device", "gc"]);
    assert_eq!(
        stdout.trim_end(),
        format!("removed temp {temp} 3 {}", rows_age(&stdout))
    );
    // keep 0, stale after 0: every file of simpler's naming goes.
    let (stdout, _) = ok(
        &root,
        &["device", "gc", "--keep", "0", "--stale-after", "0"],
    );
    assert!(
        stdout.starts_with(&format!("removed installed {old} 10 ")),
        "{stdout}"
    );
    let (stdout, _) = ok(&root, &["device", "ls"]);
    assert_eq!(stdout, "");
    let left: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["libother.so"]);
}

/// The age column of a one-line `removed …` output.
fn rows_age(stdout: &str) -> u64 {
    stdout.split_whitespace().last().unwrap().parse().unwrap()
}

#[test]
fn gc_keeps_the_eight_most_recently_installed_by_default() {
    let root = SimRoot::new();
    let dir = root.preinstall(0);
    let names: Vec<String> = (1..=10u64)
        .map(|i| {
            let name = PreinstallName::new(i).to_string();
            plant(&dir, &name, 1, Duration::from_secs(100 * i));
            name
        })
        .collect();
    let fresh = temp_name(0x99);
    plant(&dir, &fresh, 1, Duration::from_secs(30));
    let (stdout, _) = ok(&root, &["device", "gc"]);
    let removed: Vec<&str> = stdout
        .lines()
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    // The oldest two, newest first.
    assert_eq!(removed, [names[8].as_str(), names[9].as_str()]);
    let (stdout, _) = ok(
        &root,
        &["device", "gc", "--keep", "3", "--stale-after", "10"],
    );
    assert_eq!(stdout.lines().count(), 6, "{stdout}");
    assert!(stdout
        .lines()
        .last()
        .unwrap()
        .starts_with(&format!("removed temp {fresh} ")));
}

#[test]
fn device_commands_take_the_flags_of_run() {
    let root = SimRoot::new();
    let lib = host_artifacts().sim_lib();
    let dispatcher = device_artifacts().dispatcher();
    let runtime = fs::read(device_artifacts().runtime()).unwrap();
    let machine = simpler_host::SoInfo::parse(&runtime)
        .unwrap()
        .machine
        .to_string();
    plant(
        &root.preinstall(1),
        &PreinstallName::new(7).to_string(),
        4,
        Duration::ZERO,
    );
    let (stdout, _) = ok(
        &root,
        &[
            "device",
            "ls",
            "--backend",
            "cann",
            "--cann-lib",
            lib.to_str().unwrap(),
            "--device-machine",
            &machine,
            "--dispatcher",
            dispatcher.to_str().unwrap(),
            "--device",
            "1",
        ],
    );
    assert_eq!(rows(&stdout).len(), 1, "{stdout}");
    let (stdout, _) = ok(&root, &["device", "ls"]);
    assert_eq!(stdout, "", "device 0 is another directory");
}

#[test]
fn bad_device_arguments_fail_clearly() {
    let root = SimRoot::new();
    // A malformed fingerprint is a usage error naming it.
    for bad in [
        "xyz",
        "0123456789abcde",
        "0123456789abcdef0",
        "simpler_inner_0123456789abcdef.so",
    ] {
        let out = simpler(&root, &["device", "rm", bad]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains(bad) && stderr.contains("16 hex digits"),
            "{stderr}"
        );
    }
    let out = simpler(&root, &["device", "rm"]);
    assert_eq!(out.status.code(), Some(2));
    for args in [
        &["device", "gc", "--keep", "-1"][..],
        &["device", "gc", "--stale-after", "soon"],
    ] {
        assert_eq!(simpler(&root, args).status.code(), Some(2), "{args:?}");
    }
    // A device that does not exist.
    let out = simpler(&root, &["device", "ls", "--device", "99"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("maintenance list on device 99 failed"),
        "{stderr}"
    );
    // Uppercase hex is a fingerprint too.
    let out = simpler(&root, &["device", "rm", "00000000000000AB"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("00000000000000ab"));
}
