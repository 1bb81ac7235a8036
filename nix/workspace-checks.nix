# The Rust workspace's own checks, as .ci/run runs them on the host: rustfmt,
# clippy with warnings denied, and the tests of every crate but vm-tests
# (those boot VMs: ./vm-tests.nix).
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
      cargoTestExtraArgs = "--workspace --exclude vm-tests";
      # xtask's SSDT test runs the real iasl.
      nativeBuildInputs = [acpica-tools];
    });
}
