# The pins of pins.toml, the lab's single source of versions and hashes (the
# host build tool reads the same file). Nothing here repeats a version.
{lib}: let
  pins = builtins.fromTOML (builtins.readFile ../pins.toml);
in {
  # pins.toml lists acceptable kernel sources in order of preference; the
  # flake takes the first (a fixed-output fetch has one hash).
  kernel = {
    inherit (pins.kernel) package tarball;
    inherit (lib.head pins.kernel.pins) version filename sha256;
  };
  # What the kernel records of its build (the host path uses the same).
  inherit (pins) build;
}
