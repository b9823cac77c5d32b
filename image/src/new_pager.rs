//! `cargo image new-pager NAME`: a new pager crate and its client test, copied from the template
//! crates `servers/template_pager` and `servers/template_pager_test` and the integration test
//! `tests/tests/template_pager.rs`, then listed in the root `Cargo.toml` and `servers/boot.toml`.
//!
//! Everything is checked and every new text made first ([`plan`]); only then is anything
//! written, and a write that fails halfway is undone.

use std::fmt::Write as _;
use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::manifest::{Manifest, MANIFEST_PATH};

/// The template's name: every occurrence in the copied files' contents and names becomes the
/// new pager's name.
pub const TEMPLATE: &str = "template_pager";

/// The longest pager name: its client `NAME_test` then stays within the boot archive's
/// 47-byte names (`libipc::abi::archive::NAME_MAX`).
pub const MAX_NAME_BYTES: usize = 40;

/// What a valid name looks like, for the refusals.
const VALID_NAME: &str = "a valid name is a lowercase ASCII letter followed by lowercase \
                          letters, digits and underscores, at most 40 bytes, e.g. ram_disk";

/// The workspace manifest, relative to the root.
const WORKSPACE_MANIFEST: &str = "Cargo.toml";

/// Makes the pager `name` in the workspace at `root`: copies the template crates and the
/// integration test, and adds the two crates to the workspace's members and default members
/// and their programs to the boot manifest. Writes nothing when a check fails.
pub fn new_pager(root: &Path, name: &str) -> Result<()> {
    plan(root, name)?.write(root)
}

/// What [`new_pager`] says it made and what to do next.
pub fn summary(name: &str) -> String {
    format!(
        "made servers/{name} (the pager), servers/{name}_test (its client) and \
         tests/tests/{name}.rs, and added them to Cargo.toml and servers/boot.toml\n\
         run it:  cargo image run -- init={name}_test\n\
         test it: cargo image test -- -p kernel-tests --test {name}"
    )
}

/// Checks `name` as a new pager's name: `[a-z][a-z0-9_]*`, at most [`MAX_NAME_BYTES`] bytes,
/// not containing the template's name.
pub fn check_name(name: &str) -> Result<()> {
    let Some(first) = name.chars().next() else {
        bail!("the pager's name is empty; {VALID_NAME}");
    };
    if !first.is_ascii_lowercase() {
        bail!("the pager's name {name:?} does not start with a lowercase letter; {VALID_NAME}");
    }
    if let Some(bad) = name
        .chars()
        .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
    {
        bail!("the pager's name {name:?} contains {bad:?}; {VALID_NAME}");
    }
    if name.len() > MAX_NAME_BYTES {
        bail!(
            "the pager's name {name:?} is {} bytes long, at most {MAX_NAME_BYTES} are allowed \
             so that its client's name {name}_test fits the boot archive's 47 bytes; \
             {VALID_NAME}",
            name.len()
        );
    }
    if name.contains(TEMPLATE) {
        bail!(
            "the pager's name {name:?} contains {TEMPLATE:?}, the template's name, which the copy \
             replaces; choose another"
        );
    }
    Ok(())
}

/// Everything [`new_pager`] writes, all paths relative to the workspace root.
#[derive(Debug)]
struct Plan {
    /// Directories to create, each after its parent.
    directories: Vec<PathBuf>,
    /// New files and their contents.
    files: Vec<(PathBuf, String)>,
    /// Existing files: their current text and their new text.
    edits: Vec<(PathBuf, String, String)>,
}

