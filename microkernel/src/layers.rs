//! The kernel's folders are layers: each imports only the layers below it, so no two
//! subsystems import each other in a circle. A host test reads every source file and checks.
//!
//! From the bottom: `base` (tables, queues, ids), `boot`, `arch`, `vm` (the memory
//! mechanism), `ipc` (ports, spaces, messages), `device` and `colloc` (the collocated
//! servers' state), and `kern`: the `Kernel` and every path that uses several subsystems.
//! `arch` calls up only into the kernel's entry points (`kern::entry`, `kern::startup`),
//! which its assembly names.

/// The folders from the bottom up, with their rank: a file may name another folder only if
/// that folder's rank is lower.
const LAYERS: &[(&str, u8)] = &[
    ("base", 0),
    ("boot", 1),
    ("arch", 2),
    ("vm", 3),
    ("ipc", 4),
    ("device", 5),
    ("colloc", 5),
    ("kern", 6),
];

/// Paths a lower layer may still name: the kernel's entry points, which `arch`'s trap and
/// system-call entries (and its boot entry, in assembly) go to.
const UPCALLS: &[(&str, &str)] = &[("arch", "kern::entry"), ("arch", "kern::startup")];

fn rank(folder: &str) -> Option<u8> {
    LAYERS.iter().find(|(f, _)| *f == folder).map(|(_, r)| *r)
}

/// The references in `source` (the file `path`, relative to `src/`) that go up or sideways:
/// (line number, the path named). Comments are skipped.
fn violations(path: &str, source: &str) -> Vec<(usize, String)> {
    let Some((folder, _)) = path.split_once('/') else {
        return Vec::new(); // main.rs and this file sit above every layer
    };
    let Some(own) = rank(folder) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for (number, line) in source.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let named: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let target = named.split("::").next().unwrap_or("");
            let Some(theirs) = rank(target) else {
                continue;
            };
            let upcall = UPCALLS
                .iter()
                .any(|(from, to)| *from == folder && named.starts_with(to));
            if target != folder && theirs >= own && !upcall {
                found.push((number + 1, named.trim_end_matches(':').to_string()));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn sources(dir: &Path, base: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).expect("source folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                sources(&path, base, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let name = path.strip_prefix(base).expect("under src");
                let text = std::fs::read_to_string(&path).expect("source file");
                out.push((name.to_string_lossy().replace('\\', "/"), text));
            }
        }
    }

    #[test]
    fn layers_do_not_import_upwards() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &src, &mut files);
        let folders: Vec<&str> = files
            .iter()
            .filter_map(|(p, _)| p.split_once('/').map(|(f, _)| f))
            .collect();
        for folder in folders {
            assert!(rank(folder).is_some(), "folder {folder} has no layer");
        }
        let mut wrong = Vec::new();
        for (path, text) in &files {
            for (line, named) in violations(path, text) {
                wrong.push(format!("{path}:{line} names crate::{named}"));
            }
        }
        assert!(
            wrong.is_empty(),
            "imports against the layers:\n{}",
            wrong.join("\n")
        );
    }

    #[test]
    fn the_check_finds_upward_and_sideways_imports() {
        let vm = "use crate::base::object_table::Table;\nuse crate::kern::kernel::Kernel;\n";
        assert_eq!(
            violations("vm/object.rs", vm),
            vec![(2, "kern::kernel::Kernel".to_string())]
        );
        let ipc = "fn f() { crate::device::polled(); crate::vm::map::PAGE_SIZE; }";
        assert_eq!(
            violations("ipc/port.rs", ipc),
            vec![(1, "device::polled".into())]
        );
        // Sideways: two folders of one rank.
        assert_eq!(
            violations("device/mod.rs", "use crate::colloc::Servers;"),
            vec![(1, "colloc::Servers".into())]
        );
        // Comments, the own folder, the top layer and arch's entry points are fine.
        assert!(violations("vm/map.rs", "// crate::kern::kernel\nuse crate::vm::page;").is_empty());
        assert!(violations("kern/sched.rs", "use crate::ipc::port::Port;").is_empty());
        assert!(violations(
            "arch/x86_64/trap.rs",
            "crate::kern::entry::trap_in_kernel(f)"
        )
        .is_empty());
        assert_eq!(
            violations("arch/x86_64/trap.rs", "crate::kern::console::emergency()"),
            vec![(1, "kern::console::emergency".into())]
        );
    }
}
