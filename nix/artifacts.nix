# The artifact directory of the lab's contract, written by `xtask artifacts`,
# the very step (and artifact layout) of the host path's <cache>/artifacts:
# LAB_ARTIFACTS=<this> works for `xtask vm` and the VM tests. The step copies
# every file, so the directory references no store path: a VM or test that
# boots it needs neither a kernel build tree nor the kernel source.
{
  lib,
  stdenvNoCC,
  xtask,
  pins,
  ssdt,
  kernelSets,
}:
stdenvNoCC.mkDerivation {
  name = "rust-kbd-lab-artifacts";

  dontUnpack = true;
  nativeBuildInputs = [xtask];

  buildPhase = ''
    runHook preBuild
    args=()
    ${lib.concatMapStrings (set: ''
      args+=(--kernel ${set.name}=${set.kernel}/bzImage --initramfs ${set.name}=${set.initramfs}/initramfs.cpio)
      for ko in ${set.module}/*.ko; do
        args+=(--module ${set.name}="$ko")
      done
    '') (lib.attrValues kernelSets)}
    xtask artifacts \
      --out "$out" \
      --acpi ${ssdt} \
      --kernel-version ${lib.escapeShellArg pins.kernel.version} \
      "''${args[@]}"
    runHook postBuild
  '';

  dontInstall = true;
  allowedReferences = [];
}
