# The driver: `xtask module` against the build tree (dev output) of one of
# the lab's kernels, with the same toolchain as that kernel. $out holds
# rust_keyboard.ko only; the object tree stays in the build directory.
{
  lib,
  toolchain,
  kernel,
  xtask,
}: let
  # The Kbuild file and the Rust sources; not an editor's rust-project.json.
  source = lib.fileset.toSource {
    root = ../module;
    fileset = lib.fileset.unions [
      ../module/Kbuild
      (lib.fileset.fileFilter (file: file.hasExt "rs") ../module)
    ];
  };
in
  toolchain.stdenv.mkDerivation {
    pname = "rust-keyboard-module-${kernel.kernelName}";
    inherit (kernel) version;

    # No `src`: stdenv would export it, and kbuild reads $(src) as the
    # directory of the module being built (nixpkgs unsets it for its
    # kernels, pkgs/os-specific/linux/kernel/build.nix). The sources are
    # copied out of the store instead, so that no store path of them ends
    # up in the module's file names.
    dontUnpack = true;

    nativeBuildInputs = toolchain.packages ++ [xtask];
    env = toolchain.kbuildEnv;
    hardeningDisable = ["all"];
    # A module that names no store path: the artifact directory copies it.
    allowedReferences = [];

    buildPhase = ''
      runHook preBuild
      cp --recursive --no-preserve=mode ${source} module
      xtask module \
        --kdir ${kernel.dev}/build \
        --src "$PWD/module" \
        --out "$NIX_BUILD_TOP/module-out" \
        ${toolchain.xtaskArgs} \
        --jobs "$NIX_BUILD_CORES"
      runHook postBuild
    '';

    installPhase = ''
      runHook preInstall
      install -D --mode=0444 --target-directory="$out" "$NIX_BUILD_TOP"/module-out/*.ko
      runHook postInstall
    '';

    # A kernel module: nothing for the generic ELF fixups to do.
    dontFixup = true;

    passthru = {inherit (kernel) kernelName;};
  }
