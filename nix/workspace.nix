# The Cargo workspace (xtask, vm-tests) for crane: its sources, the arguments
# every crane derivation shares, and the dependencies built once for all.
{
  lib,
  craneLib,
}: let
  inherit (lib) fileset;
  root = ../.;
  # Cargo loads every member's manifest even for `-p xtask`.
  manifests = fileset.unions [
    ../Cargo.toml
    ../Cargo.lock
    ../xtask/Cargo.toml
    ../vm-tests/Cargo.toml
  ];
in rec {
  # Everything the workspace's builds and tests read: the crates, the nextest
  # profiles, and the repository files tests include or open (pins and
  # toolchain files, the kernel config fragments, the ACPI tables, the
  # module's sources, and what `xtask nix-check`'s tests read: the flake
  # files, the host lint table, the CI workflow, the README).
  src = fileset.toSource {
    inherit root;
    fileset = fileset.unions [
      manifests
      ../xtask
      ../vm-tests
      ../.config/nextest.toml
      ../pins.toml
      ../rust-toolchain.toml
      ../kernel
      ../acpi
      ../module
      ../flake.nix
      ../flake.lock
      ../nix/host-lints.txt
      ../.github/workflows/ci.yml
      ../README.md
    ];
  };

  # Only what the xtask binary is compiled from: its own sources and the
  # vm-tests library it links (QMP, the VM runner), without tests, examples
  # or data (the tests run in the workspace checks). Editing a test or a Nix
  # file then does not rebuild xtask and, through it, the kernels.
  xtaskSrc = fileset.toSource {
    inherit root;
    fileset = fileset.unions [
      manifests
      (craneLib.fileset.rust ../xtask)
      (craneLib.fileset.rust ../vm-tests/src)
    ];
  };

  commonArgs = {
    inherit src;
    pname = "rust-kbd-lab";
    inherit (craneLib.crateNameFromCargoToml {cargoToml = ../xtask/Cargo.toml;}) version;
    strictDeps = true;
  };

  # The dependencies of the whole workspace, tests included, built once.
  cargoArtifacts = craneLib.buildDepsOnly commonArgs;
}
