//! bootstrap's build script: links it as every user program is linked (`../build.rs`), and
//! tells it which programs to start, as `START` in `$OUT_DIR/start.rs`: the entries of
//! `servers/boot.toml` with `start = true`, in manifest order, or, when the environment
//! variable `BOOTSTRAP_START` is set, the comma-separated programs it names (each must be in
//! the manifest; empty: none), e.g. `BOOTSTRAP_START=name_test cargo image run`. Each comes
//! with its manifest's `daemon` flag (a server bootstrap does not wait for) and its
//! `collocated` flag (a server the kernel hosts).

use std::path::{Path, PathBuf};

#[path = "../build.rs"]
mod program;

fn main() {
    program::main();
    let manifest =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap()).join("../boot.toml");
    println!("cargo:rerun-if-changed={}", manifest.display());
    let text = std::fs::read_to_string(&manifest)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", manifest.display()));
    let start = programs_to_start(&text).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    println!("cargo:rerun-if-env-changed=BOOTSTRAP_START");
    let start = match std::env::var("BOOTSTRAP_START") {
        Ok(list) => from_environment(&list, &text)
            .unwrap_or_else(|e| panic!("BOOTSTRAP_START={list:?}: {e}")),
        Err(_) => start,
    };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("start.rs");
    write_start_list(&out, &start);
}

/// A program to start: its name, whether it is a daemon, whether it may have the device
/// master port, its disk condition (`"present"`, `"absent"` or `""`), and whether it is
/// collocated (a server linked into the kernel).
type Start = (String, bool, bool, String, bool);

/// The programs `list` names (comma-separated), checked against the manifest.
fn from_environment(list: &str, manifest: &str) -> Result<Vec<Start>, String> {
    let table: toml::Table = manifest
        .parse()
        .map_err(|e| format!("not valid TOML: {e}"))?;
    let programs = table
        .get("program")
        .and_then(toml::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut start = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let entry = programs
            .iter()
            .find(|p| p.get("name").and_then(toml::Value::as_str) == Some(name));
        match entry {
            Some(entry) if name != "bootstrap" => start.push(start_entry(entry, name)?),
            _ => return Err(format!("{name:?} is not a program bootstrap can start")),
        }
    }
    Ok(start)
}

/// What bootstrap needs to know of program `name` to start it.
fn start_entry(program: &toml::Value, name: &str) -> Result<Start, String> {
    let disk = match program.get("disk") {
        None => String::new(),
        Some(toml::Value::String(s)) if s == "present" || s == "absent" => s.clone(),
        Some(other) => {
            return Err(format!(
                "program {name:?}: `disk` must be \"present\" or \"absent\", not {other:?}"
            ))
        }
    };
    Ok((
        name.to_string(),
        flag(program, name, "daemon")?,
        flag(program, name, "devices")?,
        disk,
        flag(program, name, "collocated")?,
    ))
}

/// The boolean `key` of program `name`'s entry; false when absent.
fn flag(program: &toml::Value, name: &str, key: &str) -> Result<bool, String> {
    match program.get(key) {
        None => Ok(false),
        Some(toml::Value::Boolean(value)) => Ok(*value),
        Some(other) => Err(format!(
            "program {name:?}: `{key}` must be true or false, not {}",
            other.type_str()
        )),
    }
}

/// The `name`s (and `daemon` flags) of the `[[program]]` entries whose `start` is true.
fn programs_to_start(text: &str) -> Result<Vec<Start>, String> {
    let table: toml::Table = text.parse().map_err(|e| format!("not valid TOML: {e}"))?;
    let Some(programs) = table.get("program") else {
        return Ok(Vec::new());
    };
    let programs = programs
        .as_array()
        .ok_or("`program` is not an array of tables")?;
    let mut start = Vec::new();
    for (i, program) in programs.iter().enumerate() {
        let name = program
            .get("name")
            .and_then(toml::Value::as_str)
            .ok_or_else(|| format!("program {} has no `name`", i + 1))?;
        match flag(program, name, "start")? {
            false => {}
            true if name == "bootstrap" => {
                return Err("bootstrap cannot start itself (`start = true`)".into());
            }
            true => start.push(start_entry(program, name)?),
        }
    }
    Ok(start)
}

fn write_start_list(out: &Path, start: &[Start]) {
    let mut text = String::from(
        "/// The programs to start, from `servers/boot.toml` (`start = true`), in order.\n\
         pub const START: &[bootstrap::Program] = &[\n",
    );
    for (name, daemon, devices, disk, collocated) in start {
        let disk = match disk.as_str() {
            "present" => "Some(true)",
            "absent" => "Some(false)",
            _ => "None",
        };
        text.push_str(&format!(
            "    bootstrap::Program {{ name: {name:?}, daemon: {daemon}, devices: {devices}, \
             disk: {disk}, collocated: {collocated} }},\n"
        ));
    }
    text.push_str("];\n");
    std::fs::write(out, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}
