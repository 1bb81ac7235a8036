# The Rust workspace's own checks, as .ci/run runs them on the host: rustfmt,
# clippy with warnings denied, and the unit tests of xtask (`--bins`: its
# integration test configures the host path's kernel source; vm-tests boot
# VMs: ./vm-tests.nix).
{
  craneLib,
  workspace,
  acpica-tools,
}: let
  inherit (workspace) commonArgs cargoArtifacts;
in {
  fmt = craneLib.cargoFmt (commonArgs
    // {
      cargoExtraArgs = "--all";
    });

  clippy = craneLib.cargoClippy (commonArgs
    // {
      inherit cargoArtifacts;
      cargoClippyExtraArgs = "--workspace --all-targets -- --deny warnings";
    });

  test = craneLib.cargoTest (commonArgs
    // {
      inherit cargoArtifacts;
      cargoTestExtraArgs = "--workspace --exclude vm-tests --bins";
      # xtask's SSDT test runs the real iasl.
      nativeBuildInputs = [acpica-tools];
    });
}
