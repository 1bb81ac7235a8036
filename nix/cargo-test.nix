# The unit tests of the workspace as .ci/run runs them on the host, but
# without `vm-tests` (./vm-tests.nix boots the VMs) and with `--bins` for
# xtask (its integration tests configure the host path's kernel source).
{
  craneLib,
  workspace,
  acpica-tools,
  llvmPackages,
}:
craneLib.cargoTest (workspace.commonArgs
  // {
    inherit (workspace) cargoArtifacts;
    cargoTestExtraArgs = "--workspace --exclude vm-tests --bins";
    # xtask's SSDT test runs the real iasl, its strip test the kernel
    # toolchain's llvm-objcopy.
    nativeBuildInputs = [acpica-tools llvmPackages.llvm];
  })
