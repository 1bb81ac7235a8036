/*
 * SSDT of the lab: declares the PS/2 keyboard controller as the ACPI device
 * \_SB.KBD with hardware ID KBD0001, which the Rust driver (module/) matches.
 * QEMU loads it with `-acpitable file=ssdt.aml`.
 *
 * _CRS hands the driver its resources: the data port 0x60, the
 * status/command port 0x64 and the legacy keyboard interrupt, IRQ 1.
 */
DefinitionBlock ("", "SSDT", 2, "TEST", "VIRTACPI", 1)
{
    Scope (\_SB)
    {
        Device (KBD)
        {
            Name (_HID, "KBD0001")
            Name (_UID, 1)

            /* Present, enabled, shown in the UI, functioning. */
            Method (_STA, 0, NotSerialized)
            {
                Return (0x0F)
            }

            Name (_CRS, ResourceTemplate ()
            {
                IO (Decode16, 0x0060, 0x0060, 0x01, 0x01)
                IO (Decode16, 0x0064, 0x0064, 0x01, 0x01)
                IRQNoFlags () {1}
            })
        }
    }
}
