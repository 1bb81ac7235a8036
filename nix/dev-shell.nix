# `nix develop`: the kernel toolchain of the flake (rustc and its library
# sources, bindgen, clang/lld/llvm with the kernel's make settings, the build
# dependencies), QEMU, iasl, cargo and friends for the workspace, and
# module/rust-project.json for rust-analyzer, generated on entry from the
# flake's kernel build tree (which the shell builds first if needed).
{
  mkShell,
  toolchain,
  kernel,
  rustAnalyzerProject,
  acpica-tools,
  cargo,
  cargo-nextest,
  clippy,
  qemu_kvm,
  rust-analyzer,
  rustfmt,
}:
(mkShell.override {inherit (toolchain) stdenv;}) {
  packages =
    toolchain.packages
    ++ [
      rustAnalyzerProject
      acpica-tools
      cargo
      cargo-nextest
      clippy
      qemu_kvm
      rust-analyzer
      rustfmt
    ];

  env =
    toolchain.env
    // {
      RUST_LIB_SRC = "${toolchain.rustLibSrc}";
      # rust-analyzer's standard library sources for the Cargo workspace.
      RUST_SRC_PATH = "${toolchain.rustLibSrc}";
      # KDIR for the module: `make -C "$LAB_KDIR" M="$PWD/module" LLVM=1` or
      # `cargo xtask module --kdir "$LAB_KDIR" --src module --out <dir>`.
      LAB_KDIR = "${kernel}/build";
    };
  hardeningDisable = ["all"];

  shellHook = ''
    if [ -f module/Kbuild ] && ! grep -qsF ${kernel} module/rust-project.json; then
      rust-kbd-lab-rust-analyzer-project module ||
        echo "warning: module/rust-project.json was not generated" >&2
    fi
    echo "rust-kbd-lab dev shell: kernel build tree in \$LAB_KDIR ($LAB_KDIR)"
    echo "  make for the kernel gets CC=<unwrapped clang> from \$MAKEFLAGS (see nix/toolchain.nix)"
  '';
}
