//! `nix/host-lints.txt`: the lint table of the host path's Rust toolchain
//! (the one rust-toolchain.toml pins), as `clippy-driver -W help` prints it:
//! every rustc and clippy lint with its default level. The flake's clippy
//! check (nix/cargo-clippy.nix) runs nixpkgs' newer clippy and allows only
//! the lints that clippy warns or denies by default while this table allows
//! or lacks them, so the Nix check expects what the host's check expects.
//! nix-check regenerates the table from the toolchain in use and fails when
//! the committed one differs.

use regex::Regex;

/// Where the table lives in the checkout.
pub const TABLE: &str = "nix/host-lints.txt";

/// The table's header: what it is and where it came from.
const HEADER: &str = "\
# The lints of the host path's Rust toolchain (rust-toolchain.toml) and their
# default levels, as `clippy-driver -W help` lists them. The flake's clippy
# check (nix/cargo-clippy.nix) holds nixpkgs' newer clippy to this set;
# `cargo xtask nix-check` fails when the file is stale and writes a fresh one.
";

/// `(lint, level)` of every lint line of `clippy-driver -W help`, with the
/// lint's dashes written as underscores (as `-A` takes it), sorted.
pub fn parse_help(help: &str) -> Vec<(String, String)> {
    let Ok(line) = Regex::new(r"^ +([a-z0-9_:-]+) +(allow|warn|deny|forbid) ") else {
        return Vec::new();
    };
    let mut lints: Vec<(String, String)> = help
        .lines()
        .filter_map(|l| line.captures(l))
        .map(|c| (c[1].replace('-', "_"), c[2].to_string()))
        .collect();
    lints.sort();
    lints.dedup();
    lints
}

/// The table file for `clippy-driver --version` and `-W help` output.
pub fn render(version: &str, help: &str) -> String {
    let mut out = format!("{HEADER}# {}\n", version.trim());
    for (lint, level) in parse_help(help) {
        out.push_str(&format!("{lint} {level}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMITTED: &str = include_str!("../../../nix/host-lints.txt");
    const TOOLCHAIN: &str = include_str!("../../../rust-toolchain.toml");

    const HELP: &str = "
Lint checks provided by rustc:

                              name  default  meaning
                              ----  -------  -------
                         dead-code  warn     detect unused, unexported items
          unsafe-op-in-unsafe-fn  warn     unsafe operations in unsafe functions

Lint groups provided by rustc:

                              name  sub-lints
                          warnings  all lints that are set to issue warnings

Lint checks provided by plugins loaded by this crate:

                 clippy::absolute-paths  allow    checks for usage of an item without a `use` statement
                clippy::approx-constant  deny     the approximate of a known float constant

Lint groups loaded by this crate:

                            clippy::all  clippy::approx-constant, clippy::absolute-paths
";

    #[test]
    fn lint_lines_are_read_and_groups_are_not() {
        let lints = parse_help(HELP);
        let names: Vec<&str> = lints.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "clippy::absolute_paths",
                "clippy::approx_constant",
                "dead_code",
                "unsafe_op_in_unsafe_fn"
            ]
        );
        assert_eq!(lints[1].1, "deny");
    }

    #[test]
    fn the_committed_table_is_a_table_of_the_pinned_toolchain() {
        let channel = TOOLCHAIN
            .lines()
            .find_map(|l| l.strip_prefix("channel = \""))
            .and_then(|l| l.strip_suffix('"'))
            .expect("rust-toolchain.toml has a channel");
        // clippy 1.95.0 calls itself `clippy 0.1.95`.
        let minor = channel.split('.').nth(1).expect("channel is a version");
        assert!(
            COMMITTED.contains(&format!("\n# clippy 0.1.{minor} ")),
            "{TABLE} is not the table of rustc {channel}: run `cargo xtask nix-check`"
        );
        let rows: Vec<&str> = COMMITTED.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(rows.len() > 900, "{} lints only", rows.len());
        assert!(rows.iter().all(|r| {
            let mut w = r.split(' ');
            matches!(
                (w.next(), w.next(), w.next()),
                (Some(_), Some("allow" | "warn" | "deny" | "forbid"), None)
            )
        }));
        assert!(rows.contains(&"dead_code warn"));
    }
}
