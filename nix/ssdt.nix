# The ACPI tables: `xtask ssdt` compiles acpi/*.asl and acpi/test/*.asl with
# iasl into $out/<name>.aml (the artifact directory's acpi/).
{
  lib,
  stdenvNoCC,
  acpica-tools,
  xtask,
}:
stdenvNoCC.mkDerivation {
  pname = "rust-kbd-lab-ssdt";
  inherit (xtask) version;

  src = lib.fileset.toSource {
    root = ../acpi;
    fileset = lib.fileset.fileFilter (file: file.hasExt "asl") ../acpi;
  };

  nativeBuildInputs = [acpica-tools xtask];

  buildPhase = ''
    runHook preBuild
    xtask ssdt --src "$PWD" --out "$out"
    runHook postBuild
  '';

  dontInstall = true;
  allowedReferences = [];
}
