/*
 * Test variant: the same device with I/O ports that are not the i8042's,
 * 0x61 and 0x65, and the keyboard's IRQ 1. The driver must refuse to probe
 * (an error naming the resources it found), register no interrupt and no
 * device node, and stay unloadable.
 */
DefinitionBlock ("", "SSDT", 2, "TEST", "VIRTPORT", 1)
{
    Scope (\_SB)
    {
        Device (KBD)
        {
            Name (_HID, "KBD0001")
            Name (_UID, 1)

            Method (_STA, 0, NotSerialized)
            {
                Return (0x0F)
            }

            Name (_CRS, ResourceTemplate ()
            {
                IO (Decode16, 0x0061, 0x0061, 0x01, 0x01)
                IO (Decode16, 0x0065, 0x0065, 0x01, 0x01)
                IRQNoFlags () {1}
            })
        }
    }
}
