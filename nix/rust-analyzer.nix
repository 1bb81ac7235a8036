# `rust-kbd-lab-rust-analyzer-project [MODULE_DIR]` writes MODULE_DIR/rust-project.json
# (default: ./module) for rust-analyzer with `xtask rust-analyzer`, the host
# path's own step: the kernel's `make rust-analyzer`
# (scripts/generate_rust_analyzer.py) for the external module against the
# build tree of the flake's lab kernel (its dev output). That tree keeps the
# complete source and every generated file (bindings, rustc_cfg, the
# proc-macro libraries), which nixpkgs' trimmed kernel.dev does not
# (NixOS/nixpkgs#386164). The file points at the module's sources in the
# checkout and at the kernel crates (kernel, bindings, macros, pin_init...)
# in the store. The dev shell runs this on entry; the kernel's make
# variables are set for this script only.
{
  writeShellApplication,
  coreutils,
  gnumake,
  toolchain,
  kernel,
  xtask,
}:
writeShellApplication {
  name = "rust-kbd-lab-rust-analyzer-project";
  runtimeInputs = toolchain.packages ++ [toolchain.stdenv.cc coreutils gnumake xtask];
  text = ''
    ${toolchain.kbuildExports}
    xtask rust-analyzer \
      --kdir ${kernel.dev}/build \
      --src "''${1:-module}" \
      ${toolchain.xtaskArgs}
  '';
}
