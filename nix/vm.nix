# `nix run .#vm`: boots the flake's artifacts with `xtask vm`, the command
# behind the host's `cargo xtask vm` (TCG unless hardware KVM works, no sudo;
# arguments go to it, e.g. `nix run .#vm -- --gui`).
{
  lib,
  writeShellApplication,
  qemu_kvm,
  xtask,
  artifacts,
}:
writeShellApplication {
  name = "rust-kbd-lab-vm";
  # qemu_kvm is QEMU for the host's architecture only; it runs with TCG as
  # well as with KVM.
  runtimeInputs = [qemu_kvm];
  text = ''
    export LAB_ARTIFACTS=${artifacts}
    exec ${lib.getExe xtask} vm --no-build "$@"
  '';
}
