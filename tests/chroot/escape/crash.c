/* Dies of a real SIGSEGV: one the kernel forces, which even a PID 1 gets. */
#include <stddef.h>

int main(void) {
    volatile int *nowhere = NULL;
    return *nowhere;
}
