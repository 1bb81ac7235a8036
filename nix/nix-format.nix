# Fails when a Nix file of the repository is not formatted by alejandra (the
# flake's formatter: `nix fmt` fixes it).
{
  lib,
  runCommand,
  alejandra,
}: let
  nixFiles = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.fileFilter (file: file.hasExt "nix") ../.;
  };
in
  runCommand "rust-kbd-lab-nix-format" {nativeBuildInputs = [alejandra];} ''
    alejandra --check ${nixFiles}
    touch "$out"
  ''