/// Checks everything and makes every new text, writing nothing.
fn plan(root: &Path, name: &str) -> Result<Plan> {
    check_name(name)?;
    let test_name = format!("{name}_test");
    let pager_dir = Path::new("servers").join(name);
    let client_dir = Path::new("servers").join(&test_name);
    let integration_test = Path::new("tests/tests").join(format!("{name}.rs"));
    for new in [&pager_dir, &client_dir, &integration_test] {
        if root.join(new).symlink_metadata().is_ok() {
            bail!(
                "{} already exists; choose another name or remove it",
                new.display()
            );
        }
    }

    let workspace_text = read(root, Path::new(WORKSPACE_MANIFEST))?;
    check_members(&workspace_text, name)?;
    let boot_text = read(root, Path::new(MANIFEST_PATH))?;
    check_programs(&boot_text, name)?;

    let mut plan = Plan {
        directories: Vec::new(),
        files: Vec::new(),
        edits: Vec::new(),
    };
    let template_dir = Path::new("servers").join(TEMPLATE);
    let template_client_dir = Path::new("servers").join(format!("{TEMPLATE}_test"));
    for (from, to) in [
        (&template_dir, &pager_dir),
        (&template_client_dir, &client_dir),
    ] {
        if !root.join(from).join("Cargo.toml").is_file() {
            bail!(
                "the template crate {} (with a Cargo.toml) is missing from the workspace at {}",
                from.display(),
                root.display()
            );
        }
        copy_directory(root, from, to, name, true, &mut plan)?;
    }
    let template_test = Path::new("tests/tests").join(format!("{TEMPLATE}.rs"));
    if !root.join(&template_test).is_file() {
        bail!(
            "the template's integration test {} is missing from the workspace at {}",
            template_test.display(),
            root.display()
        );
    }
    let test_text = read(root, &template_test)?;
    plan.files
        .push((integration_test, test_text.replace(TEMPLATE, name)));

    let new_workspace_text = add_members(&workspace_text, name)?;
    let new_boot_text = add_programs(&boot_text, name)?;
    plan.edits.push((
        PathBuf::from(WORKSPACE_MANIFEST),
        workspace_text,
        new_workspace_text,
    ));
    plan.edits
        .push((PathBuf::from(MANIFEST_PATH), boot_text, new_boot_text));
    Ok(plan)
}

impl Plan {
    /// Creates the directories and files and rewrites the edited files; on a failure, removes
    /// what it created and puts the edited files' old text back.
    fn write(&self, root: &Path) -> Result<()> {
        let mut created: Vec<PathBuf> = Vec::new();
        let mut edited: Vec<(&Path, &str)> = Vec::new();
        let result = self.write_all(root, &mut created, &mut edited);
        let Err(error) = result else {
            return Ok(());
        };
        let mut undo_failures = String::new();
        for path in created.iter().rev() {
            let undone = if path.is_dir() {
                fs::remove_dir(path)
            } else {
                fs::remove_file(path)
            };
            if let Err(undo) = undone {
                let _ = write!(
                    undo_failures,
                    "; could not remove {}: {undo}",
                    path.display()
                );
            }
        }
        for (path, old_text) in edited.iter().rev() {
            let path = root.join(path);
            // Each edit is of an existing file: where none is, the failed write made none.
            if !path.is_file() {
                continue;
            }
            if let Err(undo) = fs::write(&path, old_text) {
                let _ = write!(
                    undo_failures,
                    "; could not put back {}: {undo}",
                    path.display()
                );
            }
        }
        if undo_failures.is_empty() {
            Err(error.context("nothing was changed"))
        } else {
            Err(error.context(format!("undoing the changes failed{undo_failures}")))
        }
    }

    fn write_all<'a>(
        &'a self,
        root: &Path,
        created: &mut Vec<PathBuf>,
        edited: &mut Vec<(&'a Path, &'a str)>,
    ) -> Result<()> {
        for directory in &self.directories {
            let path = root.join(directory);
            fs::create_dir(&path)
                .with_context(|| format!("could not create {}", path.display()))?;
            created.push(path);
        }
        for (file, text) in &self.files {
            let path = root.join(file);
            // create_new: never overwrite a file that appeared since the checks.
            let mut handle = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .with_context(|| format!("could not create {}", path.display()))?;
            created.push(path.clone());
            std::io::Write::write_all(&mut handle, text.as_bytes())
                .with_context(|| format!("could not write {}", path.display()))?;
        }
        for (file, old_text, new_text) in &self.edits {
            let path = root.join(file);
            edited.push((file, old_text));
            fs::write(&path, new_text)
                .with_context(|| format!("could not write {}", path.display()))?;
        }
        Ok(())
    }
}

/// The text of `relative` under `root`.
fn read(root: &Path, relative: &Path) -> Result<String> {
    let path = root.join(relative);
    fs::read_to_string(&path).with_context(|| {
        format!(
            "could not read {} as UTF-8 text (the template holds text files only)",
            path.display()
        )
    })
}

