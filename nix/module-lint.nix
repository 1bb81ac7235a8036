# The module directories of kernel/kernels.toml linted the kernel's way, as
# `cargo xtask lint` lints them on the host: `xtask lint`, the host path's
# own step (clippy through kbuild's CLIPPY=1 with the kernel's lint set,
# rustfmt with the kernel's .rustfmt.toml), against the build tree (dev
# output) of the lab kernel with the toolchain that built it. Any finding
# fails the check, with its file:line.
#
# nixpkgs' clippy (built with the same rustc as the kernel, which the step
# checks) is newer than the host's pinned one: as in ./cargo-clippy.nix, the
# lints it warns or denies by default that the host's clippy allows or lacks
# (./host-lints.txt) are allowed, every other one is held to the kernel's
# lint set. rustfmt formats with the kernel's edition 2021 style, which
# rustfmt keeps stable across versions.
{
  lib,
  toolchain,
  kernel,
  moduleDirs,
  xtask,
  clippy,
  rustfmt,
}: let
  sourceOf = import ./module-source.nix {inherit lib;};
  copyOne = dir: let
    name = baseNameOf dir;
  in ''
    cp --recursive --no-preserve=mode ${sourceOf dir} ${name}
    srcArgs+=" --src $PWD/${name}"
  '';
in
  toolchain.stdenv.mkDerivation {
    pname = "rust-kbd-lab-module-lint";
    inherit (kernel) version;

    # No `src`: kbuild reads $(src) as the module's directory (./module.nix).
    dontUnpack = true;

    nativeBuildInputs = toolchain.packages ++ [xtask clippy rustfmt];
    env = toolchain.kbuildEnv;
    hardeningDisable = ["all"];

    buildPhase = ''
      runHook preBuild
      ${import ./newer-lints.nix}
      allowArgs=""
      for lint in $newerLints; do allowArgs+=" --allow $lint"; done
      srcArgs=""
      ${lib.concatMapStrings copyOne moduleDirs}
      xtask lint \
        --kdir ${kernel.dev}/build \
        $srcArgs \
        --clippy-driver ${lib.getExe' clippy "clippy-driver"} \
        --rustfmt ${lib.getExe' rustfmt "rustfmt"} \
        $allowArgs \
        ${toolchain.xtaskArgs} \
        --jobs "$NIX_BUILD_CORES"
      runHook postBuild
    '';

    # The report is the build log; the output only marks success and keeps
    # no kernel tree or toolchain alive.
    installPhase = ''
      runHook preInstall
      touch "$out"
      runHook postInstall
    '';
    allowedReferences = [];
  }
