// SPDX-License-Identifier: GPL-2.0
/*
 * Exercise 3: claiming interrupts that are not ours on a shared line.
 *
 * THE BUG: bug_claims_irq() never asks the controller whether it raised
 * the interrupt: the status check
 *
 *	if (!bug_kbd_byte_waiting(kbd))
 *		return IRQ_NONE;
 *
 * is missing. The handler reads the data port every time and returns
 * IRQ_HANDLED. On a shared line it claims every other device's interrupt
 * (and any spurious one): it logs a phantom byte (the i8042 hands back the
 * last byte again) and the kernel's spurious-interrupt accounting
 * (/proc/irq/1/spurious, "irq 1: nobody cared") never sees an unhandled
 * interrupt, so a stuck line would never be caught.
 *
 * THE FIX: the status check above, as c_keyboard and rust_keyboard do.
 * See exercises/03-claims-foreign-irqs.md.
 */

#include <linux/interrupt.h>
#include <linux/module.h>
#include <linux/platform_device.h>

#include "bug_kbd.h"

#define BUG_NAME "bug_claims_foreign_irqs"

static irqreturn_t bug_claims_irq(int irq, void *dev_id)
{
	struct bug_kbd *kbd = dev_id;

	atomic64_inc(&kbd->stats.irqs);
	/* THE BUG: no status check; every interrupt is taken for ours. */
	atomic64_inc(&kbd->stats.handled);
	bug_kbd_log_byte(kbd, inb(kbd->data));
	return IRQ_HANDLED;
}

static int bug_claims_probe(struct platform_device *pdev)
{
	struct bug_kbd *kbd;
	int ret;

	kbd = devm_kzalloc(&pdev->dev, sizeof(*kbd), GFP_KERNEL);
	if (!kbd)
		return -ENOMEM;
	ret = bug_kbd_setup(pdev, kbd);
	if (ret)
		return ret;
	return devm_request_irq(&pdev->dev, kbd->irq, bug_claims_irq,
				IRQF_SHARED, BUG_NAME, kbd);
}

static const struct acpi_device_id bug_claims_acpi_ids[] = {
	{ "KBD0001", 0 },
	{ }
};
MODULE_DEVICE_TABLE(acpi, bug_claims_acpi_ids);

static struct platform_driver bug_claims_driver = {
	.probe = bug_claims_probe,
	.driver = {
		.name = BUG_NAME,
		.acpi_match_table = bug_claims_acpi_ids,
	},
};
module_platform_driver(bug_claims_driver);

MODULE_AUTHOR("Rust keyboard lab");
MODULE_DESCRIPTION("Exercise 3: a shared handler that claims every interrupt");
MODULE_LICENSE("GPL");