/// Adds the copy of the template directory `from` as `to` to `plan`: its subdirectories and
/// its files, with [`TEMPLATE`] replaced by `name` in names and contents. Skips a `target`
/// directory at the top (a build of the template on its own).
fn copy_directory(
    root: &Path,
    from: &Path,
    to: &Path,
    name: &str,
    top: bool,
    plan: &mut Plan,
) -> Result<()> {
    plan.directories.push(to.to_path_buf());
    let listing = root.join(from);
    let mut entries = fs::read_dir(&listing)
        .with_context(|| format!("could not list {}", listing.display()))?
        .map(|entry| entry.map(|entry| entry.file_name()))
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("could not list {}", listing.display()))?;
    entries.sort();
    for entry in entries {
        let source = from.join(&entry);
        let Some(entry) = entry.to_str() else {
            bail!(
                "{} has a name that is not UTF-8; the template's file names are text",
                root.join(&source).display()
            );
        };
        let destination = to.join(entry.replace(TEMPLATE, name));
        let kind = root
            .join(&source)
            .symlink_metadata()
            .with_context(|| format!("could not read {}", root.join(&source).display()))?
            .file_type();
        if kind.is_dir() {
            if top && entry == "target" {
                continue;
            }
            copy_directory(root, &source, &destination, name, false, plan)?;
        } else if kind.is_file() {
            let text = read(root, &source)?;
            plan.files.push((destination, text.replace(TEMPLATE, name)));
        } else {
            bail!(
                "{} is neither a file nor a directory (a symbolic link?); the template holds \
                 plain files and directories only",
                root.join(&source).display()
            );
        }
    }
    Ok(())
}

/// The `members` and `default-members` of the workspace manifest's text.
fn workspace_members(text: &str) -> Result<[Vec<String>; 2]> {
    let manifest: toml::Table = text
        .parse()
        .context("the workspace's Cargo.toml is not valid TOML")?;
    let workspace = manifest
        .get("workspace")
        .and_then(toml::Value::as_table)
        .ok_or_else(|| anyhow!("the workspace's Cargo.toml has no [workspace] table"))?;
    let list = |key: &str| -> Result<Vec<String>> {
        let array = workspace
            .get(key)
            .and_then(toml::Value::as_array)
            .ok_or_else(|| anyhow!("the workspace's Cargo.toml has no `{key}` array"))?;
        array
            .iter()
            .map(|member| {
                member.as_str().map(str::to_owned).ok_or_else(|| {
                    anyhow!("the workspace's `{key}` has an entry that is not a string")
                })
            })
            .collect()
    };
    Ok([list("members")?, list("default-members")?])
}

/// Refuses `name` when the workspace already has a member `servers/NAME` or `servers/NAME_test`,
/// or any member whose directory is named `NAME` or `NAME_test` (its package would clash).
fn check_members(text: &str, name: &str) -> Result<()> {
    let test_name = format!("{name}_test");
    for (key, members) in ["members", "default-members"]
        .iter()
        .zip(workspace_members(text)?)
    {
        for member in members {
            let last = Path::new(&member).components().next_back();
            let clashes = [name, test_name.as_str()]
                .iter()
                .any(|new| last == Some(Component::Normal(new.as_ref())));
            if clashes {
                bail!(
                    "the workspace's `{key}` in Cargo.toml already lists {member:?}; choose \
                     another name"
                );
            }
        }
    }
    Ok(())
}

/// Refuses `name` when the boot manifest already has a program or data file named, or a
/// program built from a package named, `NAME` or `NAME_test`.
fn check_programs(text: &str, name: &str) -> Result<()> {
    let manifest = Manifest::parse(text, MANIFEST_PATH)?;
    let test_name = format!("{name}_test");
    for new in [name, test_name.as_str()] {
        if manifest.programs().iter().any(|p| p.name == new) {
            bail!("{MANIFEST_PATH} already has a program named {new:?}; choose another name");
        }
        if manifest.programs().iter().any(|p| p.package == new) {
            bail!(
                "{MANIFEST_PATH} already has a program of the package {new:?}; choose another \
                 name"
            );
        }
        if manifest.files().iter().any(|f| f.name == new) {
            bail!("{MANIFEST_PATH} already has a data file named {new:?}; choose another name");
        }
    }
    Ok(())
}

