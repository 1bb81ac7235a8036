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
    xtask artifacts \
      --out "$out" \
      --acpi ${ssdt} \
      --kernel-version ${lib.escapeShellArg pins.kernel.version} \
      ${lib.concatMapStringsSep " \\\n  " (set: "--kernel ${set.name}=${set.kernel}/bzImage --module ${set.name}=${set.module}/rust_keyboard.ko --initramfs ${set.name}=${set.initramfs}/initramfs.cpio.gz") (lib.attrValues kernelSets)}
    runHook postBuild
  '';

  dontInstall = true;
  allowedReferences = [];
}
