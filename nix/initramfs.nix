# An initramfs: `xtask initramfs` packs nixpkgs' static busybox (the host
# path uses Debian's busybox-static), the lab's /init and the module (built
# for the lab's kernel or for the KUnit one) into $out/initramfs.cpio.gz.
{
  lib,
  stdenvNoCC,
  pkgsStatic,
  xtask,
  module,
}:
stdenvNoCC.mkDerivation {
  pname = "rust-kbd-lab-initramfs";
  inherit (module) version;

  dontUnpack = true;
  nativeBuildInputs = [xtask];

  buildPhase = ''
    runHook preBuild
    xtask initramfs \
      --busybox ${lib.getExe' pkgsStatic.busybox "busybox"} \
      --module ${module}/rust_keyboard.ko \
      --init ${../initramfs/init} \
      --out "$out/initramfs.cpio.gz"
    runHook postBuild
  '';

  dontInstall = true;
}
