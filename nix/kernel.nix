# A kernel of kernel/kernels.toml: `xtask kernel`, the host path's own step
# (tinyconfig + the entry's fragments in order, a loud failure if Kconfig
# drops any of their options, then bzImage and modules).
#
# Two outputs, as nixpkgs' kernels have (pkgs/os-specific/linux/kernel/build.nix):
# - out: bzImage only, all that booting needs. It may reference no store
#   path at all (checked when Nix builds it), so the VM, the artifacts and
#   the VM tests never pull in a build tree, the source or the toolchain.
# - dev: build/, the O= tree that out-of-tree modules and rust-analyzer use
#   as KDIR, and source/, the kernel source with the lab's patches applied.
#   The step builds in place there, so the tree's own paths (its Makefile
#   names the source and itself) stay valid; it references the tools kbuild
#   recorded. `patch` comes with stdenv (pkgs/stdenv/generic/common-path.nix).
{
  lib,
  toolchain,
  kernelSource,
  pins,
  xtask,
  name,
  description,
  fragments,
}: let
  # The lab's patch series, kernel/patches/*.patch in name order, as the host
  # path finds it (xtask/src/steps/patches.rs): the step applies it onto a
  # copy of the source, $dev/source, which the build tree refers to.
  patchDir = ../kernel/patches;
  patches = map (name: patchDir + "/${name}") (lib.sort lib.lessThan (lib.attrNames
    (lib.filterAttrs (name: type: type == "regular" && lib.hasSuffix ".patch" name)
      (builtins.readDir patchDir))));
in
  toolchain.stdenv.mkDerivation {
    pname = "rust-kbd-lab-kernel-${name}";
    inherit (kernelSource) version;

    outputs = ["out" "dev"];
    # Per-output reference checks need structured attributes (as build.nix).
    __structuredAttrs = true;
    outputChecks.out.allowedReferences = [];

    dontUnpack = true;
    nativeBuildInputs = toolchain.packages ++ [xtask];
    # The kernel's make variables (toolchain.nix), for this build only.
    env = toolchain.kbuildEnv;
    # The wrapped clang only compiles host programs here; keep its hardening
    # flags off them as nixpkgs' kernels do.
    hardeningDisable = ["all"];

    buildPhase = ''
      runHook preBuild
      # The build time, user and host the kernel records come from pins.toml
      # [build], as on the host path (scripts/mkcompile_h, init/Makefile).
      xtask kernel \
        --src ${kernelSource} \
        --out "$out" \
        --build-dir "$dev/build" \
        --log-dir "$NIX_BUILD_TOP/logs" \
        ${lib.concatMapStringsSep " " (patch: "--patch ${patch}") patches} \
        ${lib.concatMapStringsSep " " (fragment: "--fragment ${fragment}") fragments} \
        ${toolchain.xtaskArgs} \
        --build-timestamp ${lib.escapeShellArg pins.build.timestamp} \
        --build-user ${lib.escapeShellArg pins.build.user} \
        --build-host ${lib.escapeShellArg pins.build.host} \
        --jobs "$NIX_BUILD_CORES"
      runHook postBuild
    '';

    dontInstall = true;
    # The build tree is kept exactly as make left it (no stripping of objects).
    dontFixup = true;

    # Its name in kernels.toml, for the module and initramfs built against it.
    passthru.kernelName = name;
    meta.description = "Linux ${kernelSource.version}: ${description}";
  }
