# The kernels of kernel/kernels.toml, the list the host build tool reads too
# (xtask/src/plan.rs), with each entry's fragments as paths of the checkout.
# For each one the flake builds a kernel, the module against it and an
# initramfs holding that module (./default.nix).
{}:
map (kernel: {
  inherit (kernel) name description;
  fragments = map (fragment: ../kernel + "/${fragment}") kernel.fragments;
})
(builtins.fromTOML (builtins.readFile ../kernel/kernels.toml)).kernel
