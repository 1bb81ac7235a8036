// SPDX-License-Identifier: GPL-2.0
/*
 * Exercise 4: a lock taken in the handler and in process context without
 * disabling interrupts.
 *
 * THE BUG: bug_lock_last_show(), which runs in process context when
 * /sys/kernel/debug/bug_lock_without_irqsave/KBD0001:00/last is read,
 * takes st->lock with spin_lock(). The hard handler takes the same lock.
 * If IRQ 1 arrives on this CPU while the reader holds the lock, the
 * handler spins on it forever: a deadlock. Lockdep sees the two usages
 * ({IN-HARDIRQ-W} in the handler, {HARDIRQ-ON-W} in the reader) and
 * reports it the first time both have happened, whether or not the
 * deadlock did:
 *
 *   WARNING: inconsistent lock state
 *   inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage.
 *
 * THE FIX: in process context, spin_lock_irq(&st->lock) (or
 * spin_lock_irqsave()), which keeps the handler off this CPU while the
 * lock is held. See exercises/04-lock-without-irqsave.md.
 */

#include <linux/debugfs.h>
#include <linux/interrupt.h>
#include <linux/module.h>
#include <linux/platform_device.h>
#include <linux/seq_file.h>
#include <linux/spinlock.h>

#include "bug_kbd.h"

#define BUG_NAME "bug_lock_without_irqsave"

/**
 * struct bug_lock - per-device state
 * @kbd: the skeleton's device
 * @lock: protects @last, taken by the handler and by the reader
 * @last: the last byte read
 */
struct bug_lock {
	struct bug_kbd kbd;
	spinlock_t lock; /* protects @last */
	u8 last;
};

static irqreturn_t bug_lock_irq(int irq, void *dev_id)
{
	struct bug_lock *st = dev_id;
	u8 byte;

	atomic64_inc(&st->kbd.stats.irqs);
	if (!bug_kbd_byte_waiting(&st->kbd)) {
		atomic64_inc(&st->kbd.stats.not_ours);
		return IRQ_NONE;
	}
	byte = inb(st->kbd.data);
	spin_lock(&st->lock);		/* right: interrupts are off here */
	st->last = byte;
	spin_unlock(&st->lock);
	atomic64_inc(&st->kbd.stats.handled);
	bug_kbd_log_byte(&st->kbd, byte);
	return IRQ_HANDLED;
}

/* The debugfs file `last`: the last byte read, in hex. */
static int bug_lock_last_show(struct seq_file *m, void *unused)
{
	struct bug_lock *st = m->private;
	u8 last;

	spin_lock(&st->lock);		/* THE BUG: interrupts stay enabled */
	last = st->last;
	spin_unlock(&st->lock);
	seq_printf(m, "%02x\n", last);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(bug_lock_last);

static int bug_lock_probe(struct platform_device *pdev)
{
	struct bug_lock *st;
	int ret;

	st = devm_kzalloc(&pdev->dev, sizeof(*st), GFP_KERNEL);
	if (!st)
		return -ENOMEM;
	spin_lock_init(&st->lock);
	ret = bug_kbd_setup(pdev, &st->kbd);
	if (ret)
		return ret;
	debugfs_create_file("last", 0444, st->kbd.debugfs, st,
			    &bug_lock_last_fops);
	return devm_request_irq(&pdev->dev, st->kbd.irq, bug_lock_irq,
				IRQF_SHARED, BUG_NAME, st);
}

static const struct acpi_device_id bug_lock_acpi_ids[] = {
	{ "KBD0001", 0 },
	{ }
};
MODULE_DEVICE_TABLE(acpi, bug_lock_acpi_ids);

static struct platform_driver bug_lock_driver = {
	.probe = bug_lock_probe,
	.driver = {
		.name = BUG_NAME,
		.acpi_match_table = bug_lock_acpi_ids,
	},
};
module_platform_driver(bug_lock_driver);

MODULE_AUTHOR("Rust keyboard lab");
MODULE_DESCRIPTION("Exercise 4: a spinlock shared with the handler, taken with interrupts on");
MODULE_LICENSE("GPL");
