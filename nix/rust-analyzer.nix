# `rust-kbd-lab-rust-analyzer-project [MODULE_DIR]` writes MODULE_DIR/rust-project.json
# (default: ./module) for rust-analyzer: the kernel's own `make rust-analyzer`
# (scripts/generate_rust_analyzer.py), run for the external module against
# this flake's kernel build tree. That tree keeps the complete source and
# every generated file (bindings, rustc_cfg, the proc-macro libraries), which
# nixpkgs' trimmed kernel.dev does not (NixOS/nixpkgs#386164). The file points
# at the module's sources in the checkout and at the kernel crates (kernel,
# bindings, macros, pin_init...) in the store. The dev shell runs this on entry.
{
  lib,
  writeShellApplication,
  coreutils,
  gnumake,
  toolchain,
  kernel,
}:
writeShellApplication {
  name = "rust-kbd-lab-rust-analyzer-project";
  runtimeInputs = toolchain.packages ++ [toolchain.stdenv.cc coreutils gnumake];
  text = ''
    ${lib.concatStringsSep "\n" (lib.mapAttrsToList (name: value: "export ${name}=${lib.escapeShellArg value}") toolchain.env)}
    module_dir=$(realpath "''${1:-module}")
    if [ ! -f "$module_dir/Kbuild" ]; then
      echo "error: $module_dir has no Kbuild: give the module's directory (default: ./module)" >&2
      exit 1
    fi
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    # With MO= the kernel's make writes nothing into the module directory;
    # rust-project.json appears in $work.
    if ! make -s -C ${kernel}/build M="$module_dir" MO="$work" LLVM=1 \
      RUST_LIB_SRC=${toolchain.rustLibSrc} BINDGEN=${toolchain.bindgen} \
      rust-analyzer >"$work/make.log" 2>&1; then
      cat "$work/make.log" >&2
      echo "error: make rust-analyzer failed against ${kernel}/build" >&2
      exit 1
    fi
    install --mode=0644 "$work/rust-project.json" "$module_dir/rust-project.json"
    echo "wrote $module_dir/rust-project.json (kernel tree ${kernel}/build)"
  '';
}
