# The VM tests as checks: the vm-tests crate's tests, run by nextest with the
# CI profile as `cargo xtask test` runs them, booting the flake's artifacts in
# the build sandbox. The checks do not ask for the "kvm" system feature on
# purpose, so they build on builders without KVM: the harness picks KVM only
# when the sandbox shows hardware KVM (/sys/module/kvm_intel or kvm_amd and a
# usable /dev/kvm, which a plain sandbox does not have; the CI workflow adds
# both where the runner has them) and TCG otherwise. Serial logs of every
# boot end up in $out/logs.
#
# Two checks (default.nix): every test but the gdb one, on the kernels' out
# outputs (bzImage) only; and, with gdbTest, the gdb test alone
# (vm-tests/tests/debug_tools.rs), which needs gdb and the debug kernel's
# build tree (vmlinux, the kernel's gdb scripts: its dev output), named to
# the harness by LAB_KERNEL_TREE_DEBUG (vm-tests/src/artifacts.rs).
{
  lib,
  craneLib,
  workspace,
  qemu_kvm,
  gdb,
  artifacts,
  kernelSets,
  gdbTest,
}: let
  gdbFilter = "test(=gdb_breaks_in_the_rust_handler_on_a_key)";
in
  craneLib.cargoNextest (workspace.commonArgs
    // {
      inherit (workspace) cargoArtifacts;
      pname = "rust-kbd-lab-vm-tests" + lib.optionalString gdbTest "-gdb";
      cargoExtraArgs = "--locked";
      cargoNextestExtraArgs = "--package vm-tests --profile ci -E '${lib.optionalString (!gdbTest) "not "}${gdbFilter}'";
      nativeBuildInputs = [qemu_kvm] ++ lib.optional gdbTest gdb;
      env =
        {LAB_ARTIFACTS = "${artifacts}";}
        // lib.optionalAttrs gdbTest {LAB_KERNEL_TREE_DEBUG = "${kernelSets.debug.kernel.dev}/build";};
      preCheck = ''
        export LAB_LOG_DIR="$out/logs" LAB_CACHE_DIR="$NIX_BUILD_TOP/lab-cache"
        mkdir -p "$LAB_LOG_DIR"
      '';
      doInstallCargoArtifacts = false;
    })
