# An initramfs: `xtask initramfs` packs nixpkgs' static busybox (the host
# path uses Debian's busybox-static), the lab's /init and the modules (every
# .ko built against one of the lab's kernels) into $out/initramfs.cpio.gz.
{
  lib,
  stdenvNoCC,
  pkgsStatic,
  xtask,
  module,
}:
stdenvNoCC.mkDerivation {
  pname = "rust-kbd-lab-initramfs-${module.kernelName}";
  inherit (module) version;

  dontUnpack = true;
  nativeBuildInputs = [xtask];

  buildPhase = ''
    runHook preBuild
    modules=()
    for ko in ${module}/*.ko; do
      modules+=(--module "$ko")
    done
    xtask initramfs \
      --busybox ${lib.getExe' pkgsStatic.busybox "busybox"} \
      "''${modules[@]}" \
      --init ${../initramfs/init} \
      --out "$out/initramfs.cpio.gz"
    runHook postBuild
  '';

  dontInstall = true;
  # A compressed archive: the copies inside name no store path.
  allowedReferences = [];
}
