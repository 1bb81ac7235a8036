# A check that runs one `xtask` command, the host path's own step, against
# the build tree (dev output) of one of the lab's kernels with the toolchain
# that built it: module-lint, ra-check and compile-fail-<name> are each one
# call. Every directory of `dirs` is copied out of the store first and
# passed as `--src $PWD/<its name>` (no `src` attribute: kbuild reads $(src)
# as the module's directory, ./module.nix). The verdict is the build log;
# the output only marks success and keeps nothing alive.
{
  lib,
  toolchain,
  xtask,
}: {
  # pname: rust-kbd-lab-<name>.
  name,
  kernel,
  dirs,
  # The xtask command and its own arguments, e.g. "lint --allow X".
  command,
  # Shell run before it (it may set variables the command uses).
  preCommand ? "",
  nativeBuildInputs ? [],
}: let
  sourceOf = import ./module-source.nix {inherit lib;};
  copyOne = dir: let
    dirName = baseNameOf dir;
  in ''
    cp --recursive --no-preserve=mode ${sourceOf dir} ${dirName}
    srcArgs+=" --src $PWD/${dirName}"
  '';
in
  toolchain.stdenv.mkDerivation {
    pname = "rust-kbd-lab-${name}";
    inherit (kernel) version;

    dontUnpack = true;

    nativeBuildInputs = toolchain.packages ++ [xtask] ++ nativeBuildInputs;
    env = toolchain.kbuildEnv;
    hardeningDisable = ["all"];

    buildPhase = ''
      runHook preBuild
      ${preCommand}
      srcArgs=""
      ${lib.concatMapStrings copyOne dirs}
      xtask ${command} \
        --kdir ${kernel.dev}/build \
        $srcArgs \
        ${toolchain.xtaskArgs} \
        --jobs "$NIX_BUILD_CORES"
      runHook postBuild
    '';

    installPhase = ''
      runHook preInstall
      touch "$out"
      runHook postInstall
    '';
    allowedReferences = [];
  }
