# The VM tests as a check: the vm-tests crate's tests, run by nextest with the
# CI profile as `cargo xtask test` runs them, booting the flake's artifacts in
# the build sandbox. The check does not ask for the "kvm" system feature on
# purpose, so it builds on builders without KVM: the harness picks KVM only
# when the sandbox shows hardware KVM (/sys/module/kvm_intel or kvm_amd and a
# usable /dev/kvm, which a plain sandbox does not have; the CI workflow adds
# both where the runner has them) and TCG otherwise. Serial logs of every
# boot end up in $out/logs.
{
  craneLib,
  workspace,
  qemu_kvm,
  artifacts,
}:
craneLib.cargoNextest (workspace.commonArgs
  // {
    inherit (workspace) cargoArtifacts;
    pname = "rust-kbd-lab-vm-tests";
    cargoExtraArgs = "--locked";
    # Not the gdb test (vm-tests/tests/debug_tools.rs): it needs the debug
    # kernel's build tree (vmlinux, the kernel's gdb scripts) and gdb, and
    # the VM tests take the kernels' `out` only. It runs on the host path.
    cargoNextestExtraArgs = "--package vm-tests --profile ci -E 'not test(=gdb_breaks_in_the_rust_handler_on_a_key)'";
    nativeBuildInputs = [qemu_kvm];
    env.LAB_ARTIFACTS = "${artifacts}";
    preCheck = ''
      export LAB_LOG_DIR="$out/logs" LAB_CACHE_DIR="$NIX_BUILD_TOP/lab-cache"
      mkdir -p "$LAB_LOG_DIR"
    '';
    doInstallCargoArtifacts = false;
  })
