/* The channel shuffle of a shuffled block (larq_glt.shuffle): per pixel, output
 * word j is input word order[j]. It moves whole bit-packed words (32 channels),
 * so it is a copy; one implementation serves as reference and optimized kernel. */
#ifndef GLT_WORD_GATHER_H
#define GLT_WORD_GATHER_H

#include <stdint.h>

typedef struct {
    int32_t pixels;
    int32_t words;          /* packed words per pixel, input and output */
    const uint16_t *order;  /* [words]: source word of each output word */
} glt_word_gather_params;

/* input and output must not overlap */
void glt_word_gather_ref(const glt_word_gather_params *p, const uint32_t *input, uint32_t *output);

#endif /* GLT_WORD_GATHER_H */
