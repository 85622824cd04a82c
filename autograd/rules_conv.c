/* Backward rule of the 2-d convolution (forward: tensor/conv.c). The two
 * passes it calls are ops of their own with no rule, so a convolution
 * cannot be differentiated twice. Their plain loops, the definitions the
 * fast passes are tested against: tensor/conv_reference.c. */
#include "internal.h"

/* y[n,o,i,j] = b[o] + sum_{c,u,v} w[o,c,u,v] x[n,c,i sh-pt+u,j sw-pl+v], so over the same pairs
 * dx[n,c,i sh-pt+u,j sw-pl+v] += w[o,c,u,v] dy[n,o,i,j],  dw[o,c,u,v] += dy x,  db[o] += dy */
static void conv2d_bw(const nd_record *r, const nd_tensor *dy) {
    const nd_tensor *x = r->ins[0], *w = r->ins[1];
    const int64_t *a = r->ev.args;
    nd_conv2d_opts o = {.stride_h = a[0], .stride_w = a[1], .pad_top = a[2],
                        .pad_bottom = a[3], .pad_left = a[4], .pad_right = a[5]};
    if (x->requires_grad) nd__accumulate(r, 0, nd_conv2d_backward_input(dy, w, x->shape, o));
    if (w->requires_grad) nd__accumulate(r, 1, nd_conv2d_backward_weight(dy, x, w->shape, o));
    if (r->ev.nin == 3 && r->ins[2]->requires_grad)
        nd__accumulate(r, 2, nd_sum(dy, ND_AXES(0, 2, 3), false));
}

void nd__rules_conv(nd_rule *t) {
    t[ND_OP_CONV2D].backward = conv2d_bw;
    t[ND_OP_CONV2D].values_unread = 1u << 2; /* the bias */
}
