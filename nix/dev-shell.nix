# `nix develop`: the kernel toolchain of the flake (rustc and its library
# sources, bindgen, clang/lld/llvm, the build dependencies), QEMU, gdb, iasl,
# cargo and friends for the workspace, and module/rust-project.json for
# rust-analyzer, generated on entry from the build tree (dev output) of the
# flake's lab kernel, which the shell builds first if needed. The kernel's
# make variables (toolchain.nix) are not in the shell's environment: `kmake`
# and the rust-analyzer script set them for the kernel's make only.
{
  mkShell,
  toolchain,
  kernel,
  kmake,
  rustAnalyzerProject,
  acpica-tools,
  cargo,
  cargo-nextest,
  clippy,
  gdb,
  qemu_kvm,
  rust-analyzer,
  rustfmt,
}:
(mkShell.override {inherit (toolchain) stdenv;}) {
  packages =
    toolchain.packages
    ++ [
      kmake
      rustAnalyzerProject
      acpica-tools
      cargo
      cargo-nextest
      clippy
      gdb
      qemu_kvm
      rust-analyzer
      rustfmt
    ];

  env = {
    RUST_LIB_SRC = "${toolchain.rustLibSrc}";
    # rust-analyzer's standard library sources for the Cargo workspace.
    RUST_SRC_PATH = "${toolchain.rustLibSrc}";
    # KDIR for the module: `kmake -C "$LAB_KDIR" M="$PWD/module"`.
    LAB_KDIR = "${kernel.dev}/build";
  };
  hardeningDisable = ["all"];

  shellHook = ''
    if [ -f module/Kbuild ] && ! grep -qsF ${kernel.dev} module/rust-project.json; then
      rust-kbd-lab-rust-analyzer-project module ||
        echo "warning: module/rust-project.json was not generated" >&2
    fi
    echo "rust-kbd-lab dev shell: kernel build tree in \$LAB_KDIR ($LAB_KDIR)"
    echo "  kmake -C \"\$LAB_KDIR\" M=\"\$PWD/module\"   builds the module with the kernel's toolchain"
  '';
}
