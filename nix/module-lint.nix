# The module directories of kernel/kernels.toml linted the kernel's way, as
# `cargo xtask lint` lints them on the host: `xtask lint` (clippy through
# kbuild's CLIPPY=1 with the kernel's lint set, rustfmt with the kernel's
# .rustfmt.toml) against the lab kernel's build tree. Any finding fails the
# check, with its file:line.
#
# nixpkgs' clippy (built with the same rustc as the kernel, which the step
# checks) is newer than the host's pinned one: as in ./cargo-clippy.nix, the
# lints it warns or denies by default that the host's clippy allows or lacks
# (./host-lints.txt) are allowed, every other one is held to the kernel's
# lint set. rustfmt formats with the kernel's edition 2021 style, which
# rustfmt keeps stable across versions.
{
  lib,
  kernelTreeCheck,
  kernel,
  moduleDirs,
  clippy,
  rustfmt,
}:
kernelTreeCheck {
  name = "module-lint";
  inherit kernel;
  dirs = moduleDirs;
  nativeBuildInputs = [clippy rustfmt];
  preCommand = ''
    ${import ./newer-lints.nix}
    allowArgs=""
    for lint in $newerLints; do allowArgs+=" --allow $lint"; done
  '';
  command = lib.concatStringsSep " " [
    "lint"
    "--clippy-driver ${lib.getExe' clippy "clippy-driver"}"
    "--rustfmt ${lib.getExe' rustfmt "rustfmt"}"
    "$allowArgs"
  ];
}
