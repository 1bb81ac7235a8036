# The artifact directory of the lab's contract, made of links into the
# packages: LAB_ARTIFACTS=<this> works for `xtask vm` and the VM tests just
# like the host path's <cache>/artifacts.
{
  linkFarm,
  kernel,
  module,
  ssdt,
  initramfs,
  kunitKernel,
  kunitInitramfs,
}:
linkFarm "rust-kbd-lab-artifacts" [
  {
    name = "bzImage";
    path = "${kernel}/bzImage";
  }
  {
    name = "rust_keyboard.ko";
    path = "${module}/rust_keyboard.ko";
  }
  {
    name = "initramfs.cpio.gz";
    path = "${initramfs}/initramfs.cpio.gz";
  }
  {
    name = "acpi";
    path = ssdt;
  }
  # The KUnit kernel (lab.config + kunit.config) and its initramfs, whose
  # module is built against that kernel.
  {
    name = "kunit/bzImage";
    path = "${kunitKernel}/bzImage";
  }
  {
    name = "kunit/initramfs.cpio.gz";
    path = "${kunitInitramfs}/initramfs.cpio.gz";
  }
]
