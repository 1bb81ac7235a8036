/*
 * Test variant: the device is present but _CRS declares no interrupt. The
 * driver must fail its probe with a clear error and stay unloadable.
 */
DefinitionBlock ("", "SSDT", 2, "TEST", "VIRTNIRQ", 1)
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
                IO (Decode16, 0x0060, 0x0060, 0x01, 0x01)
                IO (Decode16, 0x0064, 0x0064, 0x01, 0x01)
            })
        }
    }
}
