# The kernel source: the pinned Debian linux-source .deb (the very file the
# host path downloads), unpacked, with the shebangs of its scripts pointing
# into the store (the build sandbox has no /usr/bin/env). It is its own store
# path because the kernel's build tree refers to it for good: out-of-tree
# modules and rust-analyzer read the sources through that tree.
{
  lib,
  stdenvNoCC,
  fetchurl,
  dpkg,
  perl,
  python3Minimal,
  xz,
  pins,
}: let
  inherit (pins) kernel;
  # apt escapes "~" and "+" in archive URLs as well: some mirrors read a raw
  # "+" as a space.
  urlPath = lib.replaceStrings ["~" "+"] ["%7E" "%2B"] kernel.filename;
  # Store path names cannot hold "~".
  version = lib.replaceStrings ["~"] ["-"] kernel.version;
in
  stdenvNoCC.mkDerivation {
    pname = kernel.package;
    inherit version;

    # nixpkgs' list of Debian mirrors (pkgs/build-support/fetchurl/mirrors.nix).
    src = fetchurl {
      name = "${kernel.package}_${version}.deb";
      url = "mirror://debian/${urlPath}";
      inherit (kernel) sha256;
    };

    nativeBuildInputs = [dpkg perl python3Minimal xz];

    unpackPhase = ''
      runHook preUnpack
      dpkg-deb --extract "$src" deb
      runHook postUnpack
    '';

    dontConfigure = true;
    dontBuild = true;

    installPhase = ''
      runHook preInstall
      mkdir -p "$out"
      tar -xf "deb/${kernel.tarball}" -C "$out" --strip-components=1
      patchShebangs --build "$out"
      runHook postInstall
    '';

    # The tree is used as it is: nothing to strip or move.
    dontFixup = true;
  }
