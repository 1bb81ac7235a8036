// SPDX-License-Identifier: GPL-2.0
/*
 * C twin of the lab's Rust keyboard driver: a PS/2 keyboard interrupt
 * driver for the ACPI device KBD0001.
 *
 * It is LKMPG's intrpt.c (IRQ 1, inb() of 0x64 and 0x60, bottom half on a
 * workqueue) brought to Linux 7.2 as a platform driver: matched through
 * ACPI, with its interrupt and its two I/O ports taken from the device's
 * resources (_CRS), both claimed through devres, and a shared interrupt.
 * It logs the same lines as the Rust driver, so that one test suite checks
 * both:
 *
 *   c_keyboard KBD0001:00: probed: irq 1, data port 0x60, status port 0x64, mode workqueue
 *   c_keyboard KBD0001:00: scancode 1e pressed
 *   c_keyboard KBD0001:00: scancode e0 c8 released
 *   c_keyboard KBD0001:00: removed: irq 1 freed
 *
 * The hard handler checks the status register, reads the byte and queues
 * it in a kfifo; a work item on the system workqueue drains the kfifo and
 * decodes scancode set 1 (0xe0 prefix, the 0xe1 Pause sequence, PrtSc's
 * fake shifts).
 *
 * Its counters are the Rust driver's, in the same debugfs layout, so that
 * the tests read both the same way:
 * /sys/kernel/debug/c_keyboard/<device>/{irqs,handled,not_ours,bytes,events,
 * bytes_dropped,events_dropped,mode}. It has no /dev/kbd0001 (the seed has
 * none): events_dropped, which counts events lost in readers' queues, stays 0.
 */

#include <linux/acpi.h>
#include <linux/atomic.h>
#include <linux/debugfs.h>
#include <linux/device.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/kfifo.h>
#include <linux/mod_devicetable.h>
#include <linux/module.h>
#include <linux/platform_device.h>
#include <linux/seq_file.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>

#define C_KBD_NAME		"c_keyboard"
#define C_KBD_IRQ_NAME		"c_keyboard_irq"

/* i8042 status register, bit 0: a byte waits at the data port. */
#define I8042_STR_OBF		0x01
/* Scancode set 1: break = make | 0x80; prefixes of extended keys. */
#define SC_BREAK		0x80
#define SC_EXTENDED		0xe0
#define SC_PAUSE		0xe1
/* The Pause key sends e1 1d 45 e1 9d c5: six bytes, one event. */
#define SC_PAUSE_LEN		6

/*
 * Bytes read at most while draining stale input at probe: the controller's
 * buffer holds one byte, QEMU's keyboard queue 16 more.
 */
#define C_KBD_MAX_DRAIN		(1 + 16)

/* Bytes between the hard handler and the work item; a power of two. */
#define C_KBD_FIFO_SIZE		256

/**
 * struct c_kbd_stats - counters since probe, shown in debugfs
 * @irqs: hard handler invocations
 * @handled: invocations that found a byte and returned IRQ_HANDLED
 * @not_ours: invocations without a byte waiting (IRQ_NONE)
 * @bytes: bytes read from the data port
 * @events: key events decoded
 * @bytes_dropped: bytes lost because the fifo was full
 * @events_dropped: events lost in readers' queues: always 0, no readers
 */
struct c_kbd_stats {
	atomic64_t irqs;
	atomic64_t handled;
	atomic64_t not_ours;
	atomic64_t bytes;
	atomic64_t events;
	atomic64_t bytes_dropped;
	atomic64_t events_dropped;
};

/* The driver's debugfs directory, /sys/kernel/debug/c_keyboard. */
static struct dentry *c_kbd_debugfs_root;

/**
 * struct c_kbd - per-device state
 * @dev: the KBD0001 platform device's struct device, for messages
 * @data: the data port, from the device's first I/O resource
 * @status: the status port, from its second I/O resource
 * @irq: the interrupt line, from its first interrupt resource
 * @fifo: bytes read by the hard handler, not yet decoded
 * @fifo_lock: serialises writers of @fifo (the handler may run on any CPU)
 * @work: the bottom half, draining @fifo
 * @stats: the counters
 * @debugfs: the device's debugfs directory, holding @stats' files
 * @seq: decoder state: bytes of the sequence being decoded
 * @seq_len: number of bytes in @seq (only touched by @work)
 */
struct c_kbd {
	struct device *dev;
	u16 data;
	u16 status;
	int irq;
	DECLARE_KFIFO(fifo, u8, C_KBD_FIFO_SIZE);
	spinlock_t fifo_lock; /* serialises writers of @fifo */
	struct work_struct work;
	struct c_kbd_stats stats;
	struct dentry *debugfs;
	u8 seq[SC_PAUSE_LEN];
	unsigned int seq_len;
};