/// The workspace manifest's text with `"servers/NAME",` and `"servers/NAME_test",` after the
/// line `"servers/template_pager_test",` of both `members` and `default-members`, each with
/// that line's indentation; everything else as it was.
fn add_members(text: &str, name: &str) -> Result<String> {
    let anchor = format!("\"servers/{TEMPLATE}_test\",");
    let found = text
        .split_inclusive('\n')
        .filter(|line| line.trim() == anchor)
        .count();
    if found != 2 {
        bail!(
            "the workspace's Cargo.toml has the line `    {anchor}` {found} times; it must have \
             it twice, once in `members` and once in `default-members`, for the new crates to \
             go after it"
        );
    }
    let mut edited = String::with_capacity(text.len() + 128);
    for line in text.split_inclusive('\n') {
        edited.push_str(line);
        if line.trim() == anchor {
            let indent = &line[..line.len() - line.trim_start().len()];
            if !line.ends_with('\n') {
                edited.push('\n');
            }
            for member in [format!("servers/{name}"), format!("servers/{name}_test")] {
                let _ = writeln!(edited, "{indent}\"{member}\",");
            }
        }
    }
    let new_members = [format!("servers/{name}"), format!("servers/{name}_test")];
    for (key, members) in ["members", "default-members"]
        .iter()
        .zip(workspace_members(&edited)?)
    {
        for new in &new_members {
            if members.iter().filter(|member| *member == new).count() != 1 {
                bail!(
                    "the line `    {anchor}` of the workspace's Cargo.toml is not in both \
                     `members` and `default-members` (no {new:?} in `{key}` after adding it)"
                );
            }
        }
    }
    Ok(edited)
}

/// The boot manifest's text with copies of the template's two `[[program]]` blocks (named
/// `template_pager` and `template_pager_test`), [`TEMPLATE`] replaced by `name`, right after
/// the second, each after a blank line; everything else as it was. A block runs from its
/// `[[program]]` line to the next blank line or `[[` line, less the comment lines at its end
/// (those introduce what follows).
fn add_programs(text: &str, name: &str) -> Result<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let blocks = program_blocks(&lines)?;
    let find = |program: &str| {
        blocks
            .iter()
            .find(|(_, _, block_name)| block_name == program)
            .map(|&(start, end, _)| (start, end))
            .ok_or_else(|| {
                anyhow!(
                    "{MANIFEST_PATH} has no `[[program]]` with name = {program:?}, the template's \
                     entry, for the new programs to copy and follow"
                )
            })
    };
    let pager_block = find(TEMPLATE)?;
    let client_block = find(&format!("{TEMPLATE}_test"))?;
    let mut edited = String::with_capacity(text.len() + 256);
    for line in &lines[..client_block.1] {
        edited.push_str(line);
    }
    if !edited.ends_with('\n') {
        edited.push('\n');
    }
    for (start, end) in [pager_block, client_block] {
        edited.push('\n');
        for line in &lines[start..end] {
            edited.push_str(&line.replace(TEMPLATE, name));
        }
        if !edited.ends_with('\n') {
            edited.push('\n');
        }
    }
    for line in &lines[client_block.1..] {
        edited.push_str(line);
    }
    let manifest = Manifest::parse(&edited, MANIFEST_PATH)
        .context("the boot manifest with the new programs added is not valid")?;
    let test_name = format!("{name}_test");
    for new in [name, test_name.as_str()] {
        if !manifest.programs().iter().any(|p| p.name == new) {
            bail!("{MANIFEST_PATH}: the copy of the template's entries has no program {new:?}");
        }
    }
    Ok(edited)
}

