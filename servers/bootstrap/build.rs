//! bootstrap's build script: links it as every user program is linked (`../build.rs`), and
//! tells it which programs to start, as `START` in `$OUT_DIR/start.rs`: the entries of
//! `servers/boot.toml` with `start = true`, in manifest order, or, when the environment
//! variable `BOOTSTRAP_START` is set, the comma-separated programs it names (each must be in
//! the manifest; empty: none), e.g. `BOOTSTRAP_START=name_test cargo image run`.

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

/// The programs `list` names (comma-separated), checked against the manifest.
fn from_environment(list: &str, manifest: &str) -> Result<Vec<String>, String> {
    let table: toml::Table = manifest
        .parse()
        .map_err(|e| format!("not valid TOML: {e}"))?;
    let known: Vec<&str> = table
        .get("program")
        .and_then(toml::Value::as_array)
        .map(|programs| {
            programs
                .iter()
                .filter_map(|p| p.get("name").and_then(toml::Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let mut start = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name == "bootstrap" || !known.contains(&name) {
            return Err(format!("{name:?} is not a program bootstrap can start"));
        }
        start.push(name.to_string());
    }
    Ok(start)
}

/// The `name`s of the `[[program]]` entries whose `start` is true.
fn programs_to_start(text: &str) -> Result<Vec<String>, String> {
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
        match program.get("start") {
            None | Some(toml::Value::Boolean(false)) => {}
            Some(toml::Value::Boolean(true)) if name == "bootstrap" => {
                return Err("bootstrap cannot start itself (`start = true`)".into());
            }
            Some(toml::Value::Boolean(true)) => start.push(name.to_string()),
            Some(other) => {
                return Err(format!(
                    "program {name:?}: `start` must be true or false, not {}",
                    other.type_str()
                ));
            }
        }
    }
    Ok(start)
}

fn write_start_list(out: &Path, start: &[String]) {
    let mut text = String::from(
        "/// The programs to start, from `servers/boot.toml` (`start = true`), in order.\n\
         pub const START: &[&str] = &[\n",
    );
    for name in start {
        text.push_str(&format!("    {name:?},\n"));
    }
    text.push_str("];\n");
    std::fs::write(out, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}
