// SPDX-License-Identifier: GPL-2.0
/*
 * bug_kbd: the skeleton of the classic-bug exercises (see bug_kbd.h).
 *
 * It has no driver of its own: it exports the helpers every exercise
 * calls from its probe and its handler, so that an exercise's source is
 * its interrupt handling and nothing else.
 */

#include <linux/debugfs.h>
#include <linux/device.h>
#include <linux/ioport.h>
#include <linux/module.h>

#include "bug_kbd.h"

/*
 * Bytes read at most while draining stale input at probe: the controller's
 * buffer holds one byte, QEMU's keyboard queue 16 more.
 */
#define MAX_STALE_BYTES	(1 + 16)

/* A counter's debugfs file: its value in decimal and a newline. */
static int bug_kbd_counter_get(void *data, u64 *val)
{
	*val = atomic64_read(data);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(bug_kbd_counter_fops, bug_kbd_counter_get, NULL,
			 "%llu\n");

/* Devres action: removes the driver's debugfs directory. */
static void bug_kbd_debugfs_remove(void *dir)
{
	debugfs_remove_recursive(dir);
}

/*
 * The debugfs directory /sys/kernel/debug/<driver>/<device>/ with the
 * counters; removed on unbind. The action gets the directory, not @kbd:
 * it must not touch @kbd, which an exercise may already have freed.
 */
static int bug_kbd_debugfs_create(struct bug_kbd *kbd)
{
	const struct {
		const char *name;
		atomic64_t *counter;
	} files[] = {
		{ "irqs", &kbd->stats.irqs },
		{ "handled", &kbd->stats.handled },
		{ "not_ours", &kbd->stats.not_ours },
		{ "bytes", &kbd->stats.bytes },
	};
	struct dentry *root;
	unsigned int i;

	root = debugfs_create_dir(kbd->dev->driver->name, NULL);
	kbd->debugfs = debugfs_create_dir(dev_name(kbd->dev), root);
	for (i = 0; i < ARRAY_SIZE(files); i++)
		debugfs_create_file_unsafe(files[i].name, 0444, kbd->debugfs,
					   files[i].counter,
					   &bug_kbd_counter_fops);
	return devm_add_action_or_reset(kbd->dev, bug_kbd_debugfs_remove, root);
}

/*
 * Looks up the I/O resource @index of @pdev, requires it to be one port
 * and claims it until the device unbinds.
 */
static int bug_kbd_port(struct platform_device *pdev, unsigned int index,
			u16 *port)
{
	struct resource *res;

	res = platform_get_resource(pdev, IORESOURCE_IO, index);
	if (!res)
		return dev_err_probe(&pdev->dev, -ENODEV,
				     "no I/O resource %u in _CRS\n", index);
	if (resource_size(res) != 1)
		return dev_err_probe(&pdev->dev, -EINVAL,
				     "I/O resource %u is %pR, not one port\n",
				     index, res);
	if (!devm_request_region(&pdev->dev, res->start, 1,
				 pdev->dev.driver->name))
		return dev_err_probe(&pdev->dev, -EBUSY,
				     "I/O port %pR is busy\n", res);
	*port = res->start;
	return 0;
}

/**
 * bug_kbd_setup() - fill @kbd from the device's resources
 * @pdev: the KBD0001 platform device being probed
 * @kbd: the exercise's device state (zeroed)
 *
 * Takes the IRQ and the two ports from _CRS, claims the ports, creates the
 * counters in debugfs and drains what arrived before the driver was bound
 * (a byte left unread keeps the edge-triggered IRQ 1 from rising again).
 * Everything it sets up is device-managed. The caller requests the IRQ.
 *
 * Return: 0 or a negative error code.
 */
int bug_kbd_setup(struct platform_device *pdev, struct bug_kbd *kbd)
{
	unsigned int drained = 0;
	int ret;

	kbd->dev = &pdev->dev;
	kbd->irq = platform_get_irq(pdev, 0);
	if (kbd->irq < 0)
		return kbd->irq;
	ret = bug_kbd_port(pdev, 0, &kbd->data);
	if (ret)
		return ret;
	ret = bug_kbd_port(pdev, 1, &kbd->status);
	if (ret)
		return ret;
	ret = bug_kbd_debugfs_create(kbd);
	if (ret)
		return ret;
	while (drained < MAX_STALE_BYTES && bug_kbd_byte_waiting(kbd)) {
		inb(kbd->data);
		drained++;
	}
	dev_info(kbd->dev, "set up: irq %d, data port %#04x, status port %#04x, %u stale byte(s) drained\n",
		 kbd->irq, kbd->data, kbd->status, drained);
	return 0;
}
EXPORT_SYMBOL_GPL(bug_kbd_setup);

/**
 * bug_kbd_log_byte() - count and log a byte read from the data port
 * @kbd: the device
 * @byte: the byte
 *
 * Logs ``<driver> KBD0001:00: byte 1e``; callable from the hard handler.
 */
void bug_kbd_log_byte(struct bug_kbd *kbd, u8 byte)
{
	atomic64_inc(&kbd->stats.bytes);
	dev_info(kbd->dev, "byte %02x\n", byte);
}
EXPORT_SYMBOL_GPL(bug_kbd_log_byte);

MODULE_AUTHOR("Rust keyboard lab");
MODULE_DESCRIPTION("Skeleton of the lab's classic interrupt-bug exercises");
MODULE_LICENSE("GPL");
