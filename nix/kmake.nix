# `kmake`: make with the flake's kernel toolchain, for the dev shell:
# `kmake -C "$LAB_KDIR" M="$PWD/module"` builds the module against the
# flake's kernel as `xtask module` does. It sets the kernel's make variables
# (toolchain.nix: CC is an unwrapped clang) for this make only; the shell's
# own `make` stays a plain make for everything else.
{
  writeShellApplication,
  gnumake,
  toolchain,
}:
writeShellApplication {
  name = "kmake";
  runtimeInputs = toolchain.packages ++ [toolchain.stdenv.cc gnumake];
  text = ''
    ${toolchain.kbuildExports}
    exec make LLVM=1 RUST_LIB_SRC=${toolchain.rustLibSrc} BINDGEN=${toolchain.bindgen} "$@"
  '';
}