/// The `[[program]]` blocks of the boot manifest's lines: (first line, end, program name).
fn program_blocks(lines: &[&str]) -> Result<Vec<(usize, usize, String)>> {
    let mut blocks = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        if !line.trim().starts_with("[[program]]") {
            continue;
        }
        let mut end = lines[start + 1..]
            .iter()
            .position(|line| line.trim().is_empty() || line.trim().starts_with("[["))
            .map_or(lines.len(), |offset| start + 1 + offset);
        while end > start + 1 && lines[end - 1].trim_start().starts_with('#') {
            end -= 1;
        }
        let block: String = lines[start..end].concat();
        let table: toml::Table = block.parse().with_context(|| {
            format!(
                "{MANIFEST_PATH}: the `[[program]]` block at line {} is not valid TOML on its own",
                start + 1
            )
        })?;
        let program_name = table
            .get("program")
            .and_then(toml::Value::as_array)
            .and_then(|programs| programs.first())
            .and_then(|program| program.get("name"))
            .and_then(toml::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        blocks.push((start, end, program_name));
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKSPACE: &str = "\
[workspace]
resolver = \"2\"
members = [
    \"image\",
    # The pager template, copied by `cargo image new-pager`.
    \"servers/template_pager\",
    \"servers/template_pager_test\",
    \"servers/hello\",
]
# Host crates are the default members.
default-members = [
    \"image\",
    \"servers/template_pager\",
    \"servers/template_pager_test\",
    # hello after the template
    \"servers/hello\",
]

[workspace.package]
version = \"0.1.0\" # the version
";

    const BOOT: &str = "\
# Programs packed into the boot archive.
[[program]]
name = \"bootstrap\"
package = \"bootstrap\"

# The pager template and its client.
[[program]]
name = \"template_pager\"
package = \"template_pager\"
start = true
daemon = true

[[program]]
name = \"template_pager_test\"
package = \"template_pager_test\"
# The greeting program.
[[program]]
name = \"hello\"
package = \"hello\"

[[file]]
name = \"data\"
pattern_bytes = 4096
";

    const PAGER_MANIFEST: &str = "\
[package]
name = \"template_pager\"

[[bin]]
name = \"template_pager\"
path = \"src/main.rs\"
";

    const PAGER_MAIN: &str = "\
//! template_pager: a pager of one object.
mod template_pager_state;
fn main() { println!(\"template_pager ready\"); }
";

    const CLIENT_MAIN: &str = "\
//! template_pager_test: the client of template_pager.
fn main() { let _ = lookup(\"template_pager\"); }
";

    const INTEGRATION_TEST: &str = "\
//! Boots init=template_pager_test.
#[test]
fn template_pager() { boot(\"init=template_pager_test\"); }
";

    /// A fake workspace in a fresh temporary directory, removed on drop.
    struct FakeWorkspace {
        root: PathBuf,
    }

    impl FakeWorkspace {
        fn new(tag: &str) -> FakeWorkspace {
            let root =
                std::env::temp_dir().join(format!("image-new-pager-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&root);
            let files = [
                ("Cargo.toml", WORKSPACE),
                ("servers/boot.toml", BOOT),
                ("servers/template_pager/Cargo.toml", PAGER_MANIFEST),
                ("servers/template_pager/src/main.rs", PAGER_MAIN),
                (
                    "servers/template_pager/src/template_pager_state.rs",
                    "//! State of template_pager.\n",
                ),
                (
                    "servers/template_pager/target/debug/template_pager.d",
                    "build output\n",
                ),
                (
                    "servers/template_pager_test/Cargo.toml",
                    "[package]\nname = \"template_pager_test\"\n",
                ),
                ("servers/template_pager_test/src/main.rs", CLIENT_MAIN),
                ("tests/tests/template_pager.rs", INTEGRATION_TEST),
                ("tests/tests/boot.rs", "//! Boots.\n"),
            ];
            for (path, text) in files {
                let path = root.join(path);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, text).unwrap();
            }
            FakeWorkspace { root }
        }

        /// Every file below the root, relative, with its contents, in order.
        fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
            fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
                let mut entries: Vec<_> = fs::read_dir(dir)
                    .unwrap()
                    .map(|entry| entry.unwrap().path())
                    .collect();
                entries.sort();
                for path in entries {
                    let relative = path.strip_prefix(root).unwrap().to_path_buf();
                    if path.is_dir() {
                        out.push((relative, Vec::new()));
                        walk(root, &path, out);
                    } else {
                        out.push((relative, fs::read(&path).unwrap()));
                    }
                }
            }
            let mut out = Vec::new();
            walk(&self.root, &self.root, &mut out);
            out
        }

        fn text(&self, path: &str) -> String {
            fs::read_to_string(self.root.join(path)).unwrap()
        }

        /// `new_pager(name)` fails, saying `expected`, and changes nothing.
        fn refuses(&self, name: &str, expected: &str) {
            let before = self.snapshot();
            let message = format!("{:#}", new_pager(&self.root, name).unwrap_err());
            assert!(message.contains(expected), "{name:?}: {message}");
            assert!(self.snapshot() == before, "{name:?} changed the workspace");
        }
    }

    impl Drop for FakeWorkspace {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.root);
        }
    }

    #[test]
    fn copies_the_template_with_the_name_replaced() {
        let workspace = FakeWorkspace::new("copies");
        new_pager(&workspace.root, "ram_disk").unwrap();
        assert_eq!(
            workspace.text("servers/ram_disk/Cargo.toml"),
            PAGER_MANIFEST.replace("template_pager", "ram_disk")
        );
        assert_eq!(
            workspace.text("servers/ram_disk/src/main.rs"),
            "//! ram_disk: a pager of one object.\nmod ram_disk_state;\n\
             fn main() { println!(\"ram_disk ready\"); }\n"
        );
        assert_eq!(
            workspace.text("servers/ram_disk/src/ram_disk_state.rs"),
            "//! State of ram_disk.\n"
        );
        assert!(!workspace.root.join("servers/ram_disk/target").exists());
        assert_eq!(
            workspace.text("servers/ram_disk_test/Cargo.toml"),
            "[package]\nname = \"ram_disk_test\"\n"
        );
        assert_eq!(
            workspace.text("servers/ram_disk_test/src/main.rs"),
            "//! ram_disk_test: the client of ram_disk.\n\
             fn main() { let _ = lookup(\"ram_disk\"); }\n"
        );
        assert_eq!(
            workspace.text("tests/tests/ram_disk.rs"),
            "//! Boots init=ram_disk_test.\n#[test]\n\
             fn ram_disk() { boot(\"init=ram_disk_test\"); }\n"
        );
        // The template is left as it was.
        assert_eq!(
            workspace.text("servers/template_pager/src/main.rs"),
            PAGER_MAIN
        );
    }

    #[test]
    fn lists_the_crates_after_the_template_in_both_member_arrays() {
        let workspace = FakeWorkspace::new("members");
        new_pager(&workspace.root, "ram_disk").unwrap();
        let text = workspace.text("Cargo.toml");
        let added = "    \"servers/template_pager_test\",\n    \"servers/ram_disk\",\n    \
                     \"servers/ram_disk_test\",\n";
        assert_eq!(
            text,
            WORKSPACE.replace("    \"servers/template_pager_test\",\n", added)
        );
        assert_eq!(text.matches("\"servers/ram_disk\"").count(), 2);
        assert_eq!(text.matches("\"servers/ram_disk_test\"").count(), 2);
        let [members, default_members] = workspace_members(&text).unwrap();
        for list in [members, default_members] {
            let at = list
                .iter()
                .position(|m| m == "servers/template_pager_test")
                .unwrap();
            assert_eq!(
                list[at + 1..at + 3],
                ["servers/ram_disk", "servers/ram_disk_test"]
            );
        }
    }

    #[test]
    fn adds_the_programs_after_the_template_blocks() {
        let workspace = FakeWorkspace::new("programs");
        new_pager(&workspace.root, "ram_disk").unwrap();
        let template_client = "[[program]]\nname = \"template_pager_test\"\n\
                               package = \"template_pager_test\"\n";
        let added = "\n[[program]]\nname = \"ram_disk\"\npackage = \"ram_disk\"\nstart = true\n\
                     daemon = true\n\n[[program]]\nname = \"ram_disk_test\"\n\
                     package = \"ram_disk_test\"\n";
        let expected = BOOT.replace(template_client, &format!("{template_client}{added}"));
        assert_eq!(workspace.text("servers/boot.toml"), expected);
        let manifest = Manifest::load(&workspace.root.join(MANIFEST_PATH)).unwrap();
        let names: Vec<&str> = manifest
            .programs()
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "bootstrap",
                "template_pager",
                "template_pager_test",
                "ram_disk",
                "ram_disk_test",
                "hello"
            ]
        );
    }

    #[test]
    fn a_template_block_at_the_end_without_a_newline_gets_one() {
        let text = "[[program]]\nname = \"template_pager\"\npackage = \"template_pager\"\n\n\
                    [[program]]\nname = \"template_pager_test\"\n\
                    package = \"template_pager_test\"";
        let edited = add_programs(text, "ram_disk").unwrap();
        assert_eq!(
            edited,
            format!(
                "{text}\n\n[[program]]\nname = \"ram_disk\"\npackage = \"ram_disk\"\n\n\
                 [[program]]\nname = \"ram_disk_test\"\npackage = \"ram_disk_test\"\n"
            )
        );
    }

    #[test]
    fn refuses_bad_names_and_changes_nothing() {
        let workspace = FakeWorkspace::new("names");
        workspace.refuses("", "name is empty");
        workspace.refuses("Upper", "does not start with a lowercase letter");
        workspace.refuses("1abc", "does not start with a lowercase letter");
        workspace.refuses("has-dash", "contains '-'");
        workspace.refuses("lowerUpper", "contains 'U'");
        workspace.refuses(&"n".repeat(41), "41 bytes long, at most 40");
        workspace.refuses("my_template_pager", "the template's name");
        for message in ["", "has-dash", &"n".repeat(41)] {
            let error = format!("{:#}", check_name(message).unwrap_err());
            assert!(error.contains("e.g. ram_disk"), "{error}");
        }
        check_name(&"n".repeat(40)).unwrap();
        check_name("a").unwrap();
        check_name("ram_disk2").unwrap();
    }

    #[test]
    fn refuses_an_existing_crate_or_test_and_changes_nothing() {
        let workspace = FakeWorkspace::new("exists");
        fs::create_dir_all(workspace.root.join("servers/ram_disk_test")).unwrap();
        workspace.refuses("ram_disk", "servers/ram_disk_test already exists");
        fs::write(workspace.root.join("servers/ram_disk"), "").unwrap();
        workspace.refuses("ram_disk", "servers/ram_disk already exists");
        workspace.refuses("boot", "tests/tests/boot.rs already exists");
    }

    #[test]
    fn refuses_an_existing_program_or_member_and_changes_nothing() {
        let workspace = FakeWorkspace::new("program");
        workspace.refuses("hello", "already lists \"servers/hello\"");
        let boot = format!("{BOOT}\n[[program]]\nname = \"ram_disk_test\"\npackage = \"x\"\n");
        fs::write(workspace.root.join(MANIFEST_PATH), boot).unwrap();
        workspace.refuses("ram_disk", "already has a program named \"ram_disk_test\"");
        workspace.refuses("bootstrap", "already has a program named \"bootstrap\"");
        workspace.refuses("data", "already has a data file named \"data\"");
    }

    #[test]
    fn refuses_a_workspace_without_the_template_and_changes_nothing() {
        let workspace = FakeWorkspace::new("template");
        fs::write(
            workspace.root.join("Cargo.toml"),
            WORKSPACE.replacen("    \"servers/template_pager_test\",\n", "", 1),
        )
        .unwrap();
        workspace.refuses("ram_disk", "1 times; it must have it twice");
        fs::write(workspace.root.join("Cargo.toml"), WORKSPACE).unwrap();
        fs::remove_file(workspace.root.join("tests/tests/template_pager.rs")).unwrap();
        workspace.refuses("ram_disk", "tests/tests/template_pager.rs is missing");
        fs::remove_dir_all(workspace.root.join("servers/template_pager_test")).unwrap();
        workspace.refuses(
            "ram_disk",
            "servers/template_pager_test (with a Cargo.toml) is missing",
        );
    }

    #[test]
    fn refuses_a_boot_manifest_without_the_template_entry() {
        let boot = BOOT.replace("template_pager_test", "other_test");
        let message = format!("{:#}", add_programs(&boot, "ram_disk").unwrap_err());
        assert!(
            message.contains("no `[[program]]` with name = \"template_pager_test\""),
            "{message}"
        );
    }

    #[test]
    fn a_failed_write_is_undone() {
        let workspace = FakeWorkspace::new("undo");
        let mut plan = plan(&workspace.root, "ram_disk").unwrap();
        let before = workspace.snapshot();
        // The last edit cannot be written: its file is in a directory that does not exist.
        plan.edits.push((
            PathBuf::from("missing/boot.toml"),
            String::new(),
            String::new(),
        ));
        let message = format!("{:#}", plan.write(&workspace.root).unwrap_err());
        assert!(message.contains("nothing was changed"), "{message}");
        assert!(workspace.snapshot() == before);
    }

    #[test]
    fn summary_says_how_to_run_and_test_it() {
        let text = summary("ram_disk");
        assert!(text.contains("servers/ram_disk (the pager)"), "{text}");
        assert!(
            text.contains("cargo image run -- init=ram_disk_test"),
            "{text}"
        );
        assert!(
            text.contains("cargo image test -- -p kernel-tests --test ram_disk"),
            "{text}"
        );
    }
}
