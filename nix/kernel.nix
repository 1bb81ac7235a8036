# A kernel: `xtask kernel`, the host path's own step (tinyconfig + the given
# fragments in order, a loud failure if Kconfig drops any of their options,
# then bzImage and modules). $out/bzImage is the image and $out/build the O=
# tree that out-of-tree modules and rust-analyzer use as KDIR; the step
# builds in place, so the tree's own paths (its Makefile names it) stay
# valid. Called once for the lab's kernel and once, with kunit.config on
# top, for the KUnit kernel.
{
  lib,
  toolchain,
  kernelSource,
  xtask,
  pname,
  fragments,
}:
toolchain.stdenv.mkDerivation {
  inherit pname;
  inherit (kernelSource) version;

  dontUnpack = true;
  nativeBuildInputs = toolchain.packages ++ [xtask];
  inherit (toolchain) env;
  # The wrapped clang only compiles host programs here; keep its hardening
  # flags off them as nixpkgs' kernels do.
  hardeningDisable = ["all"];

  buildPhase = ''
    runHook preBuild
    # Reproducible version string (scripts/mkcompile_h, init/Makefile).
    KBUILD_BUILD_TIMESTAMP="$(date --utc --date="@$SOURCE_DATE_EPOCH")"
    export KBUILD_BUILD_TIMESTAMP KBUILD_BUILD_USER=nixbld KBUILD_BUILD_HOST=nix
    xtask kernel \
      --src ${kernelSource} \
      --out "$out" \
      ${lib.concatMapStringsSep " " (fragment: "--fragment ${fragment}") fragments} \
      ${toolchain.xtaskArgs} \
      --jobs "$NIX_BUILD_CORES"
    runHook postBuild
  '';

  dontInstall = true;
  # The build tree is kept exactly as make left it (no stripping of objects).
  dontFixup = true;
}