/* Logs one decoded event: its bytes and whether the key went down or up. */
static void c_kbd_log_event(struct c_kbd *kbd, bool released)
{
	char hex[3 * SC_PAUSE_LEN];
	unsigned int i;
	int len = 0;

	for (i = 0; i < kbd->seq_len; i++)
		len += scnprintf(hex + len, sizeof(hex) - len, "%s%02x",
				 i ? " " : "", kbd->seq[i]);
	atomic64_inc(&kbd->stats.events);
	dev_info(kbd->dev, "scancode %s %s\n", hex,
		 released ? "released" : "pressed");
}

/*
 * Feeds one byte to the set-1 decoder and logs the event it completes.
 * Fake shifts (e0 2a, e0 aa, e0 36, e0 b6: PrtSc's) are not events.
 */
static void c_kbd_decode(struct c_kbd *kbd, u8 byte)
{
	u8 code;

	kbd->seq[kbd->seq_len++] = byte;
	if (kbd->seq[0] == SC_PAUSE) {
		if (kbd->seq_len < SC_PAUSE_LEN)
			return;
		c_kbd_log_event(kbd, false);
		kbd->seq_len = 0;
		return;
	}
	if (kbd->seq[0] == SC_EXTENDED) {
		if (kbd->seq_len < 2)
			return;
		code = kbd->seq[1] & ~SC_BREAK;
		if (code != 0x2a && code != 0x36)
			c_kbd_log_event(kbd, kbd->seq[1] & SC_BREAK);
		kbd->seq_len = 0;
		return;
	}
	c_kbd_log_event(kbd, byte & SC_BREAK);
	kbd->seq_len = 0;
}

/* The bottom half: decodes every queued byte, however many wake-ups merged. */
static void c_kbd_work(struct work_struct *work)
{
	struct c_kbd *kbd = container_of(work, struct c_kbd, work);
	u8 byte;

	/* Only this work item reads the fifo: no lock on the reader side. */
	while (kfifo_get(&kbd->fifo, &byte))
		c_kbd_decode(kbd, byte);
}

/*
 * The hard handler: not ours unless a byte waits (the line is shared);
 * otherwise read it, queue it and schedule the bottom half.
 */
static irqreturn_t c_kbd_irq(int irq, void *dev_id)
{
	struct c_kbd *kbd = dev_id;
	u8 byte;

	atomic64_inc(&kbd->stats.irqs);
	if (!(inb(kbd->status) & I8042_STR_OBF)) {
		atomic64_inc(&kbd->stats.not_ours);
		return IRQ_NONE;
	}
	byte = inb(kbd->data);
	atomic64_inc(&kbd->stats.handled);
	atomic64_inc(&kbd->stats.bytes);
	spin_lock(&kbd->fifo_lock);
	if (!kfifo_put(&kbd->fifo, byte))
		atomic64_inc(&kbd->stats.bytes_dropped);
	spin_unlock(&kbd->fifo_lock);
	schedule_work(&kbd->work);
	return IRQ_HANDLED;
}

/* Devres action, registered before the IRQ: runs after free_irq(). */
static void c_kbd_cancel_work(void *data)
{
	struct c_kbd *kbd = data;

	cancel_work_sync(&kbd->work);
}

/* Devres action, registered first: runs last, once everything is freed. */
static void c_kbd_removed(void *data)
{
	struct c_kbd *kbd = data;
	s64 dropped = atomic64_read(&kbd->stats.bytes_dropped);

	if (dropped)
		dev_warn(kbd->dev, "%lld byte(s) dropped: the fifo was full\n",
			 dropped);
	dev_info(kbd->dev, "removed: irq %d freed\n", kbd->irq);
}

