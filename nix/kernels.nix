# kernel/kernels.toml, the list the host build tool reads too
# (xtask/src/plan.rs): its kernels, with each entry's fragments as paths of
# the checkout, its module directories and its compile-fail directories.
# For each kernel the flake builds the kernel, every module directory
# against it and an initramfs holding those modules (./default.nix).
{}: let
  list = builtins.fromTOML (builtins.readFile ../kernel/kernels.toml);
in {
  kernels =
    map (kernel: {
      inherit (kernel) name description;
      fragments = map (fragment: ../kernel + "/${fragment}") kernel.fragments;
    })
    list.kernel;
  moduleDirs = map (module: ../. + "/${module.dir}") list.module;
  # The compile-fail directories: each must fail to build with exactly its
  # error codes (./compile-fail.nix).
  compileFail =
    map (entry: {
      inherit (entry) errors;
      name = baseNameOf entry.dir;
      dir = ../. + "/${entry.dir}";
    })
    (list.compile_fail or []);
}
