# The lab's host build tool. Every build step of the flake runs one of its
# subcommands (kernel, module, ssdt, initramfs, vm): the Nix path and the
# host path share one implementation.
{
  craneLib,
  workspace,
}:
craneLib.buildPackage (workspace.commonArgs
  // {
    inherit (workspace) cargoArtifacts;
    inherit (craneLib.crateNameFromCargoToml {cargoToml = ../xtask/Cargo.toml;}) pname version;
    src = workspace.xtaskSrc;
    cargoExtraArgs = "--locked --package xtask";
    # The tests read repository files that this source leaves out; they run
    # in the workspace checks.
    doCheck = false;
    meta.mainProgram = "xtask";
  })
