# Fails when a Nix file of the repository is not formatted by alejandra, and
# checks the flake's formatter as `nix fmt` runs it: with no arguments (and
# no standard input), on a copy of the tree that holds one unformatted file.
# The formatter must format that file, and only that file.
{
  lib,
  runCommand,
  formatter,
}: let
  nixFiles = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.fileFilter (file: file.hasExt "nix") ../.;
  };
in
  runCommand "rust-kbd-lab-nix-format" {nativeBuildInputs = [formatter];} ''
    cp --recursive --no-preserve=mode ${nixFiles} tree
    printf '{a=1;}\n' > tree/unformatted.nix
    (cd tree && PRJ_ROOT="$PWD" rust-kbd-lab-fmt </dev/null)
    if [ "$(cat tree/unformatted.nix)" = '{a=1;}' ]; then
      echo "nix fmt with no arguments did not format the tree" >&2
      exit 1
    fi
    rm tree/unformatted.nix
    diff --recursive ${nixFiles} tree || {
      echo "these Nix files are not formatted: run nix fmt" >&2
      exit 1
    }
    touch "$out"
  ''
