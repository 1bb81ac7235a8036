# An initramfs: `xtask initramfs` packs nixpkgs' static busybox (the host
# path uses Debian's busybox-static), the lab's /init and the modules (every
# .ko built against one of the lab's kernels, its debug sections stripped by
# the kernels' toolchain's llvm-objcopy) into $out/initramfs.cpio.
{
  lib,
  stdenvNoCC,
  pkgsStatic,
  removeReferencesTo,
  toolchain,
  xtask,
  module,
}:
stdenvNoCC.mkDerivation {
  pname = "rust-kbd-lab-initramfs-${module.kernelName}";
  inherit (module) version;

  dontUnpack = true;
  nativeBuildInputs = [xtask removeReferencesTo];

  buildPhase = ''
    runHook preBuild
    # nixpkgs' busybox names its own store path (udhcpc's default script,
    # CONFIG_UDHCPC_DEFAULT_SCRIPT in pkgs/os-specific/linux/busybox); the
    # archive is not compressed, so the copy packed drops it. The guest
    # never runs udhcpc.
    cp ${lib.getExe' pkgsStatic.busybox "busybox"} busybox
    chmod u+w busybox
    remove-references-to -t ${pkgsStatic.busybox} busybox
    modules=()
    for ko in ${module}/*.ko; do
      modules+=(--module "$ko")
    done
    xtask initramfs \
      --busybox ./busybox \
      "''${modules[@]}" \
      --init ${../initramfs/init} \
      --objcopy ${toolchain.objcopy} \
      --out "$out/initramfs.cpio"
    runHook postBuild
  '';

  dontInstall = true;
  # The copies inside name no store path (the modules' own check, and
  # busybox's reference removed above).
  allowedReferences = [];
}
