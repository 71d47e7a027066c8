/* Reference binary shortcut block: the reference convolution at each output
 * pixel, with the thresholds that pixel's input bits choose. */
#include "glt_shortcut.h"

void glt_shortcut_ref(const glt_shortcut_params *p, const uint32_t *input, void *output)
{
    const glt_bconv2d_params *c = &p->conv;
    const int32_t out_words = (c->out_c + 31) / 32;
    int32_t *const chosen = (int32_t *)p->scratch;
    glt_bconv2d_params q = *c; /* one output pixel of the layer */
    int32_t oy, ox, oc;
    q.out_h = 1;
    q.out_w = 1;
    q.thresholds = chosen;
    for (oy = 0; oy < c->out_h; ++oy) {
        for (ox = 0; ox < c->out_w; ++ox) {
            const uint32_t *own = input + (oy * c->in_w + ox) * c->in_words; /* the input pixel */
            for (oc = 0; oc < c->out_c; ++oc) {
                const int set = (own[oc / 32] >> (oc % 32)) & 1u;
                chosen[oc] = set ? p->shortcut_thresholds[oc] : c->thresholds[oc];
            }
            q.pad_top = c->pad_top - oy; /* stride 1: shifting the padding places the window */
            q.pad_left = c->pad_left - ox;
            glt_bconv2d_ref(&q, input, (uint32_t *)output + (oy * c->out_w + ox) * out_words);
        }
    }
}