/* A counter's debugfs file: its value in decimal and a newline. */
static int c_kbd_counter_get(void *data, u64 *val)
{
	*val = atomic64_read(data);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(c_kbd_counter_fops, c_kbd_counter_get, NULL, "%llu\n");

/* The debugfs file `mode`: how the interrupt work is split. */
static int c_kbd_mode_show(struct seq_file *m, void *unused)
{
	seq_puts(m, "workqueue\n");
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(c_kbd_mode);

/* Devres action: removes the device's debugfs directory. */
static void c_kbd_debugfs_remove(void *data)
{
	struct c_kbd *kbd = data;

	debugfs_remove_recursive(kbd->debugfs);
}

/*
 * Creates the device's debugfs directory with the counters and the mode;
 * it is removed on unbind, before @kbd is freed. debugfs errors are not
 * fatal (the kernel's convention): the driver works without its counters.
 */
static int c_kbd_debugfs_create(struct c_kbd *kbd)
{
	const struct {
		const char *name;
		atomic64_t *counter;
	} files[] = {
		{ "irqs", &kbd->stats.irqs },
		{ "handled", &kbd->stats.handled },
		{ "not_ours", &kbd->stats.not_ours },
		{ "bytes", &kbd->stats.bytes },
		{ "events", &kbd->stats.events },
		{ "bytes_dropped", &kbd->stats.bytes_dropped },
		{ "events_dropped", &kbd->stats.events_dropped },
	};
	unsigned int i;

	kbd->debugfs = debugfs_create_dir(dev_name(kbd->dev), c_kbd_debugfs_root);
	for (i = 0; i < ARRAY_SIZE(files); i++)
		debugfs_create_file_unsafe(files[i].name, 0444, kbd->debugfs,
					   files[i].counter, &c_kbd_counter_fops);
	debugfs_create_file("mode", 0444, kbd->debugfs, NULL, &c_kbd_mode_fops);
	return devm_add_action_or_reset(kbd->dev, c_kbd_debugfs_remove, kbd);
}

/*
 * Looks up the I/O resource @index of @pdev, requires it to be one port
 * and claims it for this driver until the device unbinds.
 */
static int c_kbd_port(struct platform_device *pdev, unsigned int index,
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
	if (!devm_request_region(&pdev->dev, res->start, 1, C_KBD_NAME))
		return dev_err_probe(&pdev->dev, -EBUSY,
				     "I/O port %pR is busy\n", res);
	*port = res->start;
	return 0;
}

/**
 * c_kbd_drain() - discard the bytes waiting in the controller
 * @kbd: the device
 *
 * A byte left unread keeps the edge-triggered IRQ 1 from rising again.
 * Reads at most %C_KBD_MAX_DRAIN bytes.
 *
 * Return: the number of bytes discarded.
 */
static unsigned int c_kbd_drain(struct c_kbd *kbd)
{
	unsigned int drained = 0;

	while (drained < C_KBD_MAX_DRAIN && (inb(kbd->status) & I8042_STR_OBF)) {
		inb(kbd->data);
		drained++;
	}
	return drained;
}

static int c_kbd_probe(struct platform_device *pdev)
{
	struct device *dev = &pdev->dev;
	struct c_kbd *kbd;
	unsigned int drained;
	int ret;

	kbd = devm_kzalloc(dev, sizeof(*kbd), GFP_KERNEL);
	if (!kbd)
		return -ENOMEM;
	kbd->dev = dev;
	INIT_KFIFO(kbd->fifo);
	spin_lock_init(&kbd->fifo_lock);
	INIT_WORK(&kbd->work, c_kbd_work);

	kbd->irq = platform_get_irq(pdev, 0);
	if (kbd->irq < 0)
		return kbd->irq;
	ret = c_kbd_port(pdev, 0, &kbd->data);
	if (ret)
		return ret;
	ret = c_kbd_port(pdev, 1, &kbd->status);
	if (ret)
		return ret;

	ret = devm_add_action_or_reset(dev, c_kbd_removed, kbd);
	if (ret)
		return ret;
	ret = devm_add_action_or_reset(dev, c_kbd_cancel_work, kbd);
	if (ret)
		return ret;
	ret = c_kbd_debugfs_create(kbd);
	if (ret)
		return ret;

	/* Discard what arrived before the driver was bound. */
	drained = c_kbd_drain(kbd);
	if (drained)
		dev_dbg(dev, "drained %u stale byte(s)\n", drained);

	ret = devm_request_irq(dev, kbd->irq, c_kbd_irq, IRQF_SHARED,
			       C_KBD_IRQ_NAME, kbd);
	if (ret)
		return dev_err_probe(dev, ret, "cannot request irq %d\n",
				     kbd->irq);

	/*
	 * A byte that arrived between the drain above and the request raised
	 * the edge-triggered line while no handler was there: that edge is
	 * lost, and the line stays high, with no further edge, until the
	 * byte is read. Read what is waiting once more, as the Rust driver's
	 * probe does. This can race only with our own handler, and then one
	 * byte is read twice or counted as not ours: a key pressed while the
	 * driver binds. Without it, a key pressed during an insmod stopped
	 * every later interrupt (the reload test, 2026-12-03).
	 */
	drained = c_kbd_drain(kbd);
	if (drained)
		dev_dbg(dev, "drained %u byte(s) that arrived during probe\n",
			drained);

	dev_info(dev, "probed: irq %d, data port %#04x, status port %#04x, mode workqueue\n",
		 kbd->irq, kbd->data, kbd->status);
	return 0;
}

static const struct acpi_device_id c_kbd_acpi_ids[] = {
	{ "KBD0001", 0 },
	{ }
};
MODULE_DEVICE_TABLE(acpi, c_kbd_acpi_ids);

static struct platform_driver c_kbd_driver = {
	.probe = c_kbd_probe,
	.driver = {
		.name = C_KBD_NAME,
		.acpi_match_table = c_kbd_acpi_ids,
	},
};

static int __init c_kbd_init(void)
{
	int ret;

	c_kbd_debugfs_root = debugfs_create_dir(C_KBD_NAME, NULL);
	ret = platform_driver_register(&c_kbd_driver);
	if (ret)
		debugfs_remove_recursive(c_kbd_debugfs_root);
	return ret;
}
module_init(c_kbd_init);

static void __exit c_kbd_exit(void)
{
	platform_driver_unregister(&c_kbd_driver);
	debugfs_remove_recursive(c_kbd_debugfs_root);
}
module_exit(c_kbd_exit);

MODULE_AUTHOR("Rust keyboard lab");
MODULE_DESCRIPTION("C twin of the Rust PS/2 keyboard interrupt driver for the ACPI KBD0001 device");
MODULE_LICENSE("GPL");
