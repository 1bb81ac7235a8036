// SPDX-License-Identifier: GPL-2.0
/*
 * Exercise 6: freeing what the handler uses before the interrupt is freed.
 *
 * THE BUG: bug_free_remove() frees the state the handler works on,
 * kfree(st), and only then frees the interrupt, free_irq(irq, st). Until
 * free_irq() returns, the handler may run at any moment (a key, another
 * device on the shared line) and use the freed memory. The debug kernel
 * makes "may" certain: with CONFIG_DEBUG_SHIRQ, free_irq() of a shared
 * handler calls it once more, and KASAN reports the access:
 *
 *   BUG: KASAN: slab-use-after-free in bug_free_irq+0x.../0x... [bug_free_before_free_irq]
 *
 * THE FIX: the reverse order, which is the order of probe reversed:
 *
 *	free_irq(st->kbd.irq, st);
 *	cancel_work_sync(&st->work);
 *	kfree(st);
 *
 * (or devm_kzalloc() and devm_request_irq(), which devres undoes in that
 * order). See exercises/06-free-before-free-irq.md.
 */

#include <linux/interrupt.h>
#include <linux/module.h>
#include <linux/platform_device.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "bug_kbd.h"

#define BUG_NAME "bug_free_before_free_irq"

/**
 * struct bug_free - per-device state, allocated by probe, freed by remove
 * @work: the bottom half, which logs @byte
 * @byte: the last byte read by the handler
 * @kbd: the skeleton's device
 */
struct bug_free {
	struct work_struct work;
	u8 byte;
	struct bug_kbd kbd;
};

/* The bottom half: logs the byte the handler read. */
static void bug_free_work(struct work_struct *work)
{
	struct bug_free *st = container_of(work, struct bug_free, work);

	bug_kbd_log_byte(&st->kbd, READ_ONCE(st->byte));
}

static irqreturn_t bug_free_irq(int irq, void *dev_id)
{
	struct bug_free *st = dev_id;

	atomic64_inc(&st->kbd.stats.irqs);
	if (!bug_kbd_byte_waiting(&st->kbd)) {
		atomic64_inc(&st->kbd.stats.not_ours);
		return IRQ_NONE;
	}
	WRITE_ONCE(st->byte, inb(st->kbd.data));
	atomic64_inc(&st->kbd.stats.handled);
	schedule_work(&st->work);
	return IRQ_HANDLED;
}

static int bug_free_probe(struct platform_device *pdev)
{
	struct bug_free *st;
	int ret;

	st = kzalloc_obj(*st);
	if (!st)
		return -ENOMEM;
	INIT_WORK(&st->work, bug_free_work);
	ret = bug_kbd_setup(pdev, &st->kbd);
	if (ret)
		goto err_free;
	ret = request_irq(st->kbd.irq, bug_free_irq, IRQF_SHARED, BUG_NAME, st);
	if (ret)
		goto err_free;
	platform_set_drvdata(pdev, st);
	return 0;

err_free:
	kfree(st);
	return ret;
}

static void bug_free_remove(struct platform_device *pdev)
{
	struct bug_free *st = platform_get_drvdata(pdev);
	int irq = st->kbd.irq;

	cancel_work_sync(&st->work);
	kfree(st);			/* THE BUG: the handler may still run */
	free_irq(irq, st);
}

static const struct acpi_device_id bug_free_acpi_ids[] = {
	{ "KBD0001", 0 },
	{ }
};
MODULE_DEVICE_TABLE(acpi, bug_free_acpi_ids);

static struct platform_driver bug_free_driver = {
	.probe = bug_free_probe,
	.remove = bug_free_remove,
	.driver = {
		.name = BUG_NAME,
		.acpi_match_table = bug_free_acpi_ids,
	},
};
module_platform_driver(bug_free_driver);

MODULE_AUTHOR("Rust keyboard lab");
MODULE_DESCRIPTION("Exercise 6: state freed before the interrupt that uses it");
MODULE_LICENSE("GPL");
