# rustfmt on the workspace, as .ci/run runs it on the host. nixpkgs' rustfmt
# may be newer than the host's, but both format with the style edition of
# the workspace's edition (2024), which rustfmt keeps stable across versions.
{
  craneLib,
  workspace,
}:
craneLib.cargoFmt (workspace.commonArgs
  // {
    cargoExtraArgs = "--all";
  })
