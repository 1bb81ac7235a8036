# clippy on the workspace with warnings denied, as .ci/run runs it on the
# host, judged by the host's lint set. nixpkgs' rustc and clippy are newer
# than the host's pinned toolchain (rust-toolchain.toml) and know lints the
# host's do not, or warn by default where the host's allow. ./host-lints.txt
# is the host toolchain's own table of lints and default levels (`clippy-driver
# -W help`, kept current by `cargo xtask nix-check`); every lint this clippy
# warns or denies by default that the host's allows or lacks is allowed here,
# and every other one is held to the host's expectation.
{
  craneLib,
  workspace,
}:
craneLib.cargoClippy (workspace.commonArgs
  // {
    inherit (workspace) cargoArtifacts;
    preBuild = ''
      ${import ./newer-lints.nix}
      echo "clippy: lints this toolchain warns about and the host's does not (allowed):" $newerLints
      allowNewerLints=""
      for lint in $newerLints; do allowNewerLints+=" -A $lint"; done
    '';
    cargoClippyExtraArgs = "--workspace --all-targets -- --deny warnings $allowNewerLints";
  })
