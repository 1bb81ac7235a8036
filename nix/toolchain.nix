# The kernel toolchain of the Nix path, shared by the kernel, the module, the
# rust-analyzer project and the dev shell, so that all of them use the very
# same compilers (a module must be built by the rustc that built its kernel).
#
# Rust: nixpkgs' rustc-unwrapped with the library sources of that same
# compiler (rustPlatform.rustLibSrc) as RUST_LIB_SRC, and nixpkgs'
# rust-bindgen-unwrapped, as nixpkgs builds its Rust kernels
# (pkgs/os-specific/linux/kernel/build.nix). This rustc is whatever the pinned
# nixpkgs ships, not the 1.95.0 of rust-toolchain.toml: that is fine here
# because compiler and library sources come from the same nixpkgs. The host
# path pins 1.95.0 with Debian's rust-src instead.
#
# C: the kernel runs with LLVM=1 (as `xtask kernel --llvm 1` says), so make
# takes clang, ld.lld and the llvm-* tools from PATH, like on the host. Two
# things differ from a plain PATH lookup, both as in nixpkgs' kernel builds
# (pkgs/os-specific/linux/kernel/common-flags.nix):
# - CC is the unwrapped clang. nixpkgs' cc-wrapper adds -nostdlibinc, which
#   is unused next to the kernel's -nostdinc, and the kernel builds with
#   -Werror=unused-command-line-argument (NixOS/nixpkgs#368850). Make reads
#   variable definitions in MAKEFLAGS like command-line ones, so CC=... there
#   overrides the CC that LLVM=1 picks; HOSTCC stays the wrapped clang of
#   llvmPackages.stdenv, which knows where libc is. That MAKEFLAGS is meant
#   for the kernel's make only (an unwrapped clang cannot build anything
#   that needs libc): kbuildEnv is set in the derivations and scripts that
#   run nothing but the kernel's make, never in the dev shell (./kmake.nix).
# - ld.lld on PATH is the unwrapped lld (its wrapper breaks the kernel link,
#   NixOS/nixpkgs#321667). LLVM=1 also links host programs with -fuse-ld=lld;
#   the unwrapped lld would leave out the store RPATHs (objtool needs
#   libelf), so HOSTLDFLAGS points the host links at the wrapped linker
#   instead (the kernel skips its -fuse-ld=lld when --ld-path is given).
{
  lib,
  llvmPackages,
  rustc-unwrapped,
  rust-bindgen-unwrapped,
  rustPlatform,
  bc,
  bison,
  elfutils,
  flex,
  lz4,
  openssl,
  perl,
  python3Minimal,
  zlib,
}: let
  bindgen = lib.getExe' rust-bindgen-unwrapped "bindgen";
  kbuildEnv = {
    MAKEFLAGS = "CC=${lib.getExe' llvmPackages.clang-unwrapped "clang"}";
    HOSTLDFLAGS = "--ld-path=${lib.getExe' llvmPackages.stdenv.cc.bintools "ld"}";
  };
in
  assert lib.assertMsg (lib.versionAtLeast llvmPackages.clang-unwrapped.version "17")
  "the kernel's Rust support needs clang/libclang >= 17, nixpkgs' llvmPackages has ${llvmPackages.clang-unwrapped.version}"; {
    inherit (llvmPackages) stdenv;

    # RUST_LIB_SRC: the `library` directory of this rustc's own sources.
    rustLibSrc = rustPlatform.rustLibSrc;
    inherit bindgen;
    # The llvm-objcopy of LLVM=1, which also strips the modules' debug
    # sections for the initramfs (`xtask initramfs --objcopy`).
    objcopy = lib.getExe' llvmPackages.llvm "llvm-objcopy";
    # The toolchain options of the xtask steps that run the kernel's make
    # (`xtask kernel`, `xtask module`, `xtask rust-analyzer`).
    xtaskArgs = "--llvm 1 --rust-lib-src ${rustPlatform.rustLibSrc} --bindgen ${bindgen}";

    packages = [
      llvmPackages.lld
      llvmPackages.llvm
      rustc-unwrapped
      rust-bindgen-unwrapped
      # The kernel's build dependencies (Debian: bc bison flex libelf-dev
      # libssl-dev python3, perl from the base system; lz4 compresses
      # bzImage, CONFIG_KERNEL_LZ4).
      bc
      bison
      elfutils
      flex
      lz4
      openssl
      perl
      python3Minimal
      zlib
    ];

    # The environment of the kernel's make (see above), and the shell lines
    # that export it in a script that runs nothing else.
    inherit kbuildEnv;
    kbuildExports = lib.concatStringsSep "\n" (lib.mapAttrsToList (name: value: "export ${name}=${lib.escapeShellArg value}") kbuildEnv);
  }
