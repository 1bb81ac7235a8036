// SPDX-License-Identifier: GPL-2.0
/*
 * Exercise 1: sleeping in the hard interrupt handler.
 *
 * THE BUG: bug_sleep_irq() takes a mutex (mutex_lock(&st->lock)) to
 * protect its byte count. A hard handler runs in atomic context, with
 * interrupts off, and must never sleep; mutex_lock() may sleep. With
 * CONFIG_DEBUG_ATOMIC_SLEEP the kernel says so on the first interrupt:
 *
 *   BUG: sleeping function called from invalid context at kernel/locking/mutex.c:...
 *
 * THE FIX: a spinlock (spin_lock(&st->lock) in the handler, spin_lock_irq()
 * in process context), or no lock at all: the skeleton's counters are
 * atomics. msleep() or anything else that may sleep is caught the same way.
 * See exercises/01-sleep-in-hard-handler.md.
 */

#include <linux/interrupt.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/platform_device.h>

#include "bug_kbd.h"

#define BUG_NAME "bug_sleep_in_hard_handler"

/**
 * struct bug_sleep - per-device state
 * @kbd: the skeleton's device
 * @lock: the mutex the handler takes (the bug)
 * @seen: bytes seen, under @lock
 */
struct bug_sleep {
	struct bug_kbd kbd;
	struct mutex lock; /* protects @seen */
	u64 seen;
};

static irqreturn_t bug_sleep_irq(int irq, void *dev_id)
{
	struct bug_sleep *st = dev_id;
	u8 byte;

	atomic64_inc(&st->kbd.stats.irqs);
	if (!bug_kbd_byte_waiting(&st->kbd)) {
		atomic64_inc(&st->kbd.stats.not_ours);
		return IRQ_NONE;
	}
	byte = inb(st->kbd.data);
	mutex_lock(&st->lock);		/* THE BUG: may sleep, in a hard handler */
	st->seen++;
	mutex_unlock(&st->lock);
	atomic64_inc(&st->kbd.stats.handled);
	bug_kbd_log_byte(&st->kbd, byte);
	return IRQ_HANDLED;
}

static int bug_sleep_probe(struct platform_device *pdev)
{
	struct bug_sleep *st;
	int ret;

	st = devm_kzalloc(&pdev->dev, sizeof(*st), GFP_KERNEL);
	if (!st)
		return -ENOMEM;
	ret = devm_mutex_init(&pdev->dev, &st->lock);
	if (ret)
		return ret;
	ret = bug_kbd_setup(pdev, &st->kbd);
	if (ret)
		return ret;
	return devm_request_irq(&pdev->dev, st->kbd.irq, bug_sleep_irq,
				IRQF_SHARED, BUG_NAME, st);
}

static const struct acpi_device_id bug_sleep_acpi_ids[] = {
	{ "KBD0001", 0 },
	{ }
};
MODULE_DEVICE_TABLE(acpi, bug_sleep_acpi_ids);

static struct platform_driver bug_sleep_driver = {
	.probe = bug_sleep_probe,
	.driver = {
		.name = BUG_NAME,
		.acpi_match_table = bug_sleep_acpi_ids,
	},
};
module_platform_driver(bug_sleep_driver);

MODULE_AUTHOR("Rust keyboard lab");
MODULE_DESCRIPTION("Exercise 1: a mutex taken in the hard interrupt handler");
MODULE_LICENSE("GPL");
