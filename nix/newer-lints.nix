# A shell snippet, shared by the clippy checks (./cargo-clippy.nix,
# ./module-lint.nix): sets $newerLints to the lints that the clippy-driver on
# PATH warns or denies by default and that the host toolchain's table
# (./host-lints.txt) allows or lacks, so that a newer nixpkgs clippy holds
# the code to the host's lint set and no more.
''
  newerLints=$(clippy-driver -W help | awk '
    NR == FNR { if ($1 !~ /^#/) host[$1] = $2; next }
    /^ +[a-z0-9_:-]+ +(allow|warn|deny|forbid) / {
      name = $1; gsub("-", "_", name)
      if ($2 != "allow" && (!(name in host) || host[name] == "allow")) print name
    }' ${./host-lints.txt} -)
''
