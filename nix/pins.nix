# The pins of pins.toml, the lab's single source of versions and hashes (the
# host build tool reads the same file). Nothing here repeats a version.
{lib}: let
  pins = builtins.fromTOML (builtins.readFile ../pins.toml);
in {
  # pins.toml lists acceptable kernel sources in order of preference; the
  # flake takes the first. The fetcher below also asks snapshot.debian.org,
  # which keeps every file the archive ever had, so the first pin stays
  # fetchable after Debian drops it.
  kernel = {
    inherit (pins.kernel) package tarball;
    inherit (lib.head pins.kernel.pins) version filename sha256 snapshot;
  };
  inherit (pins.archive) snapshot_url;
}
