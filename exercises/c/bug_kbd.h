/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bug_kbd: the skeleton the classic-bug exercises share (exercises/c/).
 *
 * Every exercise is a small ACPI platform driver for the lab's KBD0001
 * device with its own probe, remove and interrupt handler, and exactly one
 * classic interrupt-handling bug. What is not about interrupts lives here,
 * in the module bug_kbd.ko, which the exercises depend on (insmod it
 * first): the device's resources (IRQ 1 and the ports 0x60/0x64 from
 * _CRS, claimed as c_keyboard claims them), draining stale bytes, the
 * counters in debugfs and the log line of a byte.
 */
#ifndef BUG_KBD_H
#define BUG_KBD_H

#include <linux/atomic.h>
#include <linux/io.h>
#include <linux/platform_device.h>
#include <linux/types.h>

/* i8042 status register, bit 0: a byte waits at the data port. */
#define BUG_KBD_OBF		0x01

/**
 * struct bug_kbd_stats - counters since probe, in debugfs
 * @irqs: handler invocations
 * @handled: invocations that returned IRQ_HANDLED
 * @not_ours: invocations that returned IRQ_NONE
 * @bytes: bytes read from the data port
 */
struct bug_kbd_stats {
	atomic64_t irqs;
	atomic64_t handled;
	atomic64_t not_ours;
	atomic64_t bytes;
};

/**
 * struct bug_kbd - the device as the exercises see it
 * @dev: the KBD0001 platform device's struct device, for messages
 * @data: the data port, from the device's first I/O resource
 * @status: the status port, from its second I/O resource
 * @irq: the interrupt line, from its first interrupt resource
 * @stats: the counters
 * @debugfs: their directory, /sys/kernel/debug/<driver>/<device>/, where an
 *	exercise may add files (removed on unbind)
 */
struct bug_kbd {
	struct device *dev;
	u16 data;
	u16 status;
	int irq;
	struct bug_kbd_stats stats;
	struct dentry *debugfs;
};

int bug_kbd_setup(struct platform_device *pdev, struct bug_kbd *kbd);
void bug_kbd_log_byte(struct bug_kbd *kbd, u8 byte);

/* Whether the controller has a byte for us. */
static inline bool bug_kbd_byte_waiting(struct bug_kbd *kbd)
{
	return inb(kbd->status) & BUG_KBD_OBF;
}

#endif /* BUG_KBD_H */
