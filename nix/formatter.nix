# `nix fmt`: alejandra. Since Nix 2.25, `nix fmt` with no arguments passes
# none to the formatter (and sets PRJ_ROOT to the flake's directory), and
# alejandra with no path reads standard input: this wrapper formats the
# flake's tree instead. Given arguments, it is plain alejandra.
{
  writeShellApplication,
  alejandra,
}:
writeShellApplication {
  name = "rust-kbd-lab-fmt";
  runtimeInputs = [alejandra];
  text = ''
    if [ "$#" -eq 0 ]; then
      set -- "''${PRJ_ROOT:-.}"
    fi
    exec alejandra "$@"
  '';
}
