// SPDX-License-Identifier: GPL-2.0
/*
 * lab_irq_sharer: a test-only module that shares an interrupt line with the
 * rust_keyboard driver of the rust-kbd-lab (used by vm-tests/tests/).
 *
 * It requests the line @irq (default 1) with IRQF_SHARED, or, with
 * shared=0, without it: the kernel must then refuse the request while the
 * driver holds the line ("genirq: Flags mismatch irq 1. ..."). Its handler
 * only counts its invocations and returns IRQ_NONE, so it never claims an
 * interrupt and leaves the driver's handling as it is. The count is the
 * read-only parameter @calls (/sys/module/lab_irq_sharer/parameters/calls).
 *
 * A C module because a Rust module of this kernel (7.2) cannot request an
 * interrupt without a bound device.
 */

#include <linux/atomic.h>
#include <linux/interrupt.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/sysfs.h>

static int irq = 1;
module_param(irq, int, 0444);
MODULE_PARM_DESC(irq, "Interrupt line to share (default 1)");

static bool shared = true;
module_param(shared, bool, 0444);
MODULE_PARM_DESC(shared, "Request the line with IRQF_SHARED (default 1)");

static atomic_t calls = ATOMIC_INIT(0);

static int calls_set(const char *val, const struct kernel_param *kp)
{
	return -EPERM;
}

static int calls_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&calls));
}

static const struct kernel_param_ops calls_ops = {
	.set = calls_set,
	.get = calls_get,
};
module_param_cb(calls, &calls_ops, NULL, 0444);
MODULE_PARM_DESC(calls, "Handler invocations since the module was loaded (read-only)");

/* The dev_id of the shared action: any unique non-NULL address. */
static int lab_irq_sharer_cookie;

static irqreturn_t lab_irq_sharer_handler(int irq, void *dev_id)
{
	atomic_inc(&calls);
	return IRQ_NONE;
}

static int __init lab_irq_sharer_init(void)
{
	unsigned long flags = shared ? IRQF_SHARED : 0;
	int ret;

	ret = request_irq(irq, lab_irq_sharer_handler, flags, KBUILD_MODNAME,
			  &lab_irq_sharer_cookie);
	if (ret) {
		pr_err(KBUILD_MODNAME ": cannot request irq %d (%s): %d\n", irq,
		       shared ? "shared" : "not shared", ret);
		return ret;
	}
	pr_info(KBUILD_MODNAME ": irq %d requested (%s)\n", irq,
		shared ? "shared" : "not shared");
	return 0;
}

static void __exit lab_irq_sharer_exit(void)
{
	free_irq(irq, &lab_irq_sharer_cookie);
	pr_info(KBUILD_MODNAME ": irq %d freed after %d calls\n", irq,
		atomic_read(&calls));
}

module_init(lab_irq_sharer_init);
module_exit(lab_irq_sharer_exit);

MODULE_DESCRIPTION("Test-only sharer of an interrupt line: counts its calls, claims nothing");
MODULE_AUTHOR("rust-kbd-lab");
MODULE_LICENSE("GPL");
