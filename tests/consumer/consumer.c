/* A program outside the nanodiff build that links the library: built by
 * .ci/run through pkg-config (installed) and as a meson subproject. */
#include <stdio.h>

#include <tensor/tensor.h>

int main(void) {
    /* a = [[0,1,2],[3,4,5]]; a a^T = [[5,14],[14,50]] */
    nd_scope *scope = nd_scope_begin();
    nd_tensor *a = nd_reshape(nd_arange(0, 6, 1), ND_SHAPE(2, 3));
    nd_tensor *p = nd_matmul(a, nd_transpose(a, 0, 1));
    const float want[4] = {5, 14, 14, 50};
    int bad = 0;
    for (int i = 0; i < 4; i++) bad += nd_data(p)[i] != want[i];
    nd_scope_end(scope);
    if (bad || nd_mem_live() != 0) {
        fprintf(stderr, "consumer: wrong result or leaked memory\n");
        return 1;
    }
    printf("consumer: ok\n");
    return 0;
}
