# The driver: `xtask module` against a kernel's build tree (the lab's kernel
# or the KUnit one), with the same toolchain as the kernel. $out holds
# rust_keyboard.ko only; the object tree stays in the build directory.
{
  lib,
  toolchain,
  kernel,
  xtask,
}:
toolchain.stdenv.mkDerivation {
  pname = "rust-keyboard-module";
  inherit (kernel) version;

  # The Kbuild file and the Rust sources; not an editor's rust-project.json.
  src = lib.fileset.toSource {
    root = ../module;
    fileset = lib.fileset.unions [
      ../module/Kbuild
      (lib.fileset.fileFilter (file: file.hasExt "rs") ../module)
    ];
  };

  nativeBuildInputs = toolchain.packages ++ [xtask];
  inherit (toolchain) env;
  hardeningDisable = ["all"];

  buildPhase = ''
    runHook preBuild
    xtask module \
      --kdir ${kernel}/build \
      --src "$PWD" \
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
}
