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
      newerLints=$(clippy-driver -W help | awk '
        NR == FNR { if ($1 !~ /^#/) host[$1] = $2; next }
        /^ +[a-z0-9_:-]+ +(allow|warn|deny|forbid) / {
          name = $1; gsub("-", "_", name)
          if ($2 != "allow" && (!(name in host) || host[name] == "allow")) print name
        }' ${./host-lints.txt} -)
      echo "clippy: lints this toolchain warns about and the host's does not (allowed):" $newerLints
      allowNewerLints=""
      for lint in $newerLints; do allowNewerLints+=" -A $lint"; done
    '';
    cargoClippyExtraArgs = "--workspace --all-targets -- --deny warnings $allowNewerLints";
  })
