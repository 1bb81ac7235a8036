# The modules: `xtask module` for every module directory of
# kernel/kernels.toml (the driver, the test-only modules) against the build
# tree (dev output) of one of the lab's kernels, with the same toolchain as
# that kernel. $out holds the .ko files only; the object trees stay in the
# build directory.
{
  lib,
  toolchain,
  kernel,
  moduleDirs,
  xtask,
}: let
  sourceOf = import ./module-source.nix {inherit lib;};
  # One build per directory: its own copy and its own output directory.
  buildOne = dir: let
    name = baseNameOf dir;
  in ''
    cp --recursive --no-preserve=mode ${sourceOf dir} ${name}
    xtask module \
      --kdir ${kernel.dev}/build \
      --src "$PWD/${name}" \
      --out "$NIX_BUILD_TOP/module-out/${name}" \
      ${toolchain.xtaskArgs} \
      --jobs "$NIX_BUILD_CORES"
  '';
in
  toolchain.stdenv.mkDerivation {
    pname = "rust-kbd-lab-modules-${kernel.kernelName}";
    inherit (kernel) version;

    # No `src`: stdenv would export it, and kbuild reads $(src) as the
    # directory of the module being built (nixpkgs unsets it for its
    # kernels, pkgs/os-specific/linux/kernel/build.nix). The sources are
    # copied out of the store instead, so that no store path of them ends
    # up in the modules' file names.
    dontUnpack = true;

    nativeBuildInputs = toolchain.packages ++ [xtask];
    env = toolchain.kbuildEnv;
    hardeningDisable = ["all"];
    # Modules that name no store path: the artifact directory copies them.
    allowedReferences = [];

    buildPhase = ''
      runHook preBuild
      ${lib.concatMapStrings buildOne moduleDirs}
      runHook postBuild
    '';

    installPhase = ''
      runHook preInstall
      install -D --mode=0444 --target-directory="$out" "$NIX_BUILD_TOP"/module-out/*/*.ko
      runHook postInstall
    '';

    # Kernel modules: nothing for the generic ELF fixups to do.
    dontFixup = true;

    passthru = {inherit (kernel) kernelName;};
  }
