# rust-analyzer on the module, as `cargo xtask ra-check` checks it on the
# host: `xtask ra-check` writes rust-project.json with the kernel's `make
# rust-analyzer` against the lab kernel's build tree, runs nixpkgs'
# rust-analyzer (`rust-analyzer diagnostics`) on a copy of each Rust module
# directory and fails unless every import, path and macro resolves,
# kernel:: ones included; a bogus kernel:: import it appends must be
# reported, which proves the module was analysed.
{
  lib,
  kernelTreeCheck,
  kernel,
  moduleDirs,
  rust-analyzer,
}:
kernelTreeCheck {
  name = "ra-check";
  inherit kernel;
  # rust-analyzer has nothing to say about the C module directories.
  dirs = lib.filter (dir: lib.any (lib.hasSuffix ".rs") (lib.attrNames (builtins.readDir dir))) moduleDirs;
  # rust-analyzer keeps its caches below $HOME.
  preCommand = "export HOME=$TMPDIR";
  command = "ra-check --rust-analyzer ${lib.getExe' rust-analyzer "rust-analyzer"}";
}
