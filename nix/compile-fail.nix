# One compile-fail directory of kernel/kernels.toml as a check: `xtask
# compile-fail`, the host path's own step, against the build tree (dev
# output) of the lab kernel with the toolchain that built it. It passes
# only if the directory fails to build with exactly the expected rustc
# error codes and builds with FIXED=1 (its correct code).
{
  lib,
  toolchain,
  kernel,
  xtask,
  entry,
}: let
  sourceOf = import ./module-source.nix {inherit lib;};
in
  toolchain.stdenv.mkDerivation {
    pname = "rust-kbd-lab-compile-fail-${entry.name}";
    inherit (kernel) version;

    # No `src`: kbuild reads $(src) as the module's directory (./module.nix).
    dontUnpack = true;

    nativeBuildInputs = toolchain.packages ++ [xtask];
    env = toolchain.kbuildEnv;
    hardeningDisable = ["all"];

    buildPhase = ''
      runHook preBuild
      cp --recursive --no-preserve=mode ${sourceOf entry.dir} ${entry.name}
      xtask compile-fail \
        --kdir ${kernel.dev}/build \
        --src "$PWD/${entry.name}" \
        ${lib.concatMapStringsSep " " (code: "--error ${code}") entry.errors} \
        --out "$NIX_BUILD_TOP/compile-fail" \
        ${toolchain.xtaskArgs} \
        --jobs "$NIX_BUILD_CORES"
      runHook postBuild
    '';

    # The verdict is the build log; the output only marks success.
    installPhase = ''
      runHook preInstall
      touch "$out"
      runHook postInstall
    '';
    allowedReferences = [];
  }
