/* Minimal bare-metal start-up for the kernel self-test on QEMU mps2-an500
 * (Cortex-M7) and mps2-an386 (Cortex-M4): vector table, .data/.bss init, FPU on,
 * semihosting output/exit. */
#include <stdint.h>

extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;
int main(void);
void Reset_Handler(void);
void Default_Handler(void);

__attribute__((section(".isr_vector"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(&_estack), Reset_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, 0, 0, 0, 0,
    Default_Handler, Default_Handler, 0, Default_Handler, Default_Handler,
};

static int semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void sh_write(const char *s) { semihost(0x04, s); } /* SYS_WRITE0 */

void sh_exit(int failed)
{
    /* SYS_EXIT: ADP_Stopped_ApplicationExit -> QEMU exits 0, RunTimeErrorUnknown -> 1 */
    semihost(0x18, (const void *)(failed ? 0x20023 : 0x20026));
    for (;;) {
    }
}

void Default_Handler(void)
{
    sh_write("fatal: fault\n");
    sh_exit(1);
}

void Reset_Handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) {
        *dst++ = *src++;
    }
    for (dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0;
    }
    *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20; /* CPACR: CP10/CP11 full access */
    __asm__ volatile("dsb\n\tisb");
    sh_exit(main());
}
