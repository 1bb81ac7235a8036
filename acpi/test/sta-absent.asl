/*
 * Test variant: the same device, but _STA says "not present". The kernel
 * must not create a platform device for it, so the driver never probes.
 */
DefinitionBlock ("", "SSDT", 2, "TEST", "VIRTABS", 1)
{
    Scope (\_SB)
    {
        Device (KBD)
        {
            Name (_HID, "KBD0001")
            Name (_UID, 1)

            /* Not present. */
            Method (_STA, 0, NotSerialized)
            {
                Return (0x00)
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
