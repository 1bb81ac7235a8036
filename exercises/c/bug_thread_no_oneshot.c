// SPDX-License-Identifier: GPL-2.0
/*
 * Exercise 5: a threaded handler without a hard handler and without
 * IRQF_ONESHOT.
 *
 * THE BUG: bug_thread_probe() requests the line with
 *
 *	request_threaded_irq(irq, NULL, bug_thread_fn, IRQF_SHARED, ...)
 *
 * With no hard handler, genirq installs its default one, which only wakes
 * the thread: the device's interrupt is still asserted when the hard
 * handler returns, and a level-triggered line would fire again and again
 * before the thread ever runs. Only IRQF_ONESHOT, which keeps the line
 * masked until the thread has run, makes that safe, so genirq refuses the
 * request (kernel/irq/manage.c, __setup_irq()):
 *
 *   genirq: Threaded irq requested with handler=NULL and !ONESHOT for bug_thread_no_oneshot (irq 1)
 *
 * and probe fails with -EINVAL.
 *
 * THE FIX: IRQF_ONESHOT | IRQF_SHARED (every sharer of the line must then
 * agree on IRQF_ONESHOT), or a hard handler that reads the byte and
 * returns IRQ_WAKE_THREAD. See exercises/05-thread-no-oneshot.md.
 */

#include <linux/interrupt.h>
#include <linux/module.h>
#include <linux/platform_device.h>

#include "bug_kbd.h"

#define BUG_NAME "bug_thread_no_oneshot"

/* The thread: reads and logs what the controller has. Never runs here. */
static irqreturn_t bug_thread_fn(int irq, void *dev_id)
{
	struct bug_kbd *kbd = dev_id;

	atomic64_inc(&kbd->stats.irqs);
	if (!bug_kbd_byte_waiting(kbd)) {
		atomic64_inc(&kbd->stats.not_ours);
		return IRQ_NONE;
	}
	atomic64_inc(&kbd->stats.handled);
	bug_kbd_log_byte(kbd, inb(kbd->data));
	return IRQ_HANDLED;
}

static int bug_thread_probe(struct platform_device *pdev)
{
	struct bug_kbd *kbd;
	int ret;

	kbd = devm_kzalloc(&pdev->dev, sizeof(*kbd), GFP_KERNEL);
	if (!kbd)
		return -ENOMEM;
	ret = bug_kbd_setup(pdev, kbd);
	if (ret)
		return ret;
	/* THE BUG: no hard handler, and no IRQF_ONESHOT. */
	ret = devm_request_threaded_irq(&pdev->dev, kbd->irq, NULL,
					bug_thread_fn, IRQF_SHARED, BUG_NAME,
					kbd);
	if (ret)
		return dev_err_probe(&pdev->dev, ret, "cannot request irq %d\n",
				     kbd->irq);
	return 0;
}

static const struct acpi_device_id bug_thread_acpi_ids[] = {
	{ "KBD0001", 0 },
	{ }
};
MODULE_DEVICE_TABLE(acpi, bug_thread_acpi_ids);

static struct platform_driver bug_thread_driver = {
	.probe = bug_thread_probe,
	.driver = {
		.name = BUG_NAME,
		.acpi_match_table = bug_thread_acpi_ids,
	},
};
module_platform_driver(bug_thread_driver);

MODULE_AUTHOR("Rust keyboard lab");
MODULE_DESCRIPTION("Exercise 5: a threaded IRQ with handler=NULL and without IRQF_ONESHOT");
MODULE_LICENSE("GPL");
