//! `dane-roll generate …` (hidden): the man pages and the shell completion scripts, made from the
//! clap definitions of [`crate::cli`] so that they never drift from `--help`. The Debian package
//! build (`packaging/build-deb`) runs it; nothing generated is committed. The same approach as
//! ripgrep's `--generate`: the binary is the only place that knows its own command line.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::cli::{Cli, GenerateCommand};
use crate::exit::Status;

/// The program's name in the pages and the scripts.
const BIN: &str = "dane-roll";

/// Write what `what` asks for: man pages into a directory, a completion script on standard output.
pub(super) fn run(what: &GenerateCommand) -> anyhow::Result<Status> {
    match what {
        GenerateCommand::Man { dir } => {
            for page in man_pages(dir)? {
                crate::output::line(&page.display().to_string());
            }
        }
        GenerateCommand::CompleteBash => print(&completion(Shell::Bash))?,
        GenerateCommand::CompleteZsh => print(&completion(Shell::Zsh))?,
        GenerateCommand::CompleteFish => print(&completion(Shell::Fish))?,
    }
    Ok(Status::Ok)
}

/// Write `dane-roll.1` and one page per visible command (`dane-roll-run.1`,
/// `dane-roll-config-check.1`, …) into `dir`, created if missing; the paths written, sorted.
pub(super) fn man_pages(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
    let mut pages = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("cannot list {}", dir.display()))?
            .path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.is_some_and(|n| n.starts_with(BIN) && n.ends_with(".1")) {
            pages.push(path);
        }
    }
    pages.sort();
    Ok(pages)
}

/// The completion script of `shell`.
pub(super) fn completion(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut visible_command(), BIN, &mut out);
    out
}

/// The command line without its hidden commands. clap_mangen leaves them out by itself, but
/// clap_complete's fish and bash scripts would offer `generate`; clap cannot remove a
/// subcommand, so the top level is rebuilt from its parts.
fn visible_command() -> clap::Command {
    let full = Cli::command();
    let mut visible = clap::Command::new(BIN)
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true);
    if let Some(about) = full.get_about() {
        visible = visible.about(about.clone());
    }
    for arg in full.get_arguments() {
        visible = visible.arg(arg.clone());
    }
    for sub in full.get_subcommands().filter(|s| !s.is_hide_set()) {
        visible = visible.subcommand(sub.clone());
    }
    visible
}

fn print(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .context("cannot write the completion script to standard output")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_per_command_and_run_documents_wait() {
        let dir = tempfile::tempdir().unwrap();
        let pages = man_pages(dir.path()).unwrap();
        let names: Vec<String> = pages
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for want in [
            "dane-roll.1",
            "dane-roll-run.1",
            "dane-roll-deploy.1",
            "dane-roll-hook-certbot.1",
            "dane-roll-config-check.1",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
        }
        // The hidden generator documents nobody.
        assert!(!names.iter().any(|n| n.contains("generate")), "{names:?}");
        let run = std::fs::read_to_string(dir.path().join("dane-roll-run.1")).unwrap();
        // roff writes a hyphen as `\-`.
        assert!(run.contains(r"\-\-wait"), "{run}");
        assert!(run.contains(".TH dane-roll-run 1"), "{run}");
        let main = std::fs::read_to_string(dir.path().join("dane-roll.1")).unwrap();
        assert!(main.contains("dane\\-roll\\-run(1)"), "{main}");
    }

    #[test]
    fn each_completion_script_names_the_commands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = String::from_utf8(completion(shell)).unwrap();
            assert!(!script.trim().is_empty(), "{shell}: empty");
            assert!(
                script.contains("deploy"),
                "{shell}: no `deploy` in\n{script}"
            );
            assert!(script.contains("dane-roll"), "{shell}: no program name");
            assert!(
                !script.contains("complete-bash"),
                "{shell}: the hidden generator shows"
            );
        }
    }
}
