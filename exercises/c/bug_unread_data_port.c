// SPDX-License-Identifier: GPL-2.0
/*
 * Exercise 2: not reading the data port.
 *
 * THE BUG: bug_unread_irq() sees that the controller has a byte (status
 * bit 0), counts the interrupt as handled and returns, without reading the
 * byte: the line "byte = inb(kbd->data);" is missing. The i8042 keeps its
 * output buffer full, so it never raises IRQ 1 again: the line is
 * edge-triggered, and the edge that comes with the next byte needs the
 * buffer emptied first. One interrupt, then silence; every key pressed
 * afterwards is lost (QEMU's keyboard queue holds 16 bytes, then drops).
 * No checker reports anything: the IRQ count stays where it is.
 *
 * THE FIX: read the byte in the handler:
 *
 *	byte = inb(kbd->data);
 *	bug_kbd_log_byte(kbd, byte);
 *
 * See exercises/02-unread-data-port.md.
 */

#include <linux/interrupt.h>
#include <linux/module.h>
#include <linux/platform_device.h>

#include "bug_kbd.h"

#define BUG_NAME "bug_unread_data_port"

static irqreturn_t bug_unread_irq(int irq, void *dev_id)
{
	struct bug_kbd *kbd = dev_id;

	atomic64_inc(&kbd->stats.irqs);
	if (!bug_kbd_byte_waiting(kbd)) {
		atomic64_inc(&kbd->stats.not_ours);
		return IRQ_NONE;
	}
	/* THE BUG: the byte is never read from kbd->data. */
	atomic64_inc(&kbd->stats.handled);
	return IRQ_HANDLED;
}

static int bug_unread_probe(struct platform_device *pdev)
{
	struct bug_kbd *kbd;
	int ret;

	kbd = devm_kzalloc(&pdev->dev, sizeof(*kbd), GFP_KERNEL);
	if (!kbd)
		return -ENOMEM;
	ret = bug_kbd_setup(pdev, kbd);
	if (ret)
		return ret;
	return devm_request_irq(&pdev->dev, kbd->irq, bug_unread_irq,
				IRQF_SHARED, BUG_NAME, kbd);
}

static const struct acpi_device_id bug_unread_acpi_ids[] = {
	{ "KBD0001", 0 },
	{ }
};
MODULE_DEVICE_TABLE(acpi, bug_unread_acpi_ids);

static struct platform_driver bug_unread_driver = {
	.probe = bug_unread_probe,
	.driver = {
		.name = BUG_NAME,
		.acpi_match_table = bug_unread_acpi_ids,
	},
};
module_platform_driver(bug_unread_driver);

MODULE_AUTHOR("Rust keyboard lab");
MODULE_DESCRIPTION("Exercise 2: a handler that never reads the data port");
MODULE_LICENSE("GPL");
