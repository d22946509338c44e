/* console.h -- xenlab mini-OS: the PV console (Mini-OS: console/xencons_ring.c). */
#ifndef MINIOS_CONSOLE_H
#define MINIOS_CONSOLE_H

#include "hypervisor.h"

void init_console(void);
void console_print(const char *data, int length);

#endif
