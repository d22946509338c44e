"""The device model: QEMU's role in Dom0, one per HVM guest, emulating a PC's devices.

Real Xen: QEMU (hw/i386/xen/, hw/ide/, hw/char/serial.c, hw/display/vga.c,
hw/input/pckbd.c, hw/xen/xen_platform.c), started by libxl (libxl_dm.c)
"""
