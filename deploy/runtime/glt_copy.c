#include "glt_copy.h"

#include <string.h>

void glt_copy_ref(const glt_copy_params *p, const void *input, void *output)
{
    if (input != output) {
        memmove(output, input, (size_t)p->bytes);
    }
}
